"""Builders shared by the libs/events backbone tests: catalogue events, forged
envelopes, and reading a topic back from the embedded broker."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from kyosei_events import Envelope, EventStore, Metadata, NewEvent, Outcome
from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.coordination import CaseOpened
from kyosei_events.catalogue.intake import Channel, ConsultationReceived, Window
from kyosei_events.catalogue.participation import OpportunityKind, ParticipationMatched
from kyosei_events.tables import events

# Full-width letters and digits, an ideographic space, half-width kana, hiragana,
# kanji (one outside the BMP), a decomposed が (か + combining dakuten) and emoji
# (a ZWJ family and a flag): none of it may be normalised on the way.
JAPANESE_SUMMARY = (
    "ＡＢＣ１２３\u3000ﾊﾝｶｸｶﾀｶﾅ、ひらがな、漢字の𠮷野家、か\u3099ぎ、"
    "👨‍👩‍👧と🇯🇵。母（８０代）の介護と息子のひきこもり。 "
)
CALLER_NAME = "山田　花子（ﾔﾏﾀﾞ ﾊﾅｺ）😊"


def uid(prefix: str = "id") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def consultation(
    household_id: str | None = "hh-1",
    *,
    consultation_id: str | None = None,
    agency_id: str = "agency-a",
    summary: str = JAPANESE_SUMMARY,
    caller_name: str | None = CALLER_NAME,
    concerns: tuple[Concern, ...] = (Concern.CARE, Concern.WITHDRAWAL),
) -> ConsultationReceived:
    return ConsultationReceived(
        consultation_id=consultation_id or uid("c"),
        household_id=household_id,
        agency_id=agency_id,
        window=Window.COMMUNITY_GENERAL_SUPPORT_CENTER,
        channel=Channel.PHONE,
        concerns=list(concerns),
        summary=summary,
        caller_name=caller_name,
        complex=True,
        received_at=datetime(2025, 4, 1, 9, 30, 15, 123456, tzinfo=UTC),
    )


def case_opened(household_id: str = "hh-1", *, case_id: str | None = None) -> CaseOpened:
    """An event without personal fields (needs no household key)."""
    return CaseOpened(
        case_id=case_id or uid("case"),
        household_id=household_id,
        consultation_id=uid("c"),
        escalated_by="agency-a",
        concerns=[Concern.HARDSHIP],
        opened_at=datetime(2025, 4, 2, 10, 0, 0, 1, tzinfo=UTC),
    )


def matched(
    household_id: str = "hh-1", *, fit_notes: str = "絵を描くことが好き"
) -> ParticipationMatched:
    return ParticipationMatched(
        match_id=uid("m"),
        household_id=household_id,
        opportunity_id=uid("o"),
        opportunity_kind=OpportunityKind.PLACE,
        host_agency_id="host-1",
        link_worker_agency_id="link-1",
        matched_on=date(2025, 5, 1),
        fit_notes=fit_notes,
    )


META = Metadata(
    correlation_id="corr-1", causation_id="cause-1", agency_id="agency-a", staff_id="staff-9"
)


def new(event: Any, subject: str | None = None, *, meta: Metadata = META) -> NewEvent:
    subject = subject or getattr(event, "household_id", None) or "hh-unknown"
    return NewEvent(event=event, subject=subject, metadata=meta)


def headers_for(env: Envelope, payload: str) -> list[tuple[str, bytes]]:
    """Headers of ``env`` with ce_hash recomputed over ``payload``: an authentic-looking
    message whose link matches, so that checks after the hash check are reached."""
    return dataclasses.replace(env, hash=env.link_hash(payload)).to_headers()


def header(record: ConsumerRecord, name: str) -> str | None:
    for k, v in record.headers:
        if k == name:
            return v.decode()
    return None


async def read_topic_with(
    bootstrap: list[str], topic: str, counts: dict[str, int], *, wait: float = 20.0
) -> list[ConsumerRecord]:
    """Every record on ``topic`` once it holds at least ``counts[t]`` records of each
    event type ``t`` (the end of its ``ce_type``). A relay publishes after the commit,
    in its own time: an HTTP answer says the events are stored, not that they are out.
    AssertionError naming what is missing after ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        records = await read_topic(bootstrap, topic)
        types = [header(r, "ce_type") or "" for r in records]
        missing = {t: n for t, n in counts.items() if sum(x.endswith(t) for x in types) < n}
        if not missing:
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"{topic} after {wait:.0f} s: too few of {missing}")
        await asyncio.sleep(0.1)


async def read_topic(
    bootstrap: list[str], topic: str, *, wait: float = 10.0, expect_at_least: int = 0
) -> list[ConsumerRecord]:
    """Every record currently on ``topic`` (all partitions, from the beginning).

    Waits up to ``wait`` seconds for at least ``expect_at_least`` records to be there,
    then reads up to each partition's high watermark, so the result is exact for what
    the broker has acknowledged. No consumer group: no group join to wait for.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + wait
        while True:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                tps = [TopicPartition(topic, p) for p in sorted(partitions)]
                ends = await consumer.end_offsets(tps)
                if sum(ends.values()) >= expect_at_least:
                    break
            if time.monotonic() > deadline:
                if not partitions:
                    return []
                break
            await asyncio.sleep(0.05)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[ConsumerRecord] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        # The records up to the end offsets are on the broker: reading them gets its own
        # allowance, however short the wait for them to appear was.
        read_deadline = time.monotonic() + max(wait, 10.0)
        while remaining:
            if time.monotonic() > read_deadline:
                raise TimeoutError(f"could not read {topic} to its end offsets {ends}")
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batch.items():
                out.extend(r for r in records if r.offset < ends[tp])
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        # Group by partition in offset order (order across partitions is not defined).
        out.sort(key=lambda r: (r.partition, r.offset))
        return out
    finally:
        await consumer.stop()


async def settled(store: EventStore, within: float = 30.0) -> None:
    """Wait until every committed event of ``store`` is below the log's read horizon.

    On PostgreSQL the log withholds events while any older transaction is still open
    in the same database (that is the commit-order guarantee), so a test that reads
    the log right after its own appends waits out other sessions' transactions first.
    """
    if store.dialect != "postgresql":
        return
    deadline = time.monotonic() + within
    while True:
        async with store.engine.connect() as conn:
            newest = (await conn.execute(select(func.max(events.c.tx_id)))).scalar_one()
        horizon = await store.horizon()
        if newest is None or newest < horizon:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"a transaction older than tx {newest} stayed open for {within} s "
                f"(read horizon {horizon})"
            )
        await asyncio.sleep(0.02)


def outcomes(consumer: str) -> dict[str, int]:
    """What became of the messages ``consumer`` has seen, by outcome (its metric)."""
    counts = {
        str(o): REGISTRY.get_sample_value(
            "kyosei_consumer_messages_total", {"consumer": consumer, "outcome": o}
        )
        for o in Outcome
    }
    return {o: int(n) for o, n in counts.items() if n}
