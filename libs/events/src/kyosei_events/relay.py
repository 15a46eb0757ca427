"""The outbox relay: publishes committed events from the store to Kafka.

At least once and in order per key: a batch is read from the log in commit-safe
order, published through the service's FastStream broker (its producer idempotent,
acks=all) without waiting for each message, and only when every message of the batch
is acknowledged is the checkpoint saved. A crash between commit and publish, or
between publish and checkpoint, means the events are (re)published on restart;
consumers drop duplicates by ``ce_id``.

Store-only event types (``published = False``, e.g. the minutes of a 支援会議) are
never sent: the relay steps over them.

The relay wakes when the store commits in this process, on PostgreSQL also on
LISTEN/NOTIFY from other processes (wakeup.py), and otherwise polls every ``poll_interval``.
On PostgreSQL a read stops below the oldest transaction still running in the database
(commit-order safety, store.py), whichever tables it writes, and when that transaction
ends nothing wakes the relay: while the log holds a committed event above the highest
position it has read, the relay reads again soon (after 5 ms, doubling up to
``poll_interval``).

Every replica of a service runs a relay, but one publishes at a time: on PostgreSQL the
leader holds an advisory lock on a connection of its own, the others try to take it
every ``poll_interval`` and take over when the leader's session ends (leader.py). The
checkpoint only moves forward, so a relay that lost the lead mid-batch cannot rewind it;
what it published in that window is published again by the new leader (duplicates
that consumers drop).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka.errors import KafkaError, KafkaTimeoutError, ProducerClosed
from faststream.exceptions import FastStreamException
from faststream.kafka import KafkaBroker
from prometheus_client import Counter, Gauge, Histogram

from .leader import AdvisoryLock, lock_key
from .model import travels
from .records import LogCursor, RecordedEvent
from .store import EventStore
from .wakeup import Listening

log = structlog.get_logger(__name__)

# Publish counts and durations are FastStream's (faststream_published_messages_*).
RELAY_POSITION = Gauge("kyosei_relay_position", "Last log position the relay published", ["store"])
RELAY_ERRORS = Counter("kyosei_relay_errors_total", "Relay batches that failed", ["store"])
RELAY_STUCK = Gauge(
    "kyosei_relay_stuck",
    "1 while the relay is held up by an event it cannot publish (see the relay_stuck log)",
    ["store"],
)
RELAY_LEADER = Gauge(
    "kyosei_relay_leader", "1 while this process's relay is the one that publishes", ["store"]
)
RELAY_BACKLOG = Gauge(
    "kyosei_relay_backlog",
    "Log positions not yet published: the log's head position minus the relay's checkpoint",
    ["store"],
)
PUBLISH_LATENCY = Histogram(
    "kyosei_relay_publish_latency_seconds",
    "Seconds from an event's commit (recorded_at) to Kafka's acknowledgement of its publish",
    ["store"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600),
)


@dataclass(frozen=True)
class Stuck:
    """The event the relay cannot get past: Kafka refused it for good (too large, or
    another error no retry mends). Nothing after it is published until it goes out."""

    stream_id: str
    version: int
    position: int
    event_id: str
    error: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _observe_latency(store: str, published: list[RecordedEvent]) -> None:
    """Kafka acknowledged ``published``: the time since each was committed."""
    if not published:
        return
    now = datetime.now(UTC)
    histogram = PUBLISH_LATENCY.labels(store)
    for rec in published:
        try:
            committed = datetime.fromisoformat(rec.recorded_at)
        except ValueError:
            continue
        histogram.observe(max((now - committed).total_seconds(), 0.0))


# The first wait before reading again while committed events are held back.
HELD_BACK_RETRY = 0.005
# Seconds between checks that the leader's lock is still held (a check is a round trip
# on the lock's connection; a relay that lost the lead and does not know it yet only
# publishes again what the new leader publishes too, which consumers drop).
LEADER_CHECK_INTERVAL = 1.0


def _skipped() -> asyncio.Future[None]:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


def _permanent(exc: BaseException) -> bool:
    """Whether publishing one message failed for good (retrying the same message
    cannot succeed): Kafka's non-retriable errors, or a message the client refuses."""
    if isinstance(exc, KafkaTimeoutError | ProducerClosed | FastStreamException):
        return False  # the broker is away or the client is (re)connecting
    if isinstance(exc, KafkaError):
        return not exc.retriable
    return not isinstance(exc, OSError | TimeoutError | asyncio.CancelledError)


class OutboxRelay:
    def __init__(
        self,
        store: EventStore,
        broker: KafkaBroker,
        *,
        topic: str,
        source: str,
        name: str = "relay",
        batch_size: int = 500,
        poll_interval: float = 5.0,
    ) -> None:
        self.store = store
        self.broker = broker
        self.topic = topic
        self.source = source
        self.name = name
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listen_conn: Listening | None = None
        self._lock = (
            AdvisoryLock(store.engine, lock_key(store.engine, name))
            if store.dialect == "postgresql"
            else None
        )
        self._leader = False
        self._checked_at = -LEADER_CHECK_INTERVAL
        # The checkpoint as this relay last read or saved it, while it leads (None:
        # read it from the database first). Only the leader moves it.
        self._cursor: LogCursor | None = None
        # The event whose publishing raised, and what it raised (to tell a message
        # Kafka refuses from the database or the broker being away).
        self._failed: tuple[RecordedEvent, BaseException] | None = None
        self.stuck: Stuck | None = None
        # The highest log position read so far (published or stepped over), and the
        # log's head as the last read saw it.
        self._read_to = 0
        self._head = 0
        self._retry = min(HELD_BACK_RETRY, poll_interval)
        RELAY_LEADER.labels(store.name).set(0)
        RELAY_STUCK.labels(store.name).set(0)
        store.on_commit(self._wake.set)

    @property
    def is_leader(self) -> bool:
        """Whether this relay is the one publishing (always, on SQLite, once running)."""
        return self._leader

    def _set_leader(self, leading: bool) -> None:
        if leading != self._leader:
            log.info(
                "relay_leading" if leading else "relay_standing_by",
                store=self.store.name,
                relay=self.name,
            )
            RELAY_LEADER.labels(self.store.name).set(1 if leading else 0)
            self._cursor = None
        self._leader = leading
        self.store.wakeup.publishing_here = leading

    async def _lead(self) -> bool:
        """Take or keep the lead; False when another relay has it."""
        if self._lock is None:
            leading = True
        elif self._lock.held:
            now = asyncio.get_running_loop().time()
            if now - self._checked_at < LEADER_CHECK_INTERVAL:
                return self._leader
            leading = await self._lock.check()
            self._checked_at = now
        else:
            leading = await self._lock.try_acquire()
        self._set_leader(leading)
        return leading

    def wake(self) -> None:
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish everything committed so far. Returns how many events were sent."""
        total = 0
        self._failed = None
        cursor = self._cursor
        if cursor is None:
            cursor = await self.store.checkpoint(self.name)
        while True:
            if total and self._lock is not None and self._lock.held and not await self._lead():
                return total  # the lead was lost: another relay carries on
            batch, self._head = await self.store.read_log_and_head(cursor, self.batch_size)
            if not batch:
                self._cursor = cursor
                return total
            futures: list[Any] = []
            try:
                for rec in batch:
                    if not travels(rec.event_type):
                        # A store-only event: nothing to send, acknowledged at once so
                        # that the checkpoint moves past it with its batch.
                        futures.append(_skipped())
                        continue
                    try:
                        env = rec.envelope(self.source)
                        future = await self.broker.publish(
                            rec.payload.encode(),
                            self.topic,
                            key=env.key,
                            headers=env.header_map(),
                            correlation_id=env.effective_correlation_id,
                            no_confirm=True,
                        )
                    except Exception as exc:
                        self._failed = (rec, exc)
                        raise
                    futures.append(future)
            except Exception:
                await self._keep_acknowledged(batch, futures)
                raise
            await self._keep_acknowledged(batch, futures)
            _observe_latency(self.store.name, batch)
            self._read_to = max(self._read_to, *(rec.position for rec in batch))
            cursor = batch[-1].cursor
            await self.store.save_checkpoint(self.name, cursor)
            self._cursor = cursor
            total += sum(1 for rec in batch if travels(rec.event_type))
            RELAY_POSITION.labels(self.store.name).set(cursor.position)
            log.debug("relayed", store=self.store.name, count=len(batch), position=cursor.position)
            if len(batch) < self.batch_size:
                # The read stopped at the horizon or at the head: what was held back is
                # for _held_back, what commits next wakes the relay.
                return total

    async def _keep_acknowledged(self, batch: list[RecordedEvent], futures: list[Any]) -> None:
        """Wait for the messages sent; if one failed, checkpoint those acknowledged
        before it (fewer duplicates on the next try) and raise its error."""
        results = await asyncio.gather(*futures, return_exceptions=True)
        for i, result in enumerate(results):
            if isinstance(result, BaseException):
                _observe_latency(self.store.name, batch[:i])
                self._failed = (batch[i], result)
                if i:
                    await self.store.save_checkpoint(self.name, batch[i - 1].cursor)
                raise result
        if len(futures) < len(batch) and futures:
            await self.store.save_checkpoint(self.name, batch[len(futures) - 1].cursor)

    async def backlog(self) -> int:
        """How far the relay is behind: the log's head position minus the position of
        its checkpoint (an upper bound on PostgreSQL, where positions are not quite in
        commit order); also sets ``kyosei_relay_backlog``."""
        head = await self.store.head_position()
        checkpoint = await self.store.checkpoint(self.name)
        behind = max(head - max(checkpoint.position, 0), 0)
        RELAY_BACKLOG.labels(self.store.name).set(behind)
        return behind

    async def run(self) -> None:
        self._listen_conn = await self.store.wakeup.listen(self._wake.set)
        backoff = 0.5
        while True:
            self._wake.clear()
            self._failed = None
            try:
                if not await self._lead():
                    await asyncio.sleep(self.poll_interval)
                    continue
                await self.publish_pending()
                backoff = 0.5
                self._unstuck()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._cursor = None  # read it again: the batch may be partly checkpointed
                # Kafka or the database is unavailable: nothing is lost, the checkpoint
                # has not moved; try again with backoff. An event Kafka refuses for good
                # holds up everything after it (order per key): say so loudly.
                RELAY_ERRORS.labels(self.store.name).inc()
                failed = self._failed
                if failed is not None and failed[1] is exc and _permanent(exc):
                    self._stuck_on(failed[0], exc)
                else:
                    log.warning("relay_failed", store=self.store.name, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            wait = self.poll_interval
            if self._held_back():
                wait = self._retry
                self._retry = min(self._retry * 2, self.poll_interval)
            else:
                self._retry = min(HELD_BACK_RETRY, self.poll_interval)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation
            # that arrives as the wake-up does, and stop() would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    def _held_back(self) -> bool:
        """On PostgreSQL, whether the log held a committed event above the highest
        position read when it was last read: one the read could not reach yet (a
        transaction that began before it was still running). Elsewhere False (the poll
        interval applies)."""
        return self._lock is not None and self._head > self._read_to

    def _stuck_on(self, rec: RecordedEvent, exc: Exception) -> None:
        self.stuck = Stuck(
            stream_id=rec.stream_id,
            version=rec.version,
            position=rec.position,
            event_id=rec.event_id,
            error=f"{type(exc).__name__}: {exc}",
        )
        RELAY_STUCK.labels(self.store.name).set(1)
        log.error(
            "relay_stuck",
            store=self.store.name,
            topic=self.topic,
            stream_id=rec.stream_id,
            version=rec.version,
            position=rec.position,
            event_id=rec.event_id,
            error=self.stuck.error,
            hint="Kafka refuses this event for good; nothing after it is published until "
            "it is (raise the topic's max.message.bytes, or see the operations guide)",
        )

    def _unstuck(self) -> None:
        if self.stuck is not None:
            log.info("relay_unstuck", store=self.store.name, stream_id=self.stuck.stream_id)
            self.stuck = None
            RELAY_STUCK.labels(self.store.name).set(0)

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"relay:{self.name}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listen_conn is not None:
            await self._listen_conn.close()
            self._listen_conn = None
        if self._lock is not None:
            await self._lock.release()
        self._set_leader(False)

    @property
    def cursor_name(self) -> str:
        return self.name


__all__ = ["LogCursor", "OutboxRelay", "Stuck"]
