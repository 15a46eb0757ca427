"""Questions about households: duplicates before registering, search, the household's
picture as far as the caller may read it. (Merges and members are the household
directory's: kyosei_households.)"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events import EventStore, KeyVault
from kyosei_households import (
    COORDINATION,
    LIFE_EVENTS,
    may_read_household,
    merge_families,
    survivor_of,
)
from kyosei_households.access import SHARING
from kyosei_households.directory import households
from kyosei_platform.api import LabelledValue, labelled
from kyosei_platform.application import today
from kyosei_platform.auth import Identity

from ..access import open_household
from ..domain import household as domain
from ..projections import consultations, outreach_cases, referrals, search_index
from ..search_terms import exact_terms, query_terms
from ..views import (
    HouseholdPicture,
    LifeEventView,
    MemberChangeView,
    SearchResult,
    consent_view,
    consultation_row,
    dismissed_view,
    member_change_views,
    member_view,
    outreach_row,
    proxy_view,
    referral_row,
    refusal_view,
)


@dataclass
class Candidate:
    household_id: str
    matched_on: set[str] = field(default_factory=set)
    strong: bool = False
    registered_by: str | None = None


async def duplicates(
    conn: AsyncConnection,
    vault: KeyVault,
    members: list[tuple[str, str | None, date | None]],
    address: str | None,
    phone: str | None,
) -> list[Candidate]:
    """Existing households that may be the one about to be registered.

    Strong: a member with the same name (or kana) and birth date, or the same phone,
    or the same name at the same address. Weak: the same name, or the same address.
    """
    by_token: dict[str, tuple[int, str]] = {}  # token -> (member index or -1, field)
    for i, (name, kana, birth) in enumerate(members):
        for fld, term in exact_terms(name=name, kana=kana, birth_date=birth).items():
            by_token[vault.blind_index(term)] = (i, fld)
    for fld, term in exact_terms(address=address, phone=phone).items():
        by_token[vault.blind_index(term)] = (-1, fld)
    # A birth date alone is not a match: too many people share one. Only households
    # that share a name, kana, address or phone are candidates; their birth dates are
    # then looked up in those households alone, so the cost of the check does not grow
    # with how many people in town share a birth date.
    births = [t for t, (_, fld) in by_token.items() if fld == "birth_date"]
    others = [t for t in by_token if t not in births]
    if not others:
        return []
    rows = list(
        await conn.execute(
            select(
                search_index.c.household_id, search_index.c.member_id, search_index.c.token
            ).where(search_index.c.token.in_(others))
        )
    )
    if not rows:
        return []
    # Merged records count as their survivor; a birth date recorded in any record of
    # a candidate household counts as before.
    family = await merge_families(conn, {r.household_id for r in rows})
    if births:
        rows += await conn.execute(
            select(
                search_index.c.household_id, search_index.c.member_id, search_index.c.token
            ).where(
                search_index.c.token.in_(births),
                search_index.c.household_id.in_(
                    sorted(set(family) | {r.household_id for r in rows})
                ),
            )
        )
    # (household, existing member, new member index) -> fields matched
    hits: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    for r in rows:
        i, fld = by_token[r.token]
        hits[(r.household_id, r.member_id, i)].add(fld)
    found: dict[str, Candidate] = {}
    for (hid, _, _), fields in hits.items():
        survivor = family.get(hid, hid)
        c = found.setdefault(survivor, Candidate(survivor))
        c.matched_on |= fields
        named = bool(fields & {"name", "kana"})
        if (named and "birth_date" in fields) or "phone" in fields:
            c.strong = True
    for c in found.values():
        if c.matched_on & {"name", "kana"} and "address" in c.matched_on:
            c.strong = True
    matches = list(found.values())
    registered = await conn.execute(
        select(households.c.household_id, households.c.registered_by).where(
            households.c.household_id.in_([c.household_id for c in matches])
        )
    )
    registrars: dict[str, str] = {r.household_id: r.registered_by for r in registered}
    for c in matches:
        c.registered_by = registrars.get(c.household_id)
    return sorted(matches, key=lambda c: (not c.strong, c.household_id))


async def search(
    conn: AsyncConnection,
    vault: KeyVault,
    *,
    name: str | None,
    kana: str | None,
    birth_date: date | None,
    address: str | None,
    phone: str | None,
    limit: int,
) -> dict[str, set[str]]:
    """Households matching every criterion given, with what matched; merged records
    are reported as their survivor."""
    member_sets: list[set[tuple[str, str]]] = []
    household_sets: list[set[str]] = []
    matched: set[str] = set()

    async def all_of(terms: set[str]) -> set[tuple[str, str]]:
        tokens = [vault.blind_index(t) for t in terms]
        rows = await conn.execute(
            select(search_index.c.household_id, search_index.c.member_id)
            .where(search_index.c.token.in_(tokens))
            .group_by(search_index.c.household_id, search_index.c.member_id)
            .having(func.count(func.distinct(search_index.c.token)) == len(tokens))
        )
        return {(r.household_id, r.member_id) for r in rows}

    for fld, text in (("name", name), ("kana", kana)):
        if text and (terms := query_terms(fld, text)):
            member_sets.append(await all_of(terms))
            matched.add(fld)
    if birth_date is not None:
        member_sets.append(await all_of(set(exact_terms(birth_date=birth_date).values())))
        matched.add("birth_date")
    if address and (terms := query_terms("address", address)):
        household_sets.append({h for h, _ in await all_of(terms)})
        matched.add("address")
    if phone and (p := exact_terms(phone=phone)):
        household_sets.append({h for h, _ in await all_of(set(p.values()))})
        matched.add("phone")
    if member_sets:
        members = set.intersection(*member_sets)
        household_sets.append({h for h, _ in members})
    if not household_sets:
        return {}
    ids = set.intersection(*household_sets)
    out: dict[str, set[str]] = {}
    for hid in sorted(ids):
        survivor = await survivor_of(conn, hid) or hid
        out.setdefault(survivor, set()).update(matched)
        if len(out) >= limit:
            break
    return out


async def search_result(
    store: EventStore, identity: Identity, household_id: str, matched: set[str]
) -> SearchResult:
    """What a search tells the caller of one household: that it exists, and its members'
    names only if the caller may read it."""
    opened = await open_household(store, None, household_id)
    readable = may_read_household(identity, opened.directory, opened.parties, today())
    people = domain.people(opened.records)
    return SearchResult(
        household_id=household_id,
        matched_on=sorted(matched),
        registered_by=opened.survivor.registered_by,
        member_count=len(people),
        access=("full" if opened.complete_for(identity) else "own") if readable else "none",
        member_names=[p.member.name or "" for p in people] if readable else None,
    )


async def member_history(
    store: EventStore, identity: Identity, household_id: str, member_id: str
) -> list[MemberChangeView]:
    """Every recorded change of one person (by any of their ids), retracted ones too."""
    opened = await open_household(store, identity, household_id)
    return member_change_views(domain.person(opened.records, member_id))


def _life_events(people: list[domain.Person]) -> list[LifeEventView]:
    events = [
        LifeEventView(
            member_id=p.person_id,
            relationship=labelled(p.member.relationship),
            kind=LabelledValue(
                value=LIFE_EVENTS[c.kind].event_type, label_ja=LIFE_EVENTS[c.kind].label_ja
            ),
            on=c.on,
        )
        for p in people
        for c in p.life_changes()
        if not c.retracted
    ]
    return sorted(events, key=lambda e: (e.on, e.member_id))


async def picture(store: EventStore, identity: Identity, household_id: str) -> HouseholdPicture:
    """世帯の全体像 as far as the caller may read it (404 if it may read nothing)."""
    opened = await open_household(store, identity, household_id)
    ids = list(opened.directory.record_ids)
    async with store.engine.connect() as conn:
        c_rows = (
            await conn.execute(
                select(consultations)
                .where(consultations.c.household_id.in_(ids))
                .order_by(consultations.c.received_at)
            )
        ).all()
        r_rows = (
            await conn.execute(
                select(referrals)
                .where(referrals.c.household_id.in_(ids))
                .order_by(referrals.c.made_at)
            )
        ).all()
        o_rows = (
            await conn.execute(
                select(outreach_cases)
                .where(outreach_cases.c.household_id.in_(ids))
                .order_by(outreach_cases.c.started_at)
            )
        ).all()
    referred: dict[str, set[str]] = {}
    for r in r_rows:
        referred.setdefault(r.consultation_id, set()).update({r.from_agency, r.to_agency})
    about = {r.consultation_id: json.loads(r.member_ids) for r in c_rows}

    def consultation_parties(row: Any) -> set[str]:
        return {
            row.agency_id,
            *referred.get(row.consultation_id, ()),
            *([COORDINATION] if row.escalated else []),
        }

    s = opened.survivor
    people = domain.people(opened.records)
    readable = [
        r
        for r in c_rows
        if opened.may_read(
            identity, persons=about[r.consultation_id], parties=consultation_parties(r)
        )
    ]
    return HouseholdPicture(
        household_id=s.household_id,
        access="full" if opened.complete_for(identity) else "own",
        opened_by_consent=sorted(opened.directory.consenting(identity.agency_id, SHARING, today())),
        records=ids,
        registered_by=s.registered_by,
        registered_at=s.registered_at,
        address=s.address,
        phone=s.phone,
        members=[
            member_view(
                p,
                [
                    r.consultation_id
                    for r in readable
                    if set(about[r.consultation_id]) & set(p.member_ids)
                ],
            )
            for p in people
        ],
        life_events=_life_events(people),
        dismissed_duplicates=[dismissed_view(d) for d in opened.directory.dismissals],
        consents=[consent_view(c) for h in opened.records for c in h.consents.values()],
        proxies=[proxy_view(p) for h in opened.records for p in h.proxies.values()],
        refusals=[refusal_view(r) for h in opened.records for r in h.refusals.values()],
        consultations=[consultation_row(r) for r in readable],
        referrals=[
            referral_row(r)
            for r in r_rows
            if opened.may_read(
                identity,
                persons=about.get(r.consultation_id, []),
                parties={r.from_agency, r.to_agency},
            )
        ],
        outreach=[
            outreach_row(r)
            for r in o_rows
            if opened.may_read(
                identity, persons=[r.member_id] if r.member_id else [], parties={r.agency_id}
            )
        ],
        version=s.version,
    )
