"""Append, catch-up and rebuild throughput: kyosei's EventStore against the
eventsourcing library and against the database driver alone.

Run with ``make bench`` or ``.venv/bin/python tests/bench/run.py`` (``--help`` for the
flags; ``--quick`` is a smoke run of well under a minute on a quiet machine). Not a
pytest module.

Every system gets the same 256-byte JSON payloads (a ``CaseOpened`` event whose
optional fields are empty, so its one personal field, ``reason``, is absent and nothing
is sealed), on the same PostgreSQL server and on SQLite files in a temporary directory.
Each system has its own fresh PostgreSQL schema, dropped at the end.

Systems
  kyosei         ``EventStore.append`` as shipped (``database.create_engine``): a store
                 without inline projections, so its appends go through the append lane
                 (lane.py: group commit of concurrent appends, one statement per batch
                 on the driver below SQLAlchemy). A service's commands append in a unit
                 of work with its read models instead; the notes give the lane's
                 events per transaction in the 16-writer scenario.
  eventsourcing  its PostgreSQL / SQLite application recorders, same JSON as state.
  raw-driver     the physical limit: the store's ``events`` table (its DDL compiled from
                 ``kyosei_events.tables``: the same columns, primary key, unique
                 (stream_id, version) and event_id, and indexes) and kyosei's INSERT
                 ... RETURNING position, tx_id, sent by the driver alone with each row
                 computed ahead (the same payload and metadata bytes; random hashes, no
                 chain). PostgreSQL: asyncpg, one connection per writer (1 or 16),
                 prepared statement, one row per implicit transaction, like kyosei's
                 one-event append. SQLite: the ``sqlite3`` module, one connection per
                 writer (16 writers: 16 threads) with kyosei's PRAGMAs (WAL, synchronous
                 NORMAL, busy timeout), BEGIN IMMEDIATE, the INSERT, COMMIT per row.

Scenarios
  append-1   one writer, one event per transaction, round-robin over a set of streams,
             so both new-stream and existing-stream appends happen (same plan for all).
  append-16  16 concurrent writers on distinct streams: kyosei as 16 asyncio tasks
             sharing one engine (pool of 16), eventsourcing as 16 threads sharing one
             recorder (pool of 16), the raw driver as 16 asyncio tasks with a
             connection each (PostgreSQL) or 16 threads (SQLite).
  catch-up   a projection from position 0 over a pre-filled log: kyosei's ``catch_up``
             (batched, checkpoint in the same transaction) counting events per stream
             into a read-model table with a batched upsert; eventsourcing's
             ``ProjectionRunner`` with the same read model (it tracks per event, one
             transaction per event) on PostgreSQL.
  rebuild    kyosei alone: a log of ``--rebuild`` events (default 1,000,000; ``--quick``
             20,000; 100 per stream, written 10 per append, 1,000 per transaction) and
             the catch-up scenario's read model built from nothing by ``catch_up``;
             timed is the catch-up only (events/s, and seconds in the note); filling
             the log through the store takes minutes at 1,000,000 events.

The append scenarios run in rounds (``--rounds``, default 6); each round starts with the
next system (kyosei, eventsourcing, raw driver), so a noisy machine disturbs all alike.
Latencies are per append call (p50/p99 in milliseconds).

The ratios section prints, per database and append scenario, kyosei / eventsourcing
and kyosei / raw driver in events/s with the issue's targets and PASS or MISS:
PostgreSQL 1 writer >= 1.5x eventsourcing and >= 0.70 of raw, 16 writers >= 4x and
>= 0.60; SQLite 1 writer >= 1x eventsourcing, 16 writers >= 1x with kyosei's p99 <= 20
ms (kyosei / raw on SQLite has no target); PostgreSQL catch-up >= 10,000 events/s; the
rebuild's events and seconds (no target). The last line counts the targets met.

kyosei alone
  registration  intake's household registration (duplicate check, events, read
             models) with 1,000, 10,000 and 100,000 households already registered, all of them
             sharing the new members' birth date (registration.py; ``--registration``).
  commands   receive + escalate pairs through intake's HTTP API (in-process ASGI client)
             and coordination's consumer: commands/s and CPU ms each, per database
             (commands.py; ``--commands``).
  http parser  intake served by uvicorn over TCP with the h11 parser and with httptools
             (what kyosei ships), taking turns: the server's CPU ms a command, on
             PostgreSQL (or SQLite when it is the only database) (http_parser.py;
             ``--http-parser``).
  soak       intake's resident memory after 1,000, 10,000 and 100,000 commands on SQLite
             (``--quick``: 100 and 300, on SQLite and PostgreSQL, with the allocation
             sites that grew between checkpoints; the full run, about 15 minutes,
             reports RSS only) (soak.py, in a process of its own; ``--soak``). The
             stream-head and key caches grow until full (100,000 and 10,000 as
             shipped), so the full run soaks again with both capped at
             ``--soak-capped`` (1,000): what grows then is not theirs.
  latency    end to end, through Kafka: complex consultations POSTed to intake over HTTP
             at a fixed open-loop rate (``--latency RATE:SECONDS,...``, default
             200:60 and 50:60; ``--quick`` 20:5; ``0`` skips), each timed until its row is in
             coordination's read model (latency.py), on the embedded broker: on
             PostgreSQL with a process per service (intake with the broker in one,
             coordination in another, as compose runs them) and with every service in
             one process as ``make dev`` runs it; on SQLite in one process. Targets on
             PostgreSQL at 200 commands/s for 60 s or more: p50 <= 25 ms, p99 <= 100
             ms.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import psycopg
import sqlalchemy as sa
import structlog
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent, Tracking
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresTrackingRecorder,
)
from eventsourcing.projection import Projection as EsProjection
from eventsourcing.projection import ProjectionRunner
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from eventsourcing.utils import register_topic
from latency import (
    ONE_PROCESS,
    P50_TARGET,
    P99_TARGET,
    PER_SERVICE,
    LatencyResult,
    latency_run,
    parse_rate,
)
from latency import table as latency_table
from prometheus_client import REGISTRY
from psycopg.sql import SQL, Identifier
from registration import RegistrationResult, registration_bench
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import CreateIndex, CreateTable

from kyosei_events import EventStore, KeyVault, NewEvent
from kyosei_events.canonical import canonical_bytes, canonical_text
from kyosei_events.catalogue.coordination import CaseOpened
from kyosei_events.database import create_engine
from kyosei_events.projection import catch_up
from kyosei_events.records import DecodedEvent
from kyosei_events.store import UnitOfWork
from kyosei_events.tables import events as events_table
from kyosei_events.writer import utc_now

DEFAULT_PG_URL = os.environ.get(
    "KYOSEI_BENCH_POSTGRES_URL",
    os.environ.get("KYOSEI_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
)
PAYLOAD_BYTES = 256
MASTER_KEY = bytes(range(32))
ES_TOPIC = "kyosei_bench:CaseOpened"
KYOSEI = "kyosei"
ES = "eventsourcing"
RAW = "raw-driver"
PG = "postgresql"
SQLITE = "sqlite"

# The targets, by (database, scenario); "append-16" is any run with 16 or more
# writers. kyosei / eventsourcing events/s:
ES_TARGETS = {
    (PG, "append-1"): 1.5,
    (PG, "append-16"): 4.0,
    (SQLITE, "append-1"): 1.0,
    (SQLITE, "append-16"): 1.0,
}
# kyosei / raw driver events/s:
RAW_TARGETS = {(PG, "append-1"): 0.70, (PG, "append-16"): 0.60}
# kyosei's p99 per append, ms:
P99_TARGETS = {(SQLITE, "append-16"): 20.0}
CATCH_UP_TARGET = 10_000  # kyosei events/s, PostgreSQL
LATENCY_DRAIN = 10.0  # seconds the latency scenario waits after its window


# -- progress ------------------------------------------------------------------------

_T0 = time.perf_counter()


def progress(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# -- payloads ------------------------------------------------------------------------


class EsCaseOpened:
    """What eventsourcing's mapper rebuilds from a stored event (catch-up scenario)."""

    originator_id: UUID
    originator_version: int


register_topic(ES_TOPIC, EsCaseOpened)

_BASE_TIME = datetime(2025, 4, 1, 9, 0, 0, 123456, tzinfo=UTC)


def make_event(i: int) -> CaseOpened:
    """A CaseOpened whose canonical JSON is exactly PAYLOAD_BYTES long (its optional
    fields empty, so the personal ``reason`` is absent and nothing is sealed)."""
    fields: dict[str, Any] = {
        "case_id": f"case-{uuid.uuid4().hex[:10]}",
        "household_id": f"hh-{uuid.uuid4().hex[:10]}",
        "consultation_id": f"con-{uuid.uuid4().hex[:10]}",
        "concerns": ["care", "hardship"],
        # microseconds never 0, so the timestamp always has the same width
        "opened_at": _BASE_TIME + timedelta(seconds=i, microseconds=1 + i % 800_000),
    }
    probe = CaseOpened(escalated_by="a", **fields)
    pad = PAYLOAD_BYTES - len(canonical_bytes(probe.model_dump(mode="json")))
    agency = ("agency-setagaya-" + "x" * 64)[: 1 + pad] if pad > 0 else "a"
    return CaseOpened(escalated_by=agency, **fields)


# The raw driver's row after (stream_id, version): event_id, event_type, schema_version,
# recorded_at, subject, metadata, payload, prev_hash, hash, partition_key.
RawRow = tuple[str, str, int, str, str, str, str, str, str, str]


@dataclass
class Payloads:
    """One event per append: kyosei's NewEvent, eventsourcing's state bytes and the raw
    driver's row, all with the same JSON."""

    kyosei: list[NewEvent]
    es_state: list[bytes]
    raw: list[RawRow]

    @classmethod
    def build(cls, n: int, offset: int) -> Payloads:
        k: list[NewEvent] = []
        s: list[bytes] = []
        r: list[RawRow] = []
        for i in range(offset, offset + n):
            ev = make_event(i)
            state = canonical_bytes(ev.model_dump(mode="json"))
            if len(state) != PAYLOAD_BYTES:
                raise AssertionError(f"payload {i} is {len(state)} bytes")
            new = NewEvent(event=ev, subject=ev.household_id or "hh")
            k.append(new)
            s.append(state)
            r.append(raw_row(new, state.decode()))
        return cls(k, s, r)


def raw_row(new: NewEvent, payload: str) -> RawRow:
    """What kyosei's writer puts in a row, computed ahead: the raw driver only sends it
    (its hashes are random 64-hex strings of the same length, not a chain)."""
    return (
        new.event_id,
        new.event.event_type,
        new.event.schema_version,
        utc_now(),
        new.subject,
        canonical_text(new.metadata.as_dict()),
        payload,
        os.urandom(32).hex(),
        os.urandom(32).hex(),
        new.subject,
    )


# -- results -------------------------------------------------------------------------


@dataclass
class Result:
    system: str
    database: str
    scenario: str
    events: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    note: str = ""

    def add(self, events: int, seconds: float, latencies: Sequence[float]) -> None:
        self.events += events
        self.seconds += seconds
        self.latencies.extend(latencies)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        idx = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
        return ordered[idx] * 1000


# -- plans: which stream each append goes to, identical for both systems ---------------


@dataclass
class Streams:
    """Stream ids (kyosei: text, eventsourcing: UUID) and each system's current versions."""

    ids: list[UUID]
    versions: dict[str, list[int]]

    @classmethod
    def new(cls, n: int) -> Streams:
        return cls([uuid.uuid4() for _ in range(n)], {KYOSEI: [0] * n, ES: [0] * n, RAW: [0] * n})


def round_robin(streams: Sequence[int], n: int) -> list[int]:
    return [streams[i % len(streams)] for i in range(n)]


def chunks(seq: Sequence[Any], parts: int) -> list[Sequence[Any]]:
    size, extra = divmod(len(seq), parts)
    out, start = [], 0
    for p in range(parts):
        end = start + size + (1 if p < extra else 0)
        out.append(seq[start:end])
        start = end
    return out


# -- kyosei side ---------------------------------------------------------------------


@dataclass
class KyoseiSide:
    store: EventStore
    engine: AsyncEngine
    key_engine: AsyncEngine

    async def close(self) -> None:
        await self.engine.dispose()
        await self.key_engine.dispose()


def kyosei_engine(url: str, schema: str | None, pool: int, pre_ping: bool) -> AsyncEngine:
    """database.create_engine, as kyosei ships it (``pre_ping`` is kept for the call sites;
    the engine's own setting is what is reported)."""
    return create_engine(url, schema=schema, pool_size=pool)


async def kyosei_open(
    url: str, schema: str | None, tmp: Path, pool: int, pre_ping: bool = True
) -> KyoseiSide:
    key_engine = create_engine(f"sqlite+aiosqlite:///{tmp / 'kyosei-keys.db'}")
    vault = KeyVault(key_engine, MASTER_KEY)
    await vault.create_tables()
    engine = kyosei_engine(url, schema, pool, pre_ping)
    store = EventStore(engine, vault, name="bench")
    await store.create_tables()
    return KyoseiSide(store, engine, key_engine)


async def kyosei_appends(
    store: EventStore,
    plan: Sequence[tuple[int, int]],
    streams: Streams,
    payloads: Payloads,
    latencies: list[float],
) -> None:
    """plan: (stream index, payload index) per append, one event per transaction."""
    versions = streams.versions[KYOSEI]
    ids = streams.ids
    clock = time.perf_counter
    for s, p in plan:
        v = versions[s]
        t = clock()
        await store.append(str(ids[s]), [payloads.kyosei[p]], expected_version=v)
        latencies.append(clock() - t)
        versions[s] = v + 1


async def kyosei_run(
    store: EventStore,
    plans: Sequence[Sequence[tuple[int, int]]],
    streams: Streams,
    payloads: Payloads,
) -> tuple[float, list[float]]:
    lats: list[list[float]] = [[] for _ in plans]
    t0 = time.perf_counter()
    await asyncio.gather(
        *(
            kyosei_appends(store, plan, streams, payloads, lat)
            for plan, lat in zip(plans, lats, strict=True)
        )
    )
    elapsed = time.perf_counter() - t0
    return elapsed, [x for lat in lats for x in lat]


def lane_batches() -> tuple[float, float]:
    """(transactions, events) written so far by the append lane of kyosei's stores."""
    labels = {"store": "bench"}
    count = REGISTRY.get_sample_value("kyosei_events_append_batch_events_count", labels)
    total = REGISTRY.get_sample_value("kyosei_events_append_batch_events_sum", labels)
    return count or 0.0, total or 0.0


# -- eventsourcing side --------------------------------------------------------------


@dataclass
class EsSide:
    recorder: Any
    datastore: Any

    def close(self) -> None:
        self.datastore.close()


def pg_conninfo(url: str) -> dict[str, Any]:
    u = make_url(url)
    return {
        "dbname": u.database or "postgres",
        "host": u.host or "127.0.0.1",
        "port": u.port or 5432,
        "user": u.username or "postgres",
        "password": u.password or "",
    }


def es_open_pg(url: str, schema: str, pool: int, table: str = "stored_events") -> EsSide:
    ds = PostgresDatastore(**pg_conninfo(url), pool_size=pool, max_overflow=0, schema=schema)
    rec = PostgresApplicationRecorder(ds, events_table_name=table)
    rec.create_table()
    return EsSide(rec, ds)


def es_open_sqlite(path: Path, pool: int) -> EsSide:
    ds = SQLiteDatastore(str(path), pool_size=pool, max_overflow=0, pool_timeout=60.0)
    rec = SQLiteApplicationRecorder(ds)
    rec.create_table()
    return EsSide(rec, ds)


def es_appends(
    recorder: Any,
    plan: Sequence[tuple[int, int]],
    streams: Streams,
    payloads: Payloads,
    latencies: list[float],
) -> None:
    versions = streams.versions[ES]
    ids = streams.ids
    clock = time.perf_counter
    for s, p in plan:
        v = versions[s] + 1
        event = StoredEvent(
            originator_id=ids[s], originator_version=v, topic=ES_TOPIC, state=payloads.es_state[p]
        )
        t = clock()
        recorder.insert_events([event])
        latencies.append(clock() - t)
        versions[s] = v


def es_run(
    recorder: Any, plans: Sequence[Sequence[tuple[int, int]]], streams: Streams, payloads: Payloads
) -> tuple[float, list[float]]:
    return run_threads(
        lambda _w, plan, lat: es_appends(recorder, plan, streams, payloads, lat), plans
    )


def run_threads(
    work: Callable[[int, Sequence[tuple[int, int]], list[float]], None],
    plans: Sequence[Sequence[tuple[int, int]]],
) -> tuple[float, list[float]]:
    """``work(writer, plan, latencies)`` per plan: in this thread for one plan, else in
    one thread per plan, all started together."""
    lats: list[list[float]] = [[] for _ in plans]
    if len(plans) == 1:
        t0 = time.perf_counter()
        work(0, plans[0], lats[0])
        return time.perf_counter() - t0, lats[0]
    gate = threading.Barrier(len(plans) + 1)
    errors: list[BaseException] = []

    def writer(w: int, plan: Sequence[tuple[int, int]], lat: list[float]) -> None:
        gate.wait()
        try:
            work(w, plan, lat)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(w, plan, lat), daemon=True)
        for w, (plan, lat) in enumerate(zip(plans, lats, strict=True))
    ]
    for th in threads:
        th.start()
    gate.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return elapsed, [x for lat in lats for x in lat]


# -- raw-driver side: the store's row, sent by the driver alone ----------------------

_RAW_COLUMNS = (
    "stream_id",
    "version",
    "event_id",
    "event_type",
    "schema_version",
    "recorded_at",
    "subject",
    "metadata",
    "payload",
    "prev_hash",
    "hash",
    "partition_key",
)


def raw_ddl(dialect: Any) -> list[str]:
    """The store's events table as kyosei creates it (``kyosei_events.tables``, compiled
    for the dialect): the same columns, primary key, unique (stream_id, version) and
    event_id, and the log-order and subject indexes."""
    return [str(CreateTable(events_table).compile(dialect=dialect)).strip()] + [
        str(CreateIndex(ix).compile(dialect=dialect)) for ix in events_table.indexes
    ]


def raw_insert(dialect: str) -> str:
    """kyosei's INSERT: the writing transaction's id as ``tx_id`` (0 on SQLite), the
    position and tx_id returned."""
    if dialect == PG:
        tx_id, params = "pg_current_xact_id()::text::bigint", [f"${i + 1}" for i in range(12)]
    else:
        tx_id, params = "0", ["?"] * 12
    return (
        f"INSERT INTO events (tx_id, {', '.join(_RAW_COLUMNS)}) "
        f"VALUES ({tx_id}, {', '.join(params)}) RETURNING position, tx_id"
    )


@dataclass
class RawPg:
    """asyncpg alone: one connection per writer, each append one INSERT in the
    connection's implicit transaction (as kyosei's one-event append), a prepared
    statement (asyncpg's statement cache)."""

    conns: list[asyncpg.Connection]
    sql: str = field(default_factory=lambda: raw_insert(PG))

    @classmethod
    async def open(cls, url: str, schema: str, n: int) -> RawPg:
        info = pg_conninfo(url)
        conns = [
            await asyncpg.connect(
                host=info["host"],
                port=info["port"],
                user=info["user"],
                password=info["password"] or None,
                database=info["dbname"],
                server_settings={"search_path": schema},
            )
            for _ in range(n)
        ]
        for stmt in raw_ddl(pg_dialect.dialect()):
            await conns[0].execute(stmt)
        return cls(conns)

    def note(self, writers: int) -> str:
        return f"asyncpg, {writers} connection{'s' if writers > 1 else ''}"

    async def appends(
        self,
        conn: asyncpg.Connection,
        plan: Sequence[tuple[int, int]],
        streams: Streams,
        payloads: Payloads,
        latencies: list[float],
    ) -> None:
        versions = streams.versions[RAW]
        ids = streams.ids
        rows = payloads.raw
        sql = self.sql
        clock = time.perf_counter
        for s, p in plan:
            v = versions[s] + 1
            t = clock()
            await conn.fetchrow(sql, str(ids[s]), v, *rows[p])
            latencies.append(clock() - t)
            versions[s] = v

    async def _run(
        self, plans: Sequence[Sequence[tuple[int, int]]], streams: Streams, payloads: Payloads
    ) -> tuple[float, list[float]]:
        lats: list[list[float]] = [[] for _ in plans]
        t0 = time.perf_counter()
        await asyncio.gather(
            *(
                self.appends(conn, plan, streams, payloads, lat)
                for conn, plan, lat in zip(self.conns, plans, lats, strict=False)
            )
        )
        return time.perf_counter() - t0, [x for lat in lats for x in lat]

    def run(
        self,
        runner: asyncio.Runner,
        plans: Sequence[Sequence[tuple[int, int]]],
        streams: Streams,
        payloads: Payloads,
    ) -> tuple[float, list[float]]:
        if len(plans) > len(self.conns):
            raise ValueError("more writers than raw-driver connections")
        return runner.run(self._run(plans, streams, payloads))

    def count(self, runner: asyncio.Runner) -> int:
        return int(runner.run(self.conns[0].fetchval("SELECT count(*) FROM events")))

    def close(self, runner: asyncio.Runner) -> None:
        for conn in self.conns:
            runner.run(conn.close())


@dataclass
class RawSqlite:
    """The sqlite3 module alone: one connection per writer (16 writers: 16 threads), set
    up as kyosei's (WAL, synchronous NORMAL, busy timeout 30 s), each append
    BEGIN IMMEDIATE, the INSERT, COMMIT."""

    conns: list[sqlite3.Connection]
    sql: str = field(default_factory=lambda: raw_insert(SQLITE))

    @classmethod
    def open(cls, path: Path, n: int) -> RawSqlite:
        conns = []
        for _ in range(n):
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            conns.append(conn)
        for stmt in raw_ddl(sqlite_dialect.dialect()):
            conns[0].execute(stmt)
        return cls(conns)

    def note(self, writers: int) -> str:
        return "sqlite3, 1 writer" if writers == 1 else f"sqlite3, {writers} threads"

    def appends(
        self,
        conn: sqlite3.Connection,
        plan: Sequence[tuple[int, int]],
        streams: Streams,
        payloads: Payloads,
        latencies: list[float],
    ) -> None:
        versions = streams.versions[RAW]
        ids = streams.ids
        rows = payloads.raw
        sql = self.sql
        clock = time.perf_counter
        for s, p in plan:
            v = versions[s] + 1
            t = clock()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(sql, (str(ids[s]), v, *rows[p])).fetchone()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            latencies.append(clock() - t)
            versions[s] = v

    def run(
        self,
        runner: asyncio.Runner,
        plans: Sequence[Sequence[tuple[int, int]]],
        streams: Streams,
        payloads: Payloads,
    ) -> tuple[float, list[float]]:
        if len(plans) > len(self.conns):
            raise ValueError("more writers than raw-driver connections")
        return run_threads(
            lambda w, plan, lat: self.appends(self.conns[w], plan, streams, payloads, lat), plans
        )

    def count(self, runner: asyncio.Runner) -> int:
        return int(self.conns[0].execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self, runner: asyncio.Runner) -> None:
        for conn in self.conns:
            conn.close()


RawSide = RawPg | RawSqlite


# -- append scenarios ----------------------------------------------------------------


@dataclass
class Config:
    single: int
    concurrent: int
    writers: int
    streams: int
    catch_up: int
    catch_up_streams: int
    batch: int
    rounds: int
    es_catch_up: bool
    rebuild: int = 0
    pre_ping: bool = True


def append_scenario(
    scenario: str,
    database: str,
    runner: asyncio.Runner,
    k: KyoseiSide,
    e: EsSide,
    raw: RawSide,
    writers: int,
    n_events: int,
    n_streams: int,
    rounds: int,
    payloads: Payloads,
) -> tuple[Result, Result, Result]:
    streams = Streams.new(n_streams)
    # writer w owns streams w, w+writers, ...; it appends round-robin over them
    per_writer = chunks(range(n_events), writers)
    writer_plans: list[list[tuple[int, int]]] = []
    for w, payload_idx in enumerate(per_writer):
        own = list(range(w, n_streams, writers)) or [w % n_streams]
        writer_plans.append(list(zip(round_robin(own, len(payload_idx)), payload_idx, strict=True)))
    by_round = [chunks(plan, rounds) for plan in writer_plans]
    rk = Result(KYOSEI, database, scenario)
    re_ = Result(ES, database, scenario)
    rr = Result(RAW, database, scenario, note=raw.note(writers))
    systems = (KYOSEI, ES, RAW)
    for r in range(rounds):
        plans = [per_round[r] for per_round in by_round]
        count = sum(len(p) for p in plans)
        # each round starts with the next system
        order = systems[r % 3 :] + systems[: r % 3]
        for system in order:
            progress(f"{database} {scenario}: {system} round {r + 1}/{rounds} ({count} appends)")
            if system == KYOSEI:
                elapsed, lat = runner.run(kyosei_run(k.store, plans, streams, payloads))
                rk.add(count, elapsed, lat)
            elif system == ES:
                elapsed, lat = es_run(e.recorder, plans, streams, payloads)
                re_.add(count, elapsed, lat)
            else:
                elapsed, lat = raw.run(runner, plans, streams, payloads)
                rr.add(count, elapsed, lat)
    return rk, re_, rr


def warm_up(runner: asyncio.Runner, k: KyoseiSide, e: EsSide, raw: RawSide, writers: int) -> None:
    """Open the pools and prepare the statements before anything is timed."""
    n = writers * 4
    payloads = Payloads.build(n, 10_000_000)
    streams = Streams.new(writers)
    plans = [[(w, w * 4 + j) for j in range(4)] for w in range(writers)]
    runner.run(kyosei_run(k.store, plans, streams, payloads))
    es_run(e.recorder, plans, streams, payloads)
    raw.run(runner, plans, streams, payloads)


# -- catch-up: kyosei ----------------------------------------------------------------

bench_metadata = sa.MetaData()
stream_counts = sa.Table(
    "bench_stream_counts",
    bench_metadata,
    sa.Column("stream_id", sa.String(128), primary_key=True),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("last_version", sa.Integer, nullable=False),
)


class StreamCountProjection:
    """Events per stream, upserted once per stream per batch."""

    name = "bench-stream-counts"

    def __init__(self, dialect: str) -> None:
        ins = (pg_insert if dialect == PG else sqlite_insert)(stream_counts)
        self.upsert = ins.on_conflict_do_update(
            index_elements=[stream_counts.c.stream_id],
            set_={
                "events": stream_counts.c.events + ins.excluded.events,
                "last_version": ins.excluded.last_version,
            },
        )

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None:
        counts: dict[str, list[int]] = {}
        for d in events:
            rec = d.recorded
            c = counts.get(rec.stream_id)
            if c is None:
                counts[rec.stream_id] = [1, rec.version]
            else:
                c[0] += 1
                c[1] = rec.version
        rows = [{"stream_id": s, "events": c[0], "last_version": c[1]} for s, c in counts.items()]
        await uow.conn.execute(self.upsert, rows)

    async def reset(self, uow: UnitOfWork) -> None:
        await uow.conn.execute(sa.delete(stream_counts))


def fill_plan(n_events: int, n_streams: int, per_append: int) -> list[tuple[int, int, int]]:
    """(stream, first payload, count) per append: passes over the streams, per_append each."""
    per_stream = max(1, n_events // n_streams)
    out: list[tuple[int, int, int]] = []
    p = 0
    done = 0
    while done < per_stream:
        step = min(per_append, per_stream - done)
        for s in range(n_streams):
            if p >= n_events:
                break
            c = min(step, n_events - p)
            out.append((s, p, c))
            p += c
        done += step
    return out


async def kyosei_catch_up(
    k: KyoseiSide, dialect: str, n_events: int, n_streams: int, batch: int, payloads: Payloads
) -> Result:
    store = k.store
    async with k.engine.begin() as conn:
        await conn.run_sync(bench_metadata.create_all)
    streams = Streams.new(n_streams)
    plan = fill_plan(n_events, n_streams, 10)
    filled = 0
    for s, p, c in plan:
        v = streams.versions[KYOSEI][s]
        await store.append(str(streams.ids[s]), payloads.kyosei[p : p + c], expected_version=v)
        streams.versions[KYOSEI][s] = v + c
        filled += c
        if filled % 5000 < c:
            progress(f"{dialect} catch-up: kyosei filled {filled}/{n_events}")
    projection = StreamCountProjection(dialect)
    progress(f"{dialect} catch-up: kyosei catch_up over {filled} events (batch {batch})")
    t0 = time.perf_counter()
    applied = await catch_up(store, projection, batch_size=batch)
    elapsed = time.perf_counter() - t0
    async with k.engine.connect() as conn:
        total = (await conn.execute(sa.select(sa.func.sum(stream_counts.c.events)))).scalar()
    if applied != filled or total != filled:
        raise RuntimeError(
            f"kyosei catch-up applied {applied}, read model counts {total}, expected {filled}"
        )
    res = Result(KYOSEI, dialect, "catch-up", note=f"catch_up, batch {batch}")
    res.add(applied, elapsed, [])
    return res


# -- rebuild: kyosei's catch-up over a large log, from an empty read model -----------

REBUILD_EVENTS_PER_STREAM = 100
REBUILD_APPENDS_PER_TX = 100  # of 10 events each: the log is filled 1,000 events a commit


async def kyosei_rebuild(k: KyoseiSide, dialect: str, n_events: int, batch: int) -> Result:
    """Fill a log with ``n_events`` (100 per stream, 10 per append, 1,000 per transaction;
    the CaseOpened payloads of a pool of 1,000 repeat, each with its own event id), then
    time ``catch_up`` building the read model of the catch-up scenario from nothing."""
    store = k.store
    async with k.engine.begin() as conn:
        await conn.run_sync(bench_metadata.create_all)
    n_streams = max(1, n_events // REBUILD_EVENTS_PER_STREAM)
    streams = Streams.new(n_streams)
    versions = streams.versions[KYOSEI]
    names = [str(i) for i in streams.ids]
    events_pool = [make_event(i) for i in range(min(n_events, 1000))]
    plan = fill_plan(n_events, n_streams, 10)
    filled = 0
    t0 = time.perf_counter()
    for start in range(0, len(plan), REBUILD_APPENDS_PER_TX):
        async with store.unit_of_work() as uow:
            for s, p, c in plan[start : start + REBUILD_APPENDS_PER_TX]:
                evs = [events_pool[(p + j) % len(events_pool)] for j in range(c)]
                new = [NewEvent(event=ev, subject=ev.household_id or "hh") for ev in evs]
                await uow.append(names[s], new, expected_version=versions[s])
                versions[s] += c
                filled += c
        if filled % 100_000 < REBUILD_APPENDS_PER_TX * 10:
            progress(f"{dialect} rebuild: filled {filled:,}/{n_events:,}")
    progress(
        f"{dialect} rebuild: log of {filled:,} events filled in "
        f"{time.perf_counter() - t0:.1f}s; catch_up from an empty read model (batch {batch})"
    )
    projection = StreamCountProjection(dialect)
    t0 = time.perf_counter()
    applied = await catch_up(store, projection, batch_size=batch)
    elapsed = time.perf_counter() - t0
    async with k.engine.connect() as conn:
        total = (await conn.execute(sa.select(sa.func.sum(stream_counts.c.events)))).scalar()
    if applied != filled or total != filled:
        raise RuntimeError(
            f"kyosei rebuild applied {applied}, read model counts {total}, expected {filled}"
        )
    res = Result(
        KYOSEI, dialect, "rebuild", note=f"catch_up from empty, batch {batch}: {elapsed:.1f} s"
    )
    res.add(applied, elapsed, [])
    return res


# -- catch-up: eventsourcing (PostgreSQL; its SQLite recorder has no subscriptions) ----


class BenchApp(Application[UUID]):
    """The upstream application whose log the eventsourcing projection follows."""


class EsCountsView(PostgresTrackingRecorder):
    """Events per stream in a read-model table, with the tracking row in the same transaction."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        table = Identifier("bench_es_stream_counts")
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.{1} (stream_id uuid PRIMARY KEY, "
                "events bigint NOT NULL, last_version bigint NOT NULL)"
            ).format(schema, table)
        )
        self.upsert = SQL(
            "INSERT INTO {0}.{1} AS t VALUES (%s, 1, %s) ON CONFLICT (stream_id) "
            "DO UPDATE SET events = t.events + 1, last_version = EXCLUDED.last_version"
        ).format(schema, table)
        self.total_statement = SQL("SELECT coalesce(sum(events), 0) AS n FROM {0}.{1}").format(
            schema, table
        )
        self.done_at: float | None = None
        self.target: int | None = None
        self.finished = threading.Event()

    def incr(self, stream_id: UUID, version: int, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.upsert, (stream_id, version), prepare=True)
            self._insert_tracking(curs, tracking)
        if self.target is not None and tracking.notification_id >= self.target:
            self.done_at = time.perf_counter()
            self.finished.set()

    def total(self) -> int:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self.total_statement)
            row = curs.fetchone()
            assert row is not None
            return int(row["n"])


class StreamCounts(EsProjection[EsCountsView]):
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.incr(domain_event.originator_id, domain_event.originator_version, tracking)


def es_catch_up_pg(
    url: str, schema: str, n_events: int, n_streams: int, payloads: Payloads
) -> Result:
    side = es_open_pg(url, schema, 2, table="benchapp_events")
    try:
        streams = Streams.new(n_streams)
        filled = 0
        for s, p, c in fill_plan(n_events, n_streams, 10):
            v = streams.versions[ES][s]
            side.recorder.insert_events(
                [
                    StoredEvent(streams.ids[s], v + 1 + j, ES_TOPIC, payloads.es_state[p + j])
                    for j in range(c)
                ]
            )
            streams.versions[ES][s] = v + c
            filled += c
            if filled % 5000 < c:
                progress(f"{PG} catch-up: eventsourcing filled {filled}/{n_events}")
        last_id = side.recorder.max_notification_id()
    finally:
        side.close()
    info = pg_conninfo(url)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": info["dbname"],
        "POSTGRES_HOST": info["host"],
        "POSTGRES_PORT": str(info["port"]),
        "POSTGRES_USER": info["user"],
        "POSTGRES_PASSWORD": info["password"],
        "POSTGRES_SCHEMA": schema,
    }
    progress(f"{PG} catch-up: eventsourcing ProjectionRunner over {filled} events")
    t0 = time.perf_counter()
    with ProjectionRunner(
        application_class=BenchApp, projection_class=StreamCounts, view_class=EsCountsView, env=env
    ) as runner:
        view = runner.view
        view.target = last_id
        # the runner may already be past the target when it is set
        while not view.finished.wait(0.05):
            if (view.max_tracking_id(runner.app_name) or 0) >= last_id:
                view.done_at = view.done_at or time.perf_counter()
                break
            if time.perf_counter() - t0 > 900:
                raise TimeoutError("eventsourcing projection did not finish")
        runner.run_forever(timeout=0)  # re-raise a processing error, if any
        assert view.done_at is not None
        elapsed = view.done_at - t0
        total = view.total()
    if total != filled:
        raise RuntimeError(f"eventsourcing projection counted {total}, expected {filled}")
    res = Result(ES, PG, "catch-up", note="ProjectionRunner, 1 tx per event")
    res.add(filled, elapsed, [])
    return res


# -- databases -----------------------------------------------------------------------


def pg_admin(url: str, sql: str) -> None:
    with psycopg.connect(**pg_conninfo(url), autocommit=True) as conn:
        conn.execute(sql)


def pg_server_version(url: str) -> str:
    with psycopg.connect(**pg_conninfo(url), autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        sync = conn.execute("SHOW synchronous_commit").fetchone()
    return f"{row[0] if row else '?'} (synchronous_commit={sync[0] if sync else '?'})"


def sqlite_synchronous(path: Path) -> str:
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("PRAGMA synchronous").fetchone()
    finally:
        conn.close()
    return names.get(row[0], str(row[0]))


@dataclass
class Database:
    name: str
    kyosei_url: str
    kyosei_schema: str | None
    open_es: Callable[[int], EsSide]
    open_raw: Callable[[asyncio.Runner, int], RawSide]
    cleanup: Callable[[], None]
    catch_up_url: str
    catch_up_schema: str | None
    rebuild_url: str
    rebuild_schema: str | None
    es_catch_up_schema: str | None = None


def postgres_database(url: str) -> Database:
    tag = uuid.uuid4().hex[:8]
    schemas = {
        "k": f"bench_kyosei_{tag}",
        "e": f"bench_es_{tag}",
        "kc": f"bench_kyosei_cu_{tag}",
        "ec": f"bench_es_cu_{tag}",
        "r": f"bench_raw_{tag}",
        "kr": f"bench_kyosei_rb_{tag}",
    }
    for s in schemas.values():
        pg_admin(url, f'CREATE SCHEMA "{s}"')

    def cleanup() -> None:
        for s in schemas.values():
            pg_admin(url, f'DROP SCHEMA IF EXISTS "{s}" CASCADE')

    return Database(
        PG,
        url,
        schemas["k"],
        open_es=lambda pool: es_open_pg(url, schemas["e"], pool),
        open_raw=lambda runner, n: runner.run(RawPg.open(url, schemas["r"], n)),
        cleanup=cleanup,
        catch_up_url=url,
        catch_up_schema=schemas["kc"],
        rebuild_url=url,
        rebuild_schema=schemas["kr"],
        es_catch_up_schema=schemas["ec"],
    )


def sqlite_database(tmp: Path) -> Database:
    return Database(
        SQLITE,
        f"sqlite+aiosqlite:///{tmp / 'kyosei.db'}",
        None,
        open_es=lambda pool: es_open_sqlite(tmp / "eventsourcing.db", pool),
        open_raw=lambda _runner, n: RawSqlite.open(tmp / "raw-driver.db", n),
        cleanup=lambda: None,
        catch_up_url=f"sqlite+aiosqlite:///{tmp / 'kyosei-catch-up.db'}",
        catch_up_schema=None,
        rebuild_url=f"sqlite+aiosqlite:///{tmp / 'kyosei-rebuild.db'}",
        rebuild_schema=None,
    )


def run_database(
    db: Database, cfg: Config, runner: asyncio.Runner, tmp: Path, results: list[Result]
) -> dict[str, str]:
    notes: dict[str, str] = {}
    pool = max(16, cfg.writers)
    single_payloads = Payloads.build(cfg.single, 0)
    conc_payloads = Payloads.build(cfg.concurrent, 0)
    k = runner.run(kyosei_open(db.kyosei_url, db.kyosei_schema, tmp / db.name, pool, cfg.pre_ping))
    e = db.open_es(pool)
    raw = db.open_raw(runner, max(1, cfg.writers))
    try:
        if db.name == PG:
            shipped = "on" if k.engine.pool._pre_ping else "off"
            notes["kyosei postgresql engine"] = (
                f"database.create_engine as shipped, pool_size {pool}, pool_pre_ping {shipped}"
            )
        if db.name == SQLITE:
            notes["sqlite synchronous"] = (
                f"kyosei NORMAL (database.py); eventsourcing "
                f"{sqlite_synchronous(tmp / 'eventsourcing.db')} (library default)"
            )
        progress(f"{db.name}: warming up")
        warm_up(runner, k, e, raw, cfg.writers)
        results.extend(
            append_scenario(
                "append-1",
                db.name,
                runner,
                k,
                e,
                raw,
                1,
                cfg.single,
                cfg.streams,
                cfg.rounds,
                single_payloads,
            )
        )
        before = lane_batches()
        results.extend(
            append_scenario(
                f"append-{cfg.writers}",
                db.name,
                runner,
                k,
                e,
                raw,
                cfg.writers,
                cfg.concurrent,
                cfg.streams,
                cfg.rounds,
                conc_payloads,
            )
        )
        transactions, events = (a - b for a, b in zip(lane_batches(), before, strict=True))
        if transactions:
            notes[f"kyosei {db.name} append-{cfg.writers}"] = (
                f"group commit: {events:,.0f} events in {transactions:,.0f} transactions, "
                f"{events / transactions:.1f} per transaction (lane.py)"
            )
        # every row the raw driver was timed on is there
        expected = cfg.writers * 4 + cfg.single + cfg.concurrent
        if (written := raw.count(runner)) != expected:
            raise RuntimeError(f"raw driver wrote {written} rows on {db.name}, not {expected}")
    finally:
        raw.close(runner)
        e.close()
        runner.run(k.close())
    if cfg.catch_up > 0:
        catch_up_scenarios(db, cfg, runner, tmp, pool, results, notes)
    if cfg.rebuild > 0:
        kr = runner.run(
            kyosei_open(db.rebuild_url, db.rebuild_schema, tmp / db.name, pool, cfg.pre_ping)
        )
        try:
            results.append(runner.run(kyosei_rebuild(kr, db.name, cfg.rebuild, cfg.batch)))
        finally:
            runner.run(kr.close())
    return notes


def catch_up_scenarios(
    db: Database,
    cfg: Config,
    runner: asyncio.Runner,
    tmp: Path,
    pool: int,
    results: list[Result],
    notes: dict[str, str],
) -> None:
    cu_payloads = Payloads.build(cfg.catch_up, 0)
    kc = runner.run(
        kyosei_open(db.catch_up_url, db.catch_up_schema, tmp / db.name, pool, cfg.pre_ping)
    )
    try:
        results.append(
            runner.run(
                kyosei_catch_up(
                    kc, db.name, cfg.catch_up, cfg.catch_up_streams, cfg.batch, cu_payloads
                )
            )
        )
    finally:
        runner.run(kc.close())
    if db.name == PG and cfg.es_catch_up and db.es_catch_up_schema:
        results.append(
            es_catch_up_pg(
                db.kyosei_url,
                db.es_catch_up_schema,
                cfg.catch_up,
                cfg.catch_up_streams,
                cu_payloads,
            )
        )
    elif db.name == PG:
        notes["eventsourcing catch-up"] = "skipped (--no-es-catch-up): only kyosei is measured"
    else:
        notes["eventsourcing catch-up on sqlite"] = (
            "not measured: eventsourcing.sqlite recorders do not support subscriptions, "
            "so ProjectionRunner cannot run on SQLite; only kyosei is measured"
        )


# -- report --------------------------------------------------------------------------


def fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def report(
    results: list[Result],
    cfg: Config,
    notes: dict[str, str],
    header: dict[str, str],
    latencies: Sequence[LatencyResult] = (),
) -> None:
    out: list[str] = []
    out.append(
        "kyosei EventStore vs eventsourcing and the raw driver: append, catch-up and rebuild"
    )
    for key, value in header.items():
        out.append(f"  {key}: {value}")
    out.append("")
    cols = ("system", "database", "scenario", "events", "events/s", "p50 ms", "p99 ms", "note")
    rows = [
        (
            r.system,
            r.database,
            r.scenario,
            str(r.events),
            f"{r.rate:,.0f}",
            fmt_ms(r.pct(0.50)),
            fmt_ms(r.pct(0.99)),
            r.note,
        )
        for r in results
    ]
    widths = [
        max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(cols)
    ]
    right = {3, 4, 5, 6}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    out.append(line(cols))
    out.append(line(["-" * w for w in widths]))
    out.extend(line(row) for row in rows)
    out.append("")
    out.append(
        "ratios (events/s: kyosei / eventsourcing, kyosei / raw driver; kyosei's p99 per append)"
    )
    by = {(r.system, r.database, r.scenario): r for r in results}
    verdicts: dict[str, list[bool]] = {PG: [], SQLITE: []}

    def judge(db: str, what: str, value: str, target: str | None, ok: bool, extra: str) -> None:
        if target is None:
            out.append(f"  {what:33} {value:>10}   {'(no target)':24}        {extra}".rstrip())
            return
        verdicts[db].append(ok)
        verdict = "PASS" if ok else "MISS"
        out.append(f"  {what:33} {value:>10}   target {target:17}  {verdict}  {extra}".rstrip())

    for db in (PG, SQLITE):
        for scenario in ("append-1", f"append-{cfg.writers}"):
            k = by.get((KYOSEI, db, scenario))
            if k is None:
                continue
            # the 16-writer targets hold for 16 writers or more
            key = (db, "append-1" if scenario == "append-1" else "append-16")
            targeted = scenario == "append-1" or cfg.writers >= 16
            p99k = k.pct(0.99)
            e = by.get((ES, db, scenario))
            if e is not None and e.rate:
                target = ES_TARGETS.get(key) if targeted else None
                ratio = k.rate / e.rate
                judge(
                    db,
                    f"{db:10} {scenario:10} kyosei/es",
                    f"{ratio:.2f}x",
                    None if target is None else f">= {target:.1f}x",
                    target is not None and ratio >= target,
                    f"(p99 {fmt_ms(p99k)} vs {fmt_ms(e.pct(0.99))} ms)",
                )
            raw = by.get((RAW, db, scenario))
            if raw is not None and raw.rate:
                target = RAW_TARGETS.get(key) if targeted else None
                ratio = k.rate / raw.rate
                judge(
                    db,
                    f"{db:10} {scenario:10} kyosei/raw",
                    f"{ratio:.2f}",
                    None if target is None else f">= {target:.2f}",
                    target is not None and ratio >= target,
                    f"(p99 {fmt_ms(p99k)} vs {fmt_ms(raw.pct(0.99))} ms)",
                )
            p99_target = P99_TARGETS.get(key) if targeted else None
            if p99_target is not None and p99k is not None:
                judge(
                    db,
                    f"{db:10} {scenario:10} kyosei p99",
                    f"{p99k:.2f} ms",
                    f"<= {p99_target:.0f} ms",
                    p99k <= p99_target,
                    "",
                )
    for db in (PG, SQLITE):
        k = by.get((KYOSEI, db, "catch-up"))
        if k is None:
            continue
        e = by.get((ES, db, "catch-up"))
        vs = f"({k.rate / e.rate:.1f}x eventsourcing ProjectionRunner)" if e and e.rate else ""
        judge(
            db,
            f"{db:10} catch-up",
            f"{k.rate:,.0f} ev/s",
            f">= {CATCH_UP_TARGET:,} ev/s" if db == PG else None,
            k.rate >= CATCH_UP_TARGET,
            vs,
        )
    for lat in latencies:
        # the targets hold at the load: 200 commands/s for 60 s, on PostgreSQL
        targeted = lat.database == PG and lat.offered >= 200 and lat.seconds >= 60
        for name, q, target in (("p50", 0.50, P50_TARGET), ("p99", 0.99, P99_TARGET)):
            value = lat.pct(q)
            shown = f"{value:.1f} ms" if math.isfinite(value) else "lost"
            where = "per service" if lat.variant == PER_SERVICE else "1 process"
            judge(
                lat.database,
                f"{lat.database:10} latency    {name} ({where}, {lat.offered:g}/s)",
                shown,
                f"<= {target:.0f} ms" if targeted else None,
                value <= target,
                f"(at {lat.achieved:.0f} of {lat.offered:.0f} commands/s, "
                f"{lat.not_visible} not visible)",
            )
    for db in (PG, SQLITE):
        k = by.get((KYOSEI, db, "rebuild"))
        if k is not None:
            out.append(
                f"  {db:10} rebuild    {k.events:,} events in {k.seconds:.1f} s, "
                f"{k.rate:,.0f} ev/s (catch_up from an empty read model; no target)"
            )
    if notes:
        out.append("")
        out.append("notes")
        out.extend(f"  {k}: {v}" for k, v in notes.items())
    out.append("")
    met = sum(sum(v) for v in verdicts.values())
    total = sum(len(v) for v in verdicts.values())
    per_db = ", ".join(f"{db} {sum(v)}/{len(v)}" for db, v in verdicts.items() if v)
    out.append(f"targets: {met}/{total} met ({per_db})" if total else "targets: none evaluated")
    print("\n".join(out), flush=True)


# -- main ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Config]:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--pg-url", default=DEFAULT_PG_URL, help="SQLAlchemy URL (postgresql+asyncpg://…)"
    )
    p.add_argument("--single", type=int, help="appends with 1 writer, per system (default 3000)")
    p.add_argument(
        "--concurrent", type=int, help="appends with N writers, per system (default 8000)"
    )
    p.add_argument("--writers", type=int, default=16, help="concurrent writers (default 16)")
    p.add_argument("--streams", type=int, help="streams the appends go to (default 500)")
    p.add_argument(
        "--catch-up", type=int, help="events in the catch-up log (default 20000; 0 skips)"
    )
    p.add_argument(
        "--catch-up-streams", type=int, help="streams in the catch-up log (default 1000)"
    )
    p.add_argument("--batch", type=int, default=1000, help="catch_up batch size (default 1000)")
    p.add_argument(
        "--rebuild",
        type=int,
        help="events in the log of the rebuild scenario (default 1000000; --quick 20000; 0 skips)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        help="alternating rounds per append scenario (default 6; --quick 3: each system "
        "goes first as often as the others)",
    )
    p.add_argument("--no-es-catch-up", action="store_true", help="measure only kyosei's catch-up")
    p.add_argument(
        "--registration",
        help="households already registered in the registration scenario, comma-separated "
        "(default 1000,10000,100000; --quick 200,1000; 0 skips)",
    )
    p.add_argument("--registrations", type=int, help="registrations timed per size (default 100)")
    p.add_argument(
        "--soak",
        help="intake soak checkpoints in commands, comma-separated "
        "(default 1000,10000,100000 on SQLite; --quick 100,300 on both; 0 skips)",
    )
    p.add_argument(
        "--soak-capped",
        type=int,
        help="run the soak again with both caches capped at this size, so that what is "
        "left of the growth is not theirs (default 1000; --quick 0; 0 skips)",
    )
    p.add_argument(
        "--commands",
        type=int,
        help="receive + escalate pairs through intake's HTTP API and coordination's consumer "
        "per database (commands.py; default 500; --quick 50; 0 skips)",
    )
    p.add_argument(
        "--http-parser",
        type=int,
        help="receive + escalate pairs a run of intake served by uvicorn, per HTTP parser "
        "(http_parser.py: 3 runs each; default 300; --quick 50; 0 skips)",
    )
    p.add_argument(
        "--latency",
        help="end-to-end latency scenario, RATE:SECONDS[,RATE:SECONDS...] (commands/s for "
        "seconds; default 200:60,50:60: the issue's load and one this machine sustains; "
        "--quick 20:5; 0 skips)",
    )
    p.add_argument("--skip-postgres", action="store_true")
    p.add_argument("--skip-sqlite", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke run with small counts")
    p.add_argument(
        "--what-if-no-pre-ping",
        action="store_true",
        help="diagnostic: kyosei's PostgreSQL engine without pool_pre_ping (not as shipped)",
    )
    args = p.parse_args(argv)
    quick = args.quick
    cfg = Config(
        single=args.single or (300 if quick else 3000),
        concurrent=args.concurrent or (800 if quick else 8000),
        writers=args.writers,
        streams=args.streams or (100 if quick else 500),
        catch_up=args.catch_up if args.catch_up is not None else (2000 if quick else 20_000),
        catch_up_streams=args.catch_up_streams or (100 if quick else 1000),
        batch=args.batch,
        rounds=args.rounds or (3 if quick else 6),
        es_catch_up=not args.no_es_catch_up,
        rebuild=args.rebuild if args.rebuild is not None else (20_000 if quick else 1_000_000),
        pre_ping=not args.what_if_no_pre_ping,
    )
    sizes = args.registration or ("200,1000" if quick else "1000,10000,100000")
    args.registration_sizes = [int(n) for n in sizes.split(",") if int(n) > 0]
    args.registrations = args.registrations or (20 if quick else 100)
    args.soak = args.soak or ("100,300" if quick else "1000,10000,100000")
    if args.soak_capped is None:
        args.soak_capped = 0 if quick else 1000
    args.commands = args.commands if args.commands is not None else (50 if quick else 500)
    args.http_parser = args.http_parser if args.http_parser is not None else (50 if quick else 300)
    args.latency_runs = [
        parse_rate(spec)
        for spec in (args.latency or ("20:5" if quick else "200:60,50:60")).split(",")
        if parse_rate(spec)[0] > 0
    ]
    if cfg.streams < cfg.writers:
        p.error("--streams must be at least --writers (the writers' streams are distinct)")
    return args, cfg


def main(argv: Sequence[str] | None = None) -> int:
    args, cfg = parse_args(argv)
    # the store's and projection's debug logs would drown the report
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    header = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}",
        "python": platform.python_version(),
        "versions": f"eventsourcing {_version('eventsourcing')}, sqlalchemy {sa.__version__}, "
        f"asyncpg {_version('asyncpg')}, psycopg {psycopg.__version__}, "
        f"sqlite {sqlite3.sqlite_version}",
        "payload": f"{PAYLOAD_BYTES} bytes of JSON per event (CaseOpened, its personal "
        "reason empty: nothing sealed)",
        "counts": f"append-1 {cfg.single}, append-{cfg.writers} {cfg.concurrent} "
        f"over {cfg.streams} streams, {cfg.rounds} alternating rounds; "
        f"catch-up {cfg.catch_up} events over {cfg.catch_up_streams} streams; "
        f"rebuild {cfg.rebuild} events over {cfg.rebuild // REBUILD_EVENTS_PER_STREAM} streams",
        "eventsourcing recorders": "PostgresApplicationRecorder / SQLiteApplicationRecorder "
        "(global notification log, like kyosei's), StoredEvent state = the same JSON bytes; "
        "its appends exclude serialisation, kyosei's include it (model_dump, canonical JSON, hash)",
        "raw driver": "the store's events table (DDL compiled from kyosei_events.tables: same "
        "columns, unique keys and indexes) in a schema or file of its own, kyosei's INSERT "
        "... RETURNING with each row computed ahead (the same payload and metadata bytes, "
        "random hashes); asyncpg: one connection per writer, prepared statement, implicit "
        "transaction; sqlite3: kyosei's PRAGMAs, BEGIN IMMEDIATE ... COMMIT, one thread per writer",
    }
    if not cfg.pre_ping:
        header["WHAT-IF"] = (
            "kyosei's PostgreSQL engine built WITHOUT pool_pre_ping (--what-if-no-pre-ping); "
            "database.create_engine ships with it on"
        )
    results: list[Result] = []
    notes: dict[str, str] = {}
    dbs: list[Database] = []
    with tempfile.TemporaryDirectory(prefix="kyosei-bench-") as tmpdir, asyncio.Runner() as runner:
        tmp = Path(tmpdir)
        if not args.skip_postgres:
            try:
                header["postgresql"] = (
                    f"{pg_server_version(args.pg_url)} at {make_url(args.pg_url).host}"
                )
            except psycopg.Error as exc:
                print(f"PostgreSQL unreachable at {args.pg_url}: {exc}", file=sys.stderr)
                print("use --skip-postgres to run on SQLite only", file=sys.stderr)
                return 2
            dbs.append(postgres_database(args.pg_url))
        if not args.skip_sqlite:
            dbs.append(sqlite_database(tmp))
        registrations: list[RegistrationResult] = []
        latencies: list[LatencyResult] = []
        try:
            for db in dbs:
                (tmp / db.name).mkdir(exist_ok=True)
                notes.update(run_database(db, cfg, runner, tmp, results))
            for db in dbs:
                for size in args.registration_sizes:
                    progress(f"{db.name}: registration with {size} households")
                    registrations.append(
                        runner.run(registration_run(db.name, args, tmp, size, args.registrations))
                    )
            # PostgreSQL as deployed (a process per service) and as `make dev` runs it;
            # SQLite, the embedded default, as `make dev` runs it
            for db in dbs:
                topologies = [PER_SERVICE, ONE_PROCESS] if db.name == PG else [ONE_PROCESS]
                for rate, seconds in args.latency_runs:
                    for topology in topologies:
                        progress(
                            f"{db.name}: end-to-end latency at {rate:g} commands/s "
                            f"for {seconds:g} s, {topology}"
                        )
                        latencies.append(
                            runner.run(
                                latency_run(
                                    db.name,
                                    tmp,
                                    args.pg_url,
                                    rate,
                                    seconds,
                                    drain=LATENCY_DRAIN,
                                    variant=topology,
                                    topology=topology,
                                )
                            )
                        )
        finally:
            for db in dbs:
                db.cleanup()
    progress("done")
    report(results, cfg, notes, header, latencies)
    if latencies:
        print()
        print("\n".join(latency_table(latencies, LATENCY_DRAIN)))
    if registrations:
        print(
            "\nregistration (duplicate check, events, read models; every household shares "
            "the birth date)"
        )
        print(f"{'database':<12}{'households':>12}{'timed':>8}{'p50 ms':>10}{'p99 ms':>10}")
        for r in registrations:
            print(
                f"{r.database:<12}{r.households:>12,}{r.registrations:>8}"
                f"{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}"
            )
    if args.commands > 0:
        from commands import bench_commands

        progress("commands through intake's HTTP API and coordination's consumer")
        print(bench_commands([db.name for db in dbs], args.commands, args.pg_url), flush=True)
    if args.http_parser > 0:
        from http_parser import http_parser_bench
        from http_parser import report as http_parser_report

        database = dbs[0].name  # PostgreSQL when it runs
        progress(f"{database}: intake served by uvicorn with each HTTP parser")
        parsers = http_parser_bench(database, args.http_parser, pg_url=args.pg_url)
        print(http_parser_report(database, parsers), flush=True)
    soak_databases = [db.name for db in dbs if quick_or_sqlite(args, db.name)]
    if any(int(n) > 0 for n in args.soak.split(",")):
        capped = [] if args.soak_capped <= 0 else [args.soak_capped]
        for name in soak_databases:
            for cap in [None, *capped]:
                caches = "as shipped" if cap is None else f"caches capped at {cap:,}"
                progress(f"{name}: intake soak to {args.soak.split(',')[-1]} commands, {caches}")
                sys.stdout.flush()
                env = dict(os.environ)
                if cap is not None:
                    env["KYOSEI_HEAD_CACHE_SIZE"] = env["KYOSEI_KEY_CACHE_SIZE"] = str(cap)
                subprocess.run(
                    [
                        sys.executable,
                        str(Path(__file__).with_name("soak.py")),
                        "--database",
                        name,
                        "--soak",
                        args.soak,
                        "--pg-url",
                        args.pg_url,
                        # tracemalloc halves the rate: the full run reports RSS only
                        *([] if args.quick else ["--no-tracemalloc"]),
                    ],
                    check=False,
                    env=env,
                )
    return 0


def quick_or_sqlite(args: argparse.Namespace, database: str) -> bool:
    """The soak runs on SQLite; on PostgreSQL too in a quick run (the full one would
    take as long again)."""
    return database == SQLITE or bool(args.quick)


async def registration_run(
    name: str, args: argparse.Namespace, tmp: Path, size: int, n: int
) -> RegistrationResult:
    """One registration measurement on a fresh database (schema or file) of its own."""
    key_engine = create_engine(f"sqlite+aiosqlite:///{tmp / f'registration-keys-{size}.db'}")
    vault = KeyVault(key_engine, MASTER_KEY)
    await vault.create_tables()
    schema = None
    if name == PG:
        schema = f"bench_registration_{uuid.uuid4().hex[:8]}"
        pg_admin(args.pg_url, f'CREATE SCHEMA "{schema}"')
        engine = create_engine(args.pg_url, schema=schema)
    else:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp / f'registration-{size}.db'}")
    try:
        return await registration_bench(name, engine, vault, size, n)
    finally:
        await engine.dispose()
        await key_engine.dispose()
        if schema is not None:
            pg_admin(args.pg_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _version(dist: str) -> str:
    from importlib.metadata import version

    try:
        return version(dist)
    except Exception:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
