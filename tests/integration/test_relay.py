"""The outbox relay over the embedded broker (real Kafka protocol over TCP): at least
once, in order per key, CloudEvents headers, and it survives crashes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker

from kyosei_events import START, Envelope, EventStore, KeyVault, OutboxRelay, RecordedEvent
from kyosei_events.database import create_engine
from tests.backbone_support import (
    CALLER_NAME,
    case_opened,
    consultation,
    new,
    read_topic,
    settled,
)
from tests.conftest import MASTER_KEY

SOURCE = "urn:kyosei:service:intake"
REPO = Path(__file__).resolve().parents[2]


async def append_interleaved(
    store: EventStore, households: int, rounds: int
) -> list[RecordedEvent]:
    """Events of several households, interleaved in the log."""
    out: list[RecordedEvent] = []
    for r in range(rounds):
        for h in range(households):
            hh = f"hh-{h}"
            if r % 2 == 0:
                out += await store.append(f"consultation-{hh}", [new(consultation(hh))])
            else:
                out += await store.append(f"case-{hh}", [new(case_opened(hh))])
    return out


def ids_of(records: list[Any]) -> list[str]:
    return [Envelope.from_headers(r.headers).id for r in records]


async def eventually_read(bootstrap: list[str], topic: str, count: int, within: float) -> list[Any]:
    deadline = time.monotonic() + within
    while True:
        records = await read_topic(bootstrap, topic, wait=0.5, expect_at_least=count)
        if len(records) >= count or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.05)


async def test_relay_publishes_committed_events_with_key_headers_and_order(
    store: EventStore, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    appended = await append_interleaved(store, households=4, rounds=5)
    await settled(store)
    relay = OutboxRelay(store, kafka_broker, topic=topic, source=SOURCE, batch_size=6)
    assert await relay.publish_pending() == 20
    assert await store.checkpoint(relay.name) == appended[-1].cursor

    records = await read_topic(kafka_bootstrap, topic)
    assert len(records) == 20
    stored = {r.event_id: r for r in appended}
    partitions: dict[str, set[int]] = defaultdict(set)
    for record in records:
        env = Envelope.from_headers(record.headers)
        rec = stored[env.id]
        assert record.key == rec.subject.encode() == env.key
        assert env == rec.envelope(SOURCE)
        # On the wire: the CloudEvents headers exactly, plus FastStream's correlation_id
        # (the correlation the event belongs to), each once.
        wire = dict(record.headers)
        assert len(wire) == len(record.headers)
        assert wire == dict(env.to_headers()) | {"correlation_id": b"corr-1"}
        assert record.value == rec.payload.encode()  # exactly as stored (sealed)
        assert CALLER_NAME.encode() not in record.value
        partitions[rec.subject].add(record.partition)
    # One partition per household, and in each the household's log order.
    assert all(len(p) == 1 for p in partitions.values())
    for subject in partitions:
        on_topic = [r for r in records if r.key == subject.encode()]
        assert ids_of(on_topic) == [r.event_id for r in appended if r.subject == subject]

    # Nothing is published twice by the same relay; new commits are picked up.
    assert await relay.publish_pending() == 0
    later = await store.append("case-hh-0", [new(case_opened("hh-0"))])
    await settled(store)
    assert await relay.publish_pending() == 1
    records = await read_topic(kafka_bootstrap, topic)
    assert len(records) == 21
    assert ids_of(records).count(later[0].event_id) == 1


async def test_relay_wakes_when_the_store_commits(
    store: EventStore, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    relay = OutboxRelay(store, kafka_broker, topic=topic, source=SOURCE, poll_interval=60)
    relay.start()
    try:
        await asyncio.sleep(0.1)
        (rec,) = await store.append("case-hh-1", [new(case_opened("hh-1"))], 0)
        records = await eventually_read(kafka_bootstrap, topic, 1, within=10)
        assert ids_of(records) == [rec.event_id]
    finally:
        await relay.stop()


@pytest.mark.postgres
async def test_relay_wakes_on_notify_from_another_process(
    pg_store: EventStore, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    channel = f"relay_{topic.split('.')[1]}"
    pg_store.notify_channel(channel)
    relay = OutboxRelay(pg_store, kafka_broker, topic=topic, source=SOURCE, poll_interval=60)
    # The writer is another store object (another process): no in-process wake-up.
    writer = EventStore(pg_store.engine, pg_store.vault, name="writer")
    writer.notify_channel(channel)
    relay.start()
    try:
        for _ in range(500):
            if relay._listen_conn is not None:
                break
            await asyncio.sleep(0.02)
        assert relay._listen_conn is not None, "the relay did not LISTEN"
        await asyncio.sleep(0.2)  # the first (empty) pass is over; the relay now waits
        (rec,) = await writer.append("case-hh-1", [new(case_opened("hh-1"))], 0)
        records = await eventually_read(kafka_bootstrap, topic, 1, within=10)
        assert ids_of(records) == [rec.event_id], "the relay did not wake on NOTIFY"
    finally:
        await relay.stop()


CHILD = textwrap.dedent(
    """
    import asyncio, json, os, signal, sys

    from kyosei_events import EventStore, KeyVault, OutboxRelay
    from kyosei_events.database import create_engine
    from kyosei_platform.bus import kafka_broker
    from tests.backbone_support import case_opened, consultation, new

    async def main(data: str, mode: str, bootstrap: str, topic: str) -> None:
        vault = KeyVault(create_engine(f"sqlite+aiosqlite:///{data}/keys.db"), bytes(range(32)))
        await vault.create_tables()
        engine = create_engine(f"sqlite+aiosqlite:///{data}/events.db")
        store = EventStore(engine, vault, name="child")
        await store.create_tables()
        ids = []
        for i in range(12):
            hh = f"hh-{i % 3}"
            event = consultation(hh) if i % 2 else case_opened(hh)
            recs = await store.append(f"stream-{hh}", [new(event)])
            ids += [r.event_id for r in recs]
        print(json.dumps(ids), flush=True)
        if mode == "crash-before-checkpoint":
            broker = kafka_broker(bootstrap.split(","), service="child")
            await broker.start()
            relay = OutboxRelay(store, broker, topic=topic, source="urn:child", batch_size=5)

            async def crash(*_args):
                print("published, crashing before the checkpoint", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)

            store.save_checkpoint = crash
            await relay.publish_pending()
        # Committed; the process dies before any relay has published (or checkpointed).
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main(*sys.argv[1:]))
    """
)


async def run_child(tmp_path: Path, mode: str, bootstrap: list[str], topic: str) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(tmp_path),
        mode,
        ",".join(bootstrap),
        topic,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    ids: list[str] = json.loads(out.decode().splitlines()[0])
    assert len(ids) == 12
    return ids


async def restarted(tmp_path: Path) -> tuple[EventStore, Any]:
    """The store opened afresh after the crash, as a restarted service does."""
    vault = KeyVault(create_engine(f"sqlite+aiosqlite:///{tmp_path}/keys.db"), MASTER_KEY)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/events.db")
    return EventStore(engine, vault, name="child"), engine


async def test_a_crash_between_commit_and_publish_loses_nothing(
    tmp_path: Path, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    ids = await run_child(tmp_path, "crash-after-commit", kafka_bootstrap, topic)
    assert await read_topic(kafka_bootstrap, topic, wait=0.5) == []

    store, engine = await restarted(tmp_path)
    try:
        assert await store.checkpoint("relay") == START
        relay = OutboxRelay(store, kafka_broker, topic=topic, source=SOURCE, batch_size=5)
        assert await relay.publish_pending() == 12
        records = await read_topic(kafka_bootstrap, topic)
        assert sorted(ids_of(records)) == sorted(ids)
        assert all(r.ok for r in await store.verify_all())
    finally:
        await engine.dispose()


async def test_a_crash_between_publish_and_checkpoint_republishes(
    tmp_path: Path, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    ids = await run_child(tmp_path, "crash-before-checkpoint", kafka_bootstrap, topic)
    first = await read_topic(kafka_bootstrap, topic)
    assert ids_of(first) and set(ids_of(first)) < set(ids)  # the first batch went out

    store, engine = await restarted(tmp_path)
    try:
        assert await store.checkpoint("relay") == START  # ... but was not checkpointed
        relay = OutboxRelay(store, kafka_broker, topic=topic, source=SOURCE)
        assert await relay.publish_pending() == 12
        records = await read_topic(kafka_bootstrap, topic)
        seen = ids_of(records)
        assert set(seen) == set(ids)  # none missing
        assert len(seen) == 12 + len(first)  # the first batch twice: consumers dedupe
    finally:
        await engine.dispose()


class FailingBroker:
    """Publishes through the real broker, but fails ``failures`` publishes after ``ok``."""

    def __init__(self, inner: KafkaBroker, *, ok: int, failures: int = 1_000_000) -> None:
        self.inner, self.ok, self.failures = inner, ok, failures
        self.sent = 0

    async def publish(self, message: bytes, topic: str, **kw: Any) -> Any:
        if self.ok == 0 and self.failures > 0:
            self.failures -= 1
            raise KafkaConnectionError("broker went away")
        self.ok = max(self.ok - 1, 0)
        self.sent += 1
        return await self.inner.publish(message, topic, **kw)


async def test_a_relay_failing_mid_batch_is_completed_by_the_next(
    store: EventStore, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    appended = await append_interleaved(store, households=3, rounds=4)
    await settled(store)
    failing = FailingBroker(kafka_broker, ok=6)
    relay = OutboxRelay(store, failing, topic=topic, source=SOURCE, batch_size=4)
    with pytest.raises(KafkaConnectionError):
        await relay.publish_pending()
    assert failing.sent == 6
    # The first batch was acknowledged and checkpointed, and so were the two messages
    # of the second acknowledged before the one that failed.
    assert await store.checkpoint(relay.name) == appended[5].cursor

    again = OutboxRelay(store, kafka_broker, topic=topic, source=SOURCE, batch_size=4)
    assert await again.publish_pending() == 6
    records = await read_topic(kafka_bootstrap, topic)
    seen = ids_of(records)
    assert set(seen) == {r.event_id for r in appended}  # none missing
    assert len(seen) == 6 + 6  # nothing twice
    # Per key, the last copy of each event is in log order.
    for subject in {r.subject for r in appended}:
        on_topic = ids_of([r for r in records if r.key == subject.encode()])
        expected = [r.event_id for r in appended if r.subject == subject]
        assert list(dict.fromkeys(reversed(on_topic)))[::-1] == expected


async def test_a_running_relay_retries_until_the_broker_is_back(
    store: EventStore, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    appended = await append_interleaved(store, households=2, rounds=3)
    await settled(store)
    failing = FailingBroker(kafka_broker, ok=2, failures=2)
    relay = OutboxRelay(store, failing, topic=topic, source=SOURCE, batch_size=4, poll_interval=60)
    relay.start()
    try:
        records = await eventually_read(kafka_bootstrap, topic, 2 + len(appended), within=15)
    finally:
        await relay.stop()
    assert set(ids_of(records)) == {r.event_id for r in appended}
    assert await store.checkpoint(relay.name) == appended[-1].cursor
