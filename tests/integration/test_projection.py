"""Projections: read models built from the log, with the checkpoint saved in the same
transaction as the read-model change, and rebuildable from the events alone."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, delete, select, update

from kyosei_events import START, DecodedEvent, EventStore, KeyVault, RecordedEvent, UnitOfWork
from kyosei_events.catalogue.coordination import CaseOpened
from kyosei_events.catalogue.intake import ConsultationReceived
from kyosei_events.projection import catch_up, rebuild
from tests.backbone_support import case_opened, consultation, new, settled

read_model = MetaData()
projected = Table(
    "projected_events",
    read_model,
    Column("event_id", String(36), primary_key=True),
    Column("position", Integer, nullable=False),
)
households = Table(
    "household_summary",
    read_model,
    Column("household_id", String(64), primary_key=True),
    Column("consultations", Integer, nullable=False),
    Column("cases", Integer, nullable=False),
    Column("concerns", Text, nullable=False),
    Column("last_received_at", String(40)),
)


class HouseholdSummary:
    name = "test.household_summary"

    def __init__(self, *, fail_on_batch: int | None = None) -> None:
        self.fail_on_batch = fail_on_batch
        self.batches = 0

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None:
        self.batches += 1
        for d in events:
            await uow.conn.execute(
                projected.insert().values(
                    event_id=d.recorded.event_id, position=d.recorded.position
                )
            )
            e = d.event
            hh = d.recorded.subject
            row = (
                await uow.conn.execute(select(households).where(households.c.household_id == hh))
            ).first()
            if row is None:
                await uow.conn.execute(
                    households.insert().values(
                        household_id=hh, consultations=0, cases=0, concerns="[]"
                    )
                )
                concerns: list[str] = []
            else:
                concerns = json.loads(row.concerns)
            if isinstance(e, ConsultationReceived):
                concerns = sorted({*concerns, *(c.value for c in e.concerns)})
                await uow.conn.execute(
                    update(households)
                    .where(households.c.household_id == hh)
                    .values(
                        consultations=households.c.consultations + 1,
                        concerns=json.dumps(concerns),
                        last_received_at=e.received_at.isoformat(),
                    )
                )
            elif isinstance(e, CaseOpened):
                await uow.conn.execute(
                    update(households)
                    .where(households.c.household_id == hh)
                    .values(cases=households.c.cases + 1)
                )
        if self.batches == self.fail_on_batch:
            raise RuntimeError("projection crashed halfway through a batch")

    async def reset(self, uow: UnitOfWork) -> None:
        await uow.conn.execute(delete(projected))
        await uow.conn.execute(delete(households))


async def seed(store: EventStore) -> list[RecordedEvent]:
    async with store.engine.begin() as conn:
        await conn.run_sync(read_model.create_all)
    out: list[RecordedEvent] = []
    for i in range(10):
        hh = f"hh-{i % 3}"
        event = case_opened(hh) if i % 4 == 3 else consultation(hh)
        out += await store.append(f"stream-{i}", [new(event)], 0)
    await settled(store)
    return out


async def snapshot(store: EventStore) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    async with store.engine.connect() as conn:
        ids = [tuple(r) for r in await conn.execute(select(projected).order_by("position"))]
        summary = [
            tuple(r) for r in await conn.execute(select(households).order_by("household_id"))
        ]
    return ids, summary


async def test_a_failed_batch_leaves_read_model_and_checkpoint_at_the_last_good_batch(
    store: EventStore,
) -> None:
    log = await seed(store)
    projection = HouseholdSummary(fail_on_batch=2)
    with pytest.raises(RuntimeError, match="halfway"):
        await catch_up(store, projection, batch_size=4)

    assert await store.checkpoint(projection.name) == log[3].cursor
    ids, summary = await snapshot(store)
    assert [i[0] for i in ids] == [r.event_id for r in log[:4]]
    # The summary reflects exactly the first four events, not part of the fifth to eighth.
    by_household = {row[0]: row for row in summary}
    assert by_household["hh-0"][1:3] == (1, 1)  # events 0 and 3 (a case)
    assert by_household["hh-1"][1:3] == (1, 0)  # event 1
    assert by_household["hh-2"][1:3] == (1, 0)  # event 2

    # Restarted, it goes on from the checkpoint: nothing twice, nothing missed.
    projection.fail_on_batch = None
    assert await catch_up(store, projection, batch_size=4) == 6
    ids, summary = await snapshot(store)
    assert [i[0] for i in ids] == [r.event_id for r in log]
    assert {row[0]: row[1:3] for row in summary} == {
        "hh-0": (3, 1),
        "hh-1": (2, 1),
        "hh-2": (3, 0),
    }
    assert await store.checkpoint(projection.name) == log[-1].cursor
    assert await catch_up(store, projection, batch_size=4) == 0

    # Later events are picked up from the checkpoint.
    await store.append("stream-later", [new(case_opened("hh-1"))], 0)
    await settled(store)
    assert await catch_up(store, projection) == 1


async def test_rebuild_gives_the_same_read_model(store: EventStore, vault: KeyVault) -> None:
    await seed(store)
    projection = HouseholdSummary()
    assert await catch_up(store, projection, batch_size=1000) == 10
    before = await snapshot(store)

    assert await rebuild(store, HouseholdSummary(), batch_size=3) == 10
    assert await snapshot(store) == before
    assert await store.checkpoint(projection.name) != START

    # Also after a household's personal data has been erased: the read model never
    # held personal data, so it rebuilds to the same rows.
    await vault.erase("hh-0")
    assert await rebuild(store, HouseholdSummary(), batch_size=4) == 10
    assert await snapshot(store) == before
