"""The household directory: what every service needs to know about a household.

Fed by intake's events (registrations with the duplicate candidates dismissed, members
and their life changes, merges and the people they combine, proxies, consents and
their withdrawal and refusal). Intake keeps it as an inline projection of its own store;
every other service keeps its own copy, fed by the same events consumed from intake's
topic (see :mod:`kyosei_households.feed`). It holds ids, relationships and consent
terms only, never personal data: names and addresses stay sealed in intake's store.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    MetaData,
    String,
    Table,
    Text,
    delete,
    exists,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events import DecodedEvent, DomainEvent, UnitOfWork
from kyosei_events.catalogue.intake import (
    ConsentGiven,
    ConsentGiver,
    ConsentPurpose,
    ConsentRefused,
    ConsentWithdrawn,
    HouseholdMergedInto,
    HouseholdRegistered,
    MemberAdded,
    MemberChange,
    MemberChangeRetracted,
    MemberDeparted,
    MemberDied,
    MemberFacilityStayEnded,
    MemberFacilityStayStarted,
    MemberJoined,
    MembersCombined,
    ProxyRecorded,
)

from .access import Consent, Dismissal, Household, Member, Proxy, Refusal
from .life import LifeChange, life_change

metadata = MetaData()

households = Table(
    "directory_households",
    metadata,
    Column("household_id", String(64), primary_key=True),
    Column("registered_by", String(64), nullable=False),
    Column("registered_at", String(40), nullable=False),
    Column("merged_into", String(64), index=True),
)

members = Table(
    "directory_members",
    metadata,
    Column("household_id", String(64), primary_key=True),
    Column("member_id", String(64), primary_key=True),
    Column("relationship", String(32), nullable=False),
    Column("same_as", String(64)),  # MembersCombined: the id this person is known by
)

# Life changes (death, moving out or in, facility stays): ids, kinds and dates only.
member_changes = Table(
    "directory_member_changes",
    metadata,
    Column("change_id", String(64), primary_key=True),
    Column("household_id", String(64), nullable=False, index=True),
    Column("member_id", String(64), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("effective_on", String(10), nullable=False),
    Column("detail", String(32)),
    Column("recorded_at", String(40), nullable=False),
    Column("recorded_by", String(64)),
    Column("retracted_at", String(40)),
)

# Duplicate candidates dismissed when a household was registered.
dismissals = Table(
    "directory_dismissals",
    metadata,
    Column("household_id", String(64), primary_key=True),
    Column("other_household_id", String(64), primary_key=True, index=True),
    Column("dismissed_by", String(64), nullable=False),
    Column("dismissed_by_staff", String(64)),
    Column("dismissed_at", String(40), nullable=False),
)

proxies = Table(
    "directory_proxies",
    metadata,
    Column("proxy_id", String(64), primary_key=True),
    Column("household_id", String(64), nullable=False, index=True),
    Column("member_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("proxy_member_id", String(64)),
)

consents = Table(
    "directory_consents",
    metadata,
    Column("consent_id", String(64), primary_key=True),
    Column("household_id", String(64), nullable=False, index=True),
    Column("member_id", String(64)),
    Column("given_by", String(16), nullable=False),
    Column("proxy_id", String(64)),
    Column("agencies", Text, nullable=False),
    Column("all_agencies", Boolean, nullable=False),
    Column("purposes", Text, nullable=False),
    Column("given_on", String(10), nullable=False),
    Column("withdrawn_on", String(10)),
)

refusals = Table(
    "directory_refusals",
    metadata,
    Column("refusal_id", String(64), primary_key=True),
    Column("household_id", String(64), nullable=False, index=True),
    Column("member_id", String(64), nullable=False),
    Column("refused_by", String(16), nullable=False),
    Column("proxy_id", String(64)),
    Column("agencies", Text, nullable=False),
    Column("all_agencies", Boolean, nullable=False),
    Column("purposes", Text, nullable=False),
    Column("refused_on", String(10), nullable=False),
    Column("recorded_by", String(64)),
)

TABLES = (households, members, proxies, consents, refusals, member_changes, dismissals)

# The intake events the directory is made of (what a consuming service subscribes to).
FED_BY: tuple[type[DomainEvent], ...] = (
    HouseholdRegistered,
    MemberAdded,
    HouseholdMergedInto,
    ProxyRecorded,
    ConsentGiven,
    ConsentWithdrawn,
    ConsentRefused,
    MemberDied,
    MemberDeparted,
    MemberJoined,
    MemberFacilityStayStarted,
    MemberFacilityStayEnded,
    MemberChangeRetracted,
    MembersCombined,
)


async def _insert_once(conn: AsyncConnection, table: Table, row: dict[str, Any]) -> None:
    # Once: a consuming service may see an event again after a redelivery.
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(insert(table).values(**row).on_conflict_do_nothing())


def _list(values: Sequence[Any]) -> str:
    return json.dumps(sorted(str(getattr(v, "value", v)) for v in values))


async def record(
    conn: AsyncConnection,
    event: DomainEvent,
    agency_id: str | None,
    staff_id: str | None = None,
) -> None:
    """Apply one intake event to the directory (others are ignored). ``agency_id`` and
    ``staff_id`` are who recorded it (from the event's metadata)."""
    if (change := life_change(event, 0)) is not None:
        assert isinstance(event, MemberChange)
        await _insert_once(
            conn,
            member_changes,
            {
                "change_id": change.change_id,
                "household_id": event.household_id,
                "member_id": change.member_id,
                "kind": change.kind,
                "effective_on": change.on.isoformat(),
                "detail": change.detail,
                "recorded_at": event.recorded_at.isoformat(),
                "recorded_by": agency_id,
                "retracted_at": None,
            },
        )
        return
    match event:
        case HouseholdRegistered():
            await _insert_once(
                conn,
                households,
                {
                    "household_id": event.household_id,
                    "registered_by": event.registered_by,
                    "registered_at": event.registered_at.isoformat(),
                    "merged_into": None,
                },
            )
            for other in event.duplicates_dismissed:
                await _insert_once(
                    conn,
                    dismissals,
                    {
                        "household_id": event.household_id,
                        "other_household_id": other,
                        "dismissed_by": event.registered_by,
                        "dismissed_by_staff": staff_id,
                        "dismissed_at": event.registered_at.isoformat(),
                    },
                )
        case MemberChangeRetracted():
            await conn.execute(
                update(member_changes)
                .where(member_changes.c.change_id == event.retracted_change_id)
                .values(retracted_at=event.retracted_at.isoformat())
            )
        case MembersCombined():
            await conn.execute(
                update(members)
                .where(members.c.member_id == event.same_member_id)
                .values(same_as=event.member_id)
            )
        case MemberAdded():
            await _insert_once(
                conn,
                members,
                {
                    "household_id": event.household_id,
                    "member_id": event.member_id,
                    "relationship": event.relationship.value,
                    "same_as": None,
                },
            )
        case HouseholdMergedInto():
            await conn.execute(
                update(households)
                .where(households.c.household_id == event.household_id)
                .values(merged_into=event.into_household_id)
            )
        case ProxyRecorded():
            await _insert_once(
                conn,
                proxies,
                {
                    "proxy_id": event.proxy_id,
                    "household_id": event.household_id,
                    "member_id": event.member_id,
                    "kind": event.kind.value,
                    "proxy_member_id": event.proxy_member_id,
                },
            )
        case ConsentGiven():
            await _insert_once(
                conn,
                consents,
                {
                    "consent_id": event.consent_id,
                    "household_id": event.household_id,
                    "member_id": event.member_id,
                    "given_by": event.given_by.value,
                    "proxy_id": event.proxy_id,
                    "agencies": _list(event.agencies),
                    "all_agencies": event.all_agencies,
                    "purposes": _list(event.purposes),
                    "given_on": event.given_on.isoformat(),
                    "withdrawn_on": None,
                },
            )
        case ConsentWithdrawn():
            await conn.execute(
                update(consents)
                .where(consents.c.consent_id == event.consent_id)
                .values(withdrawn_on=event.withdrawn_on.isoformat())
            )
        case ConsentRefused():
            await _insert_once(
                conn,
                refusals,
                {
                    "refusal_id": event.refusal_id,
                    "household_id": event.household_id,
                    "member_id": event.member_id,
                    "refused_by": event.refused_by.value,
                    "proxy_id": event.proxy_id,
                    "agencies": _list(event.agencies),
                    "all_agencies": event.all_agencies,
                    "purposes": _list(event.purposes),
                    "refused_on": event.refused_on.isoformat(),
                    "recorded_by": agency_id,
                },
            )


class HouseholdDirectory:
    """The directory as an inline projection of intake's own store."""

    name = "households.directory"

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None:
        for d in events:
            await record(uow.conn, d.event, d.metadata.agency_id, d.metadata.staff_id)

    async def reset(self, uow: UnitOfWork) -> None:
        for table in TABLES:
            await uow.conn.execute(delete(table))


# -- questions every service asks -------------------------------------------------------


async def survivor_of(conn: AsyncConnection, household_id: str) -> str | None:
    """The household record a (possibly merged) id now lives in; None if unknown."""
    seen: set[str] = set()
    current = household_id
    while current not in seen:
        seen.add(current)
        row = (
            await conn.execute(
                select(households.c.merged_into).where(households.c.household_id == current)
            )
        ).first()
        if row is None:
            return None
        if row.merged_into is None:
            return current
        current = row.merged_into
    return current


# Merges chain (A into B, B into C); no chain is longer than this.
_MAX_MERGE_DEPTH = 64


async def merge_families(conn: AsyncConnection, household_ids: Collection[str]) -> dict[str, str]:
    """Every record of the households the given records belong to, mapped to its
    survivor: for each id, its survivor and every record merged into that survivor,
    directly or not. One statement, however many ids; an id the directory does not know
    is not in the answer (it is its own survivor)."""
    if not household_ids:
        return {}
    h, link = households, households.alias("link")
    up = (
        select(
            h.c.household_id.label("start"),
            h.c.household_id.label("current"),
            literal(0).label("depth"),
        )
        .where(h.c.household_id.in_(sorted(set(household_ids))))
        .cte("up", recursive=True)
    )
    up = up.union_all(
        select(up.c.start, link.c.merged_into, up.c.depth + 1).where(
            link.c.household_id == up.c.current,
            link.c.merged_into.is_not(None),
            up.c.depth < _MAX_MERGE_DEPTH,
        )
    )
    deeper = up.alias("deeper")
    survivors = (
        select(up.c.current.label("survivor"))
        .where(
            ~exists().where(deeper.c.start == up.c.start, deeper.c.depth > up.c.depth),
        )
        .distinct()
        .cte("survivors")
    )
    down = (
        select(
            survivors.c.survivor.label("survivor"),
            survivors.c.survivor.label("record"),
            literal(0).label("depth"),
        )
    ).cte("down", recursive=True)
    down = down.union_all(
        select(down.c.survivor, link.c.household_id, down.c.depth + 1).where(
            link.c.merged_into == down.c.record, down.c.depth < _MAX_MERGE_DEPTH
        )
    )
    rows = await conn.execute(select(down.c.record, down.c.survivor))
    return {r.record: r.survivor for r in rows}


async def record_ids(conn: AsyncConnection, household_id: str) -> list[str]:
    """The survivor and every record merged into it, directly or not (survivor first)."""
    ids = [household_id]
    frontier = [household_id]
    while frontier:
        rows = await conn.execute(
            select(households.c.household_id).where(households.c.merged_into.in_(frontier))
        )
        frontier = [r.household_id for r in rows if r.household_id not in ids]
        ids += frontier
    return ids


async def same_household(conn: AsyncConnection, household_id: str) -> list[str]:
    """Every record id of the household ``household_id`` belongs to, following merges
    both ways; just ``[household_id]`` when the directory does not know it."""
    survivor = await survivor_of(conn, household_id)
    return [household_id] if survivor is None else await record_ids(conn, survivor)


def _purposes(text: str) -> frozenset[ConsentPurpose]:
    return frozenset(ConsentPurpose.of(v) for v in json.loads(text))


async def find(conn: AsyncConnection, household_id: str) -> Household | None:
    """The household ``household_id`` belongs to (following merges), or None."""
    survivor = await survivor_of(conn, household_id)
    if survivor is None:
        return None
    ids = await record_ids(conn, survivor)
    head = (
        await conn.execute(
            select(households.c.registered_by).where(households.c.household_id == survivor)
        )
    ).one()
    member_rows = await conn.execute(
        select(members).where(members.c.household_id.in_(ids)).order_by(members.c.member_id)
    )
    consent_rows = await conn.execute(
        select(consents).where(consents.c.household_id.in_(ids)).order_by(consents.c.given_on)
    )
    proxy_rows = await conn.execute(select(proxies).where(proxies.c.household_id.in_(ids)))
    refusal_rows = await conn.execute(
        select(refusals).where(refusals.c.household_id.in_(ids)).order_by(refusals.c.refused_on)
    )
    change_rows = await conn.execute(
        select(member_changes)
        .where(member_changes.c.household_id.in_(ids))
        .order_by(member_changes.c.recorded_at, member_changes.c.change_id)
    )
    changes: dict[str, list[LifeChange]] = {}
    for seq, r in enumerate(change_rows):
        changes.setdefault(r.member_id, []).append(
            LifeChange(
                change_id=r.change_id,
                member_id=r.member_id,
                kind=r.kind,
                on=date.fromisoformat(r.effective_on),
                detail=r.detail,
                seq=seq,
                retracted=r.retracted_at is not None,
            )
        )
    dismissal_rows = await conn.execute(
        select(dismissals)
        .where(dismissals.c.household_id.in_(ids) | dismissals.c.other_household_id.in_(ids))
        .order_by(dismissals.c.dismissed_at, dismissals.c.household_id)
    )
    return Household(
        household_id=survivor,
        record_ids=tuple(ids),
        registered_by=head.registered_by,
        members=tuple(
            Member(
                r.member_id,
                r.household_id,
                r.relationship,
                r.same_as,
                tuple(changes.get(r.member_id, ())),
            )
            for r in member_rows
        ),
        consents=tuple(
            Consent(
                consent_id=r.consent_id,
                household_id=r.household_id,
                member_id=r.member_id,
                given_by=ConsentGiver.of(r.given_by),
                proxy_id=r.proxy_id,
                agencies=frozenset(json.loads(r.agencies)),
                all_agencies=r.all_agencies,
                purposes=_purposes(r.purposes),
                given_on=date.fromisoformat(r.given_on),
                withdrawn_on=date.fromisoformat(r.withdrawn_on) if r.withdrawn_on else None,
            )
            for r in consent_rows
        ),
        proxies=tuple(
            Proxy(r.proxy_id, r.member_id, ConsentGiver.of(r.kind), r.proxy_member_id)
            for r in proxy_rows
        ),
        refusals=tuple(
            Refusal(
                refusal_id=r.refusal_id,
                member_id=r.member_id,
                refused_by=ConsentGiver.of(r.refused_by),
                proxy_id=r.proxy_id,
                agencies=frozenset(json.loads(r.agencies)),
                all_agencies=r.all_agencies,
                purposes=_purposes(r.purposes),
                refused_on=date.fromisoformat(r.refused_on),
                recorded_by=r.recorded_by,
            )
            for r in refusal_rows
        ),
        dismissals=tuple(
            Dismissal(
                household_id=r.household_id,
                other_household_id=r.other_household_id,
                dismissed_by=r.dismissed_by,
                dismissed_by_staff=r.dismissed_by_staff,
                dismissed_at=r.dismissed_at,
            )
            for r in dismissal_rows
        ),
    )
