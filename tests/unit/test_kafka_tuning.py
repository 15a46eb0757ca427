"""What sets an event's latency through Kafka is a setting: the producer's linger, the
relay's batch, the consumer's fetch wait and commit interval; the consumer commits the
offsets it has processed in the background, coalesced, and never one it has not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from kyosei_events.consumer import Batch, _BatchAcknowledging, _Committer
from kyosei_platform.dev import dev_settings
from kyosei_platform.runtime import ServiceRuntime
from kyosei_platform.service import discover
from kyosei_platform.settings import Settings


def coordination_runtime(monkeypatch: pytest.MonkeyPatch, **settings: str) -> ServiceRuntime:
    """Coordination's runtime as its settings (KYOSEI_<name>) build it; nothing started."""
    for name, value in {
        "DATABASE_URL": "sqlite+aiosqlite:///unused.db",
        "KEYS_DATABASE_URL": "sqlite+aiosqlite:///unused-keys.db",
        "KAFKA_BOOTSTRAP": "kafka:9092",
        "MASTER_KEY": "44" * 32,
        "AUTH_SECRET": "s" * 32,
        **settings,
    }.items():
        monkeypatch.setenv(f"KYOSEI_{name}", value)
    return ServiceRuntime(discover()["coordination"], Settings())  # type: ignore[call-arg]


def test_the_runtime_takes_the_kafka_timings_from_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = coordination_runtime(
        monkeypatch,
        KAFKA_LINGER_MS="7",
        KAFKA_FETCH_MAX_WAIT_MS="9",
        KAFKA_COMMIT_INTERVAL_MS="250",
        RELAY_BATCH_SIZE="42",
        CONSUMER_MAX_BATCH="7",
    )
    assert runtime.broker._connection_kwargs["linger_ms"] == 7  # type: ignore[attr-defined]
    assert runtime.relay.batch_size == 42
    assert runtime.consumer is not None
    assert runtime.consumer.commit_interval == 0.25
    subscriber: Any = runtime.consumer._subscriber
    assert subscriber._connection_args["fetch_max_wait_ms"] == 9
    # what one fetch brings, at most, handled as one batch
    assert runtime.consumer.max_batch == 7
    assert subscriber.max_records == 7
    # only what is processed is committed: never aiokafka's auto-commit
    assert subscriber._connection_args["enable_auto_commit"] is False


def test_defaults_and_the_embedded_broker(tmp_path: Any) -> None:
    fields = Settings.model_fields
    assert fields["kafka_linger_ms"].default == 0
    assert fields["relay_batch_size"].default == 500
    assert fields["consumer_max_batch"].default == 100
    # A Kafka broker answers a fetch as soon as there is something to fetch; the
    # embedded one only when the wait is over, so `kyosei dev` waits less.
    assert fields["kafka_fetch_max_wait_ms"].default == 500
    dev = dev_settings("intake", tmp_path, ["127.0.0.1:9092"], 8001, "127.0.0.1")
    assert dev.kafka_fetch_max_wait_ms < 50


class FakeConsumer:
    def __init__(self, fail: bool = False) -> None:
        self.commits: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.fail = fail
        self.answer = asyncio.Event()
        self.answer.set()

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await self.answer.wait()
        self.commits.append(dict(offsets))
        if self.fail:
            raise RuntimeError("rebalanced")

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))


def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="t",
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=b"",
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=(),
    )


async def test_commits_go_in_the_background_coalesced_per_partition() -> None:
    consumer = FakeConsumer()
    consumer.answer.clear()  # the first commit waits for the broker
    committer = _Committer("c", consumer, 0)
    await _BatchAcknowledging(committer, (record(0, 5),)).commit()  # returns at once
    await asyncio.sleep(0)
    for partition, offset in ((0, 6), (1, 3), (0, 7)):
        await _BatchAcknowledging(committer, (record(partition, offset),)).commit()
    consumer.answer.set()
    await committer.flush()
    tp0, tp1 = TopicPartition("t", 0), TopicPartition("t", 1)
    # the offset after each message done with: one commit in flight, the rest as one
    assert consumer.commits == [{tp0: 6}, {tp0: 8, tp1: 4}]


async def test_a_nack_seeks_and_commits_nothing() -> None:
    consumer = FakeConsumer()
    committer = _Committer("c", consumer, 0)
    _BatchAcknowledging(committer, (record(0, 9),)).seek(TopicPartition("t", 0), 9)
    await committer.flush()
    assert consumer.seeks == [(TopicPartition("t", 0), 9)]
    assert consumer.commits == []


async def test_a_nack_in_a_batch_commits_what_was_done_and_rewinds_to_the_rest() -> None:
    consumer = FakeConsumer()
    committer = _Committer("c", consumer, 0)
    records = (record(0, 4), record(0, 5), record(1, 7), record(1, 8), record(2, 3))
    acknowledging = _BatchAcknowledging(committer, records)
    acknowledging.batch = Batch((), done=3)  # partition 0 and offset 7 of partition 1
    tp0, tp1, tp2 = (TopicPartition("t", n) for n in range(3))
    # FastStream's nack: each partition of the batch, with its first offset in it
    for tp, first in ((tp0, 4), (tp1, 7), (tp2, 3)):
        acknowledging.seek(tp, first)
    await committer.flush()
    # partition 0 was done with: not rewound, committed past it; partition 1 from 8
    assert consumer.seeks == [(tp1, 8), (tp2, 3)]
    assert consumer.commits == [{tp0: 6, tp1: 8}]


async def test_a_failed_commit_is_logged_not_raised() -> None:
    consumer = FakeConsumer(fail=True)
    committer = _Committer("c", consumer, 0)
    await _BatchAcknowledging(committer, (record(2, 0),)).commit()
    await committer.flush()
    await _BatchAcknowledging(committer, (record(2, 1),)).commit()
    await committer.flush()
    assert consumer.commits == [{TopicPartition("t", 2): 1}, {TopicPartition("t", 2): 2}]


async def test_an_interval_spaces_the_commits() -> None:
    consumer = FakeConsumer()
    committer = _Committer("c", consumer, 0.05)
    await _BatchAcknowledging(committer, (record(0, 0),)).commit()
    await asyncio.sleep(0.01)
    await _BatchAcknowledging(committer, (record(0, 1),)).commit()
    await _BatchAcknowledging(committer, (record(0, 2),)).commit()
    assert consumer.commits == [{TopicPartition("t", 0): 1}]
    await committer.flush()
    assert consumer.commits == [{TopicPartition("t", 0): 1}, {TopicPartition("t", 0): 3}]


async def test_the_subscriber_takes_what_is_fetched_as_soon_as_there_is_any(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The consumer's subscriber asks aiokafka for what has been fetched, at most a
    batch, waiting at most IDLE_WAIT_MS (aiokafka returns as soon as there is any), and
    goes back to waiting at once after a wait that brought nothing: no pause between
    (FastStream's batch subscriber pauses as long again)."""
    from kyosei_events.consumer import IDLE_WAIT_MS

    runtime = coordination_runtime(monkeypatch)
    assert runtime.consumer is not None
    subscriber: Any = runtime.consumer._subscriber
    calls: list[tuple[int, int | None]] = []
    answers = [{}, {TopicPartition("t", 0): [record(0, 4)], TopicPartition("t", 1): [record(1, 2)]}]

    class Fetching:
        async def getmany(self, *, timeout_ms: int, max_records: int | None) -> Any:
            calls.append((timeout_ms, max_records))
            return answers.pop(0)

    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("anyio.sleep", no_sleep)
    assert await subscriber.get_msg(Fetching()) == ()
    got = await subscriber.get_msg(Fetching())
    assert [(r.partition, r.offset) for r in got] == [(0, 4), (1, 2)]
    assert calls == [(IDLE_WAIT_MS, 100), (IDLE_WAIT_MS, 100)]
    assert slept == []
