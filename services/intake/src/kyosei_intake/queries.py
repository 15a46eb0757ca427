"""Questions intake asks of its read models: parties, search, duplicates. (Merges are
the household directory's: kyosei_households.)"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events import KeyVault
from kyosei_households import survivor_of
from kyosei_households.directory import households

from .projections import household_parties, search_index
from .search_terms import exact_terms, query_terms


async def parties(conn: AsyncConnection, ids: list[str]) -> set[str]:
    rows = await conn.execute(
        select(household_parties.c.agency_id).where(household_parties.c.household_id.in_(ids))
    )
    return {r.agency_id for r in rows}


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
    if not by_token:
        return []
    rows = await conn.execute(
        select(search_index.c.household_id, search_index.c.member_id, search_index.c.token).where(
            search_index.c.token.in_(list(by_token))
        )
    )
    # (household, existing member, new member index) -> fields matched
    hits: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    for r in rows:
        i, fld = by_token[r.token]
        hits[(r.household_id, r.member_id, i)].add(fld)
    found: dict[str, Candidate] = {}
    for (hid, _, _), fields in hits.items():
        survivor = await survivor_of(conn, hid) or hid
        c = found.setdefault(survivor, Candidate(survivor))
        c.matched_on |= fields
        named = bool(fields & {"name", "kana"})
        if (named and "birth_date" in fields) or "phone" in fields:
            c.strong = True
    for c in found.values():
        if c.matched_on & {"name", "kana"} and "address" in c.matched_on:
            c.strong = True
    # A birth date alone is not a match: too many people share one.
    matches = [c for c in found.values() if c.matched_on - {"birth_date"}]
    rows = await conn.execute(
        select(households.c.household_id, households.c.registered_by).where(
            households.c.household_id.in_([c.household_id for c in matches])
        )
    )
    registrars: dict[str, str] = {r.household_id: r.registered_by for r in rows}
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
