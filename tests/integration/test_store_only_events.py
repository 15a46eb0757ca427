"""Store-only event types (``published = False``: the record of a meeting) stay in the
event store: the outbox relay steps over them and moves its checkpoint past them, and
`kyosei republish` leaves them out too. Real Kafka protocol over TCP."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from faststream.kafka import KafkaBroker

from kyosei_events import EventStore, KeyVault, LogCursor, OutboxRelay, events_topic
from kyosei_events.catalogue.coordination import (
    Attendee,
    MeetingItem,
    MeetingKind,
    MeetingRecorded,
    Minutes,
    SupportMeetingHeld,
)
from kyosei_platform import recovery
from tests.backbone_support import header, new, read_topic, settled
from tests.integration.test_recovery import settings_for

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SECRET = "STORE-ONLY 母の服薬状況"


def held(n: int) -> SupportMeetingHeld:
    return SupportMeetingHeld(
        meeting_id=f"m-{n}",
        case_id="case-c-1",
        household_id="hh-1",
        kind=MeetingKind.CONFIDENTIAL,
        held_on=date(2026, 11, 26),
        convening_agency="city",
        participant_agencies=["city", "houkatsu"],
        consent_obtained=False,
    )


def recorded(n: int) -> MeetingRecorded:
    return MeetingRecorded(
        meeting_id=f"m-{n}",
        case_id="case-c-1",
        minutes=Minutes(
            attendees=[Attendee(agency_id="city", name="阿部")],
            items=[MeetingItem(item_id="info", section="information", text=SECRET)],
        ),
        recorded_at=NOW,
    )


async def meetings(store: EventStore, count: int) -> list[str]:
    """``count`` meetings held, each its fact then its record; the ids of the facts."""
    facts = []
    for n in range(count):
        fact, _ = await store.append(f"meeting-m-{n}", [new(held(n)), new(recorded(n))], 0)
        facts.append(fact.event_id)
    return facts


async def test_the_relay_steps_over_store_only_events(
    store: EventStore, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    facts = await meetings(store, 3)
    await settled(store)
    relay = OutboxRelay(
        store, kafka_broker, topic=topic, source="/kyosei/coordination", batch_size=2
    )
    assert await relay.publish_pending() == 3  # the facts; the records stay
    head = (await store.read_log())[-1]
    assert await store.checkpoint(relay.name) == head.cursor

    records = await read_topic(kafka_bootstrap, topic, expect_at_least=3)
    assert [header(r, "ce_id") for r in records] == facts
    assert all(SECRET.encode() not in (r.value or b"") for r in records)
    assert await relay.publish_pending() == 0


async def test_republish_leaves_store_only_events_in_the_store(
    tmp_path: Path, vault: KeyVault, source: EventStore, kafka_bootstrap: list[str]
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = settings_for(tmp_path, "intake", kafka_bootstrap, prefix)
    facts = await meetings(source, 2)
    last = (await source.read_log())[-1]
    await source.save_checkpoint("relay", LogCursor(last.tx_id, last.position))

    assert await recovery.republish("intake", settings, from_position=1) == 0

    records = await read_topic(kafka_bootstrap, events_topic("intake", prefix), expect_at_least=2)
    assert sorted(header(r, "ce_id") or "" for r in records) == sorted(facts)
    assert all(SECRET.encode() not in (r.value or b"") for r in records)
