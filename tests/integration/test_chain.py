"""Hash chains: an edit of a stored event, or a removed or reordered one with events
after it, is reported at the first broken link (what a chain cannot show is in
test_anchors.py). Tampering goes straight at the `events` table."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from kyosei_events import EventStore, Metadata
from kyosei_events.codec import GENESIS, link_hash
from kyosei_events.tables import events
from tests.backbone_support import case_opened, consultation, new


async def seed(store: EventStore, stream_id: str = "case-1", n: int = 5) -> list[Any]:
    return await store.append(stream_id, [new(case_opened()) for _ in range(n)], 0)


async def tamper(store: EventStore, stream_id: str, version: int, **values: Any) -> None:
    async with store.engine.begin() as conn:
        result = await conn.execute(
            update(events)
            .where(events.c.stream_id == stream_id, events.c.version == version)
            .values(**values)
        )
        assert result.rowcount == 1


async def test_an_untouched_stream_verifies(store: EventStore) -> None:
    recs = await seed(store)
    report = await store.verify_stream("case-1")
    assert report.ok
    assert report.broken is None
    assert report.events == 5
    assert report.head_hash == recs[-1].hash
    # The links are what codec.py says they are.
    prev = GENESIS
    for rec in recs:
        assert rec.hash == link_hash(prev, rec.record())
        prev = rec.hash

    empty = await store.verify_stream("no-such-stream")
    assert empty.ok and empty.events == 0 and empty.head_hash == GENESIS


async def test_the_envelope_of_a_stored_event_recomputes_its_stored_hash(
    store: EventStore,
) -> None:
    """The append, a RecordedEvent and an Envelope share one record function: what a
    consumer recomputes from the headers is the hash the store wrote."""
    partial = Metadata(correlation_id="corr-2", staff_id="職員-9")
    appended = await store.append(
        "consultation-c-1",
        [
            new(consultation()),
            new(consultation(), meta=partial),
            new(consultation(), meta=Metadata()),
        ],
        0,
    )
    stored = await store.read_stream("consultation-c-1")
    assert stored == appended
    for rec in stored:
        assert rec.envelope("urn:test").link_hash(rec.payload) == rec.hash
        assert link_hash(rec.prev_hash, rec.record()) == rec.hash


async def test_an_edited_payload_breaks_the_chain_at_that_event(store: EventStore) -> None:
    recs = await seed(store)
    payload = json.loads(recs[2].payload)
    payload["escalated_by"] = "agency-forged"
    await tamper(store, "case-1", 3, payload=json.dumps(payload, ensure_ascii=False))

    report = await store.verify_stream("case-1")
    assert not report.ok
    assert report.broken is not None
    assert report.broken.version == 3
    assert report.broken.position == recs[2].position
    assert "content does not match" in report.broken.reason
    assert report.broken.stored_hash == recs[2].hash
    assert report.broken.expected_hash != recs[2].hash
    assert report.head_hash == recs[1].hash  # the last good link


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("metadata", '{"agency_id":"agency-forged"}'),
        ("recorded_at", "2020-01-01T00:00:00.000000Z"),
        ("subject", "hh-other"),
        ("event_type", "CaseClosed"),
        ("schema_version", 1),
        ("event_id", "00000000-0000-0000-0000-000000000000"),
    ],
)
async def test_every_part_of_the_record_is_covered(
    store: EventStore, column: str, value: Any
) -> None:
    await seed(store)
    await tamper(store, "case-1", 2, **{column: value})
    report = await store.verify_stream("case-1")
    assert report.broken is not None, f"an edit of {column} went unnoticed"
    assert report.broken.version == 2


async def test_a_deleted_middle_event_is_detected(store: EventStore) -> None:
    recs = await seed(store)
    async with store.engine.begin() as conn:
        await conn.execute(
            delete(events).where(events.c.stream_id == "case-1", events.c.version == 3)
        )
    report = await store.verify_stream("case-1")
    assert report.broken is not None
    assert report.broken.version == 4
    assert report.broken.position == recs[3].position
    assert "version 3 is missing" in report.broken.reason


async def test_an_edited_prev_hash_is_detected(store: EventStore) -> None:
    recs = await seed(store)
    await tamper(store, "case-1", 4, prev_hash="f" * 64)
    report = await store.verify_stream("case-1")
    assert report.broken is not None
    assert report.broken.version == 4
    assert "prev_hash" in report.broken.reason
    assert report.broken.expected_hash == recs[2].hash


async def test_a_rehashed_forgery_breaks_the_next_link(store: EventStore) -> None:
    """A forger who recomputes the edited event's own hash still breaks the link of
    the event after it."""
    recs = await seed(store)
    forged = recs[1].record() | {"payload": recs[1].payload.replace("agency-a", "agency-x")}
    assert forged["payload"] != recs[1].payload
    await tamper(
        store, "case-1", 2, payload=forged["payload"], hash=link_hash(recs[0].hash, forged)
    )
    report = await store.verify_stream("case-1")
    assert report.broken is not None
    assert report.broken.version == 3
    assert "prev_hash" in report.broken.reason


async def test_swapped_events_are_detected(store: EventStore) -> None:
    recs = await seed(store)
    async with store.engine.begin() as conn:
        for version, rec in ((2, recs[2]), (3, recs[1])):
            await conn.execute(
                update(events).where(events.c.event_id == rec.event_id).values(version=-version)
            )
        await conn.execute(
            update(events).where(events.c.version < 0).values(version=-events.c.version)
        )
    ids = [r.event_id for r in await store.read_stream("case-1")]
    assert ids[1:3] == [recs[2].event_id, recs[1].event_id]
    report = await store.verify_stream("case-1")
    assert report.broken is not None
    assert report.broken.version == 2


async def test_verify_all_reports_each_stream(store: EventStore) -> None:
    await seed(store, "case-1", 3)
    await seed(store, "case-2", 4)
    await store.append("consultation-1", [new(consultation("hh-1"))], 0)
    reports = {r.stream_id: r for r in await store.verify_all()}
    assert set(reports) == {"case-1", "case-2", "consultation-1"}
    assert all(r.ok for r in reports.values())
    assert reports["case-2"].events == 4

    async with store.engine.connect() as conn:
        text = (
            await conn.execute(
                select(events.c.payload).where(
                    events.c.stream_id == "case-2", events.c.version == 4
                )
            )
        ).scalar_one()
    await tamper(store, "case-2", 4, payload=text.replace("hardship", "care"))
    reports = {r.stream_id: r for r in await store.verify_all()}
    assert [s for s, r in reports.items() if not r.ok] == ["case-2"]
    broken = reports["case-2"].broken
    assert broken is not None and broken.version == 4
