"""Intake's side of the shared access rules (kyosei_households.access): the parts
agencies play in a household come from intake's read model, the household's members
and consents from the directory, and the records themselves from the event store.

A household the caller may not read answers 404, so that its existence is not told.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events import EventStore
from kyosei_households import Household, find, has_part, may_read_household, may_read_record
from kyosei_households.access import SHARING
from kyosei_platform.application import CommandContext, not_found, today
from kyosei_platform.auth import Identity, Role

from .domain import household as domain
from .projections import household_parties


@dataclass
class Opened:
    """A household's records (survivor first), its directory entry and its parties."""

    records: list[domain.Household]
    directory: Household
    parties: set[str]

    @property
    def survivor(self) -> domain.Household:
        return self.records[0]

    def may_read(
        self, identity: Identity | None, *, persons: Iterable[str], parties: Iterable[str]
    ) -> bool:
        """Whether ``identity`` may read one record of this household, about ``persons``,
        to which ``parties`` are party (None: the system, in a policy)."""
        return identity is None or may_read_record(
            identity,
            parties=set(parties),
            persons=persons,
            household=self.directory,
            on=today(),
        )

    def complete_for(self, identity: Identity) -> bool:
        """Whether every person's records are open to the caller (``access: full``)."""
        if identity.role is Role.AUDITOR:
            return True
        opened = self.directory.consenting(identity.agency_id, SHARING, today())
        return bool(self.directory.people) and self.directory.people <= opened


async def load_household(store: EventStore, household_id: str) -> domain.Household:
    events, _ = await store.load(domain.stream(household_id))
    state = domain.Household(household_id)
    for d in events:
        state.evolve(d.event)
    return state


async def open_household(store: EventStore, identity: Identity | None, household_id: str) -> Opened:
    """A household (following merges) that the caller may read; 404 otherwise."""
    async with store.engine.connect() as conn:
        directory = await find(conn, household_id)
        if directory is None:
            raise not_found("household", "世帯", household_id)
        parties = await household_parties_of(conn, list(directory.record_ids))
    if identity is not None and not may_read_household(identity, directory, parties, today()):
        raise not_found("household", "世帯", household_id)
    records = [await load_household(store, i) for i in directory.record_ids]
    return Opened(records, directory, parties)


async def household_of(store: EventStore, household_id: str | None) -> Household | None:
    """The directory's household for a record's ``household_id`` (None if it has none)."""
    if household_id is None:
        return None
    async with store.engine.connect() as conn:
        return await find(conn, household_id)


async def members_of(ctx: CommandContext, household_id: str | None) -> frozenset[str]:
    """The members of a record's household, read where the command runs (in a policy,
    inside its transaction)."""
    if household_id is None:
        return frozenset()
    async with ctx.connect() as conn:
        household = await find(conn, household_id)
    return household.member_ids if household else frozenset()


async def may_read(
    store: EventStore,
    identity: Identity,
    *,
    household_id: str | None,
    persons: Iterable[str],
    parties: Iterable[str],
) -> bool:
    """One record of intake (a consultation, a referral, an outreach case)."""
    parties = set(parties)
    household = None
    if identity.role is not Role.AUDITOR and not has_part(identity, parties):
        household = await household_of(store, household_id)  # only then is it needed
    return may_read_record(
        identity,
        parties=parties,
        persons=persons,
        household=household,
        on=today(),
    )


async def household_parties_of(conn: AsyncConnection, ids: list[str]) -> set[str]:
    """The agencies with a part in any of these household records."""
    rows = await conn.execute(
        select(household_parties.c.agency_id).where(household_parties.c.household_id.in_(ids))
    )
    return {r.agency_id for r in rows}
