"""Recovery commands: dead letters listed and replayed, events republished.

``kyosei dlq list SERVICE`` prints each dead letter on the service's dead-letter topic
(where it is, when, where it came from, its ce_type and ce_id, and why; never its
payload). ``kyosei dlq replay SERVICE --offset N … | --all`` puts dead letters back
where the consumer reads them: the dead-lettered copy's original value, key and
headers (without the ``dlq_*`` ones) are published again to the original topic,
after the consumer's processed mark for that ce_id is cleared in the service's store,
so that the idempotent consumer processes it again instead of dropping it as a
duplicate. Run it once the cause is fixed (a setting, a deployed fix, a missing
record); a message that fails again is dead-lettered again.

``kyosei republish SERVICE --from POSITION`` publishes the service's events from a log
position on to its events topic again, with their original envelopes, for an agency
that joins late or lost its offsets. It does not move the relay's checkpoint; consumers
drop what they have seen by ce_id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from sqlalchemy import delete

from kyosei_events import EventStore, KeyVault, consumer_group, dead_letter_topic, events_topic
from kyosei_events.crypto import master_key_from_hex
from kyosei_events.database import create_engine
from kyosei_events.model import travels
from kyosei_events.tables import processed_messages

from .bus import kafka_broker, kafka_client_options, kafka_security
from .settings import Settings

# Headers the consumer adds to a dead-letter copy; the rest are the original's.
DLQ_PREFIX = "dlq_"


@asynccontextmanager
async def open_store(name: str, settings: Settings) -> AsyncIterator[EventStore]:
    """The store of service ``name``, on engines of its own, disposed of on the way out."""
    engine = create_engine(settings.database_url, schema=settings.db_schema)
    keys = create_engine(settings.keys_database_url, schema=settings.keys_db_schema)
    try:
        yield EventStore(
            engine,
            KeyVault(
                keys,
                master_key_from_hex(settings.master_key),
                previous_master_key=settings.previous_master_key_bytes(),
            ),
            name=name,
        )
    finally:
        await engine.dispose()
        await keys.dispose()


@dataclass(frozen=True)
class DeadLetter:
    """One message on a dead-letter topic."""

    partition: int
    offset: int
    timestamp: int  # ms, the broker's
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode("utf-8", "replace")
        return None

    @property
    def original(self) -> list[tuple[str, bytes]]:
        """The original message's headers (without the ``dlq_*`` ones)."""
        return [(k, v) for k, v in self.headers if not k.startswith(DLQ_PREFIX)]

    @property
    def replayable(self) -> bool:
        """False when the copy left the value out (too large): the original is then
        only where ``dlq_value`` says."""
        return self.header("dlq_value") is None and self.header("dlq_topic") is not None

    def line(self) -> str:
        when = datetime.fromtimestamp(self.timestamp / 1000, UTC).isoformat(timespec="seconds")
        reason = (self.header("dlq_reason") or "").replace("\n", " ")
        origin = (
            f"{self.header('dlq_topic')}/{self.header('dlq_partition')}/{self.header('dlq_offset')}"
        )
        note = "" if self.replayable else "  [value omitted: not replayable]"
        return (
            f"{self.partition}:{self.offset}  {when}  from {origin}  "
            f"{self.header('ce_type') or '-'}  {self.header('ce_id') or '-'}  "
            f"{reason}{note}"
        )


async def read_dead_letters(
    settings: Settings, topic: str, *, wait: float = 10.0
) -> list[DeadLetter]:
    """Every message on ``topic`` up to its end offsets (no consumer group: nothing is
    committed, the service's consumer is not disturbed)."""
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_client_options(settings),
    )
    await consumer.start()
    try:
        partitions = None
        deadline = time.monotonic() + wait
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            if not partitions and time.monotonic() > deadline:
                return []
            if not partitions:
                await asyncio.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[ConsumerRecord[bytes, bytes]] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            if time.monotonic() > deadline + wait:
                raise TimeoutError(f"could not read {topic} to its end offsets")
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batch.items():
                out.extend(r for r in records if r.offset < ends[tp])
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    out.sort(key=lambda r: (r.partition, r.offset))
    return [
        DeadLetter(r.partition, r.offset, r.timestamp, r.key, r.value, tuple(r.headers or ()))
        for r in out
    ]


async def list_dead_letters(name: str, settings: Settings) -> int:
    topic = dead_letter_topic(name, settings.topic_prefix)
    letters = await read_dead_letters(settings, topic)
    for letter in letters:
        print(letter.line())
    print(f"{name}: {len(letters)} dead letters on {topic}")
    return 0


def _chosen(letters: Sequence[DeadLetter], offsets: Iterable[str]) -> list[DeadLetter]:
    """The dead letters named by ``offsets``: ``P:N``, or ``N`` when only one partition
    has that offset. An offset that names nothing, or several, is an error."""
    chosen: list[DeadLetter] = []
    for wanted in offsets:
        if ":" in wanted:
            p, o = (int(x) for x in wanted.split(":", 1))
            found = [d for d in letters if (d.partition, d.offset) == (p, o)]
        else:
            found = [d for d in letters if d.offset == int(wanted)]
            if len(found) > 1:
                raise SystemExit(
                    f"offset {wanted} is on {len(found)} partitions: name one as "
                    f"PARTITION:{wanted} (as `kyosei dlq list` prints it)"
                )
        if not found:
            raise SystemExit(f"no dead letter at offset {wanted}")
        chosen.extend(d for d in found if d not in chosen)
    return chosen


async def replay(
    name: str, settings: Settings, *, offsets: Sequence[str] = (), everything: bool = False
) -> int:
    """Publish the chosen dead letters to their original topics again, after clearing
    the consumer's processed mark of each ce_id. Exit status 1 if one could not be
    replayed (its value was left out of the copy)."""
    topic = dead_letter_topic(name, settings.topic_prefix)
    letters = await read_dead_letters(settings, topic)
    chosen = list(letters) if everything else _chosen(letters, offsets)
    skipped = [d for d in chosen if not d.replayable]
    chosen = [d for d in chosen if d.replayable]
    for d in skipped:
        print(f"SKIPPED {d.partition}:{d.offset}: {d.header('dlq_value') or 'no origin'}")
    group = consumer_group(name, settings.topic_prefix)
    async with open_store(name, settings) as store:
        ids = {i for d in chosen if (i := d.header("ce_id"))}
        if ids:
            # First, so that the message is not dropped as a duplicate when it arrives.
            async with store.unit_of_work() as uow:
                await uow.conn.execute(
                    delete(processed_messages).where(
                        processed_messages.c.consumer == group,
                        processed_messages.c.message_id.in_(sorted(ids)),
                    )
                )
    broker = kafka_broker(settings.kafka_bootstrap, service=name, security=kafka_security(settings))
    await broker.connect()
    try:
        for d in chosen:
            original = d.header("dlq_topic")
            assert original is not None
            headers = {k: v.decode("utf-8", "replace") for k, v in d.original}
            await broker.publish(
                d.value,
                original,
                key=d.key,
                headers=headers,
                correlation_id=headers.get("correlation_id"),
            )
            print(f"replayed {d.partition}:{d.offset} ({d.header('ce_id') or '-'}) to {original}")
    finally:
        await broker.stop()
    print(f"{name}: {len(chosen)} replayed, {len(skipped)} skipped")
    return 1 if skipped else 0


async def republish(name: str, settings: Settings, *, from_position: int) -> int:
    """Publish the service's events at ``from_position`` and after to its events topic
    again, in log order, as the relay published them (store-only events stay in the
    store). The relay's checkpoint is not touched."""
    topic = events_topic(name, settings.topic_prefix)
    source = f"/kyosei/{name}"
    sent = 0
    broker = kafka_broker(settings.kafka_bootstrap, service=name, security=kafka_security(settings))
    async with open_store(name, settings) as store:
        await broker.connect()
        try:
            position = from_position - 1
            while True:
                batch = await store.read_positions(position, 500)
                if not batch:
                    break
                futures = []
                for rec in batch:
                    position = rec.position
                    if not travels(rec.event_type):
                        continue  # store-only: the relay never published it either
                    env = rec.envelope(source)
                    futures.append(
                        await broker.publish(
                            rec.payload.encode(),
                            topic,
                            key=env.key,
                            headers=env.header_map(),
                            correlation_id=env.effective_correlation_id,
                            no_confirm=True,
                        )
                    )
                for future in futures:
                    await future
                sent += len(futures)
                print(f"… {sent} events republished (to position {position})", flush=True)
        finally:
            await broker.stop()
    print(f"{name}: {sent} events from position {from_position} republished to {topic}")
    return 0
