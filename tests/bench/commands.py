"""Commands per second through intake's HTTP API and coordination's consumer (part of
``make bench``).

intake: its app as ``create_app`` builds it (auth, idempotency keys, body limit,
request log and metrics, error envelope; no Kafka, no relay), migrated, over an
in-process ASGI client holding a staff member's token. Each step is two commands, one
after another: receive a consultation (相談受付, about no known household: its subject
gets a new key) and escalate it to 多機関協働 (CaseEscalated). Timed is the HTTP call.

coordination: its consumer as the runtime builds it (``IdempotentConsumer`` with
coordination's policies), fed the CaseEscalated events intake just recorded, with the
headers intake's relay would publish: envelope and hash check, the payload opened with
the household key, the policy (a case opened, its read models written) and the
processed mark in one transaction. Timed is the consumer's ``decode`` and ``handle``
per message, and, taking turns with it, ``decode`` and ``handle_batch`` of ``BATCH``
messages at a time as one fetch brings them (one unit of work for the batch); Kafka's
fetch and FastStream's dispatch are not in it.

Printed per database: commands/s and messages/s, milliseconds each, and the process's
CPU milliseconds each (all threads: the driver's thread counts too), the figure that
noise on a shared machine disturbs least.

Both services share one key vault (database or schema), as deployed. ``make bench``
runs it on each database after the registration scenario (``run.py --commands``: pairs
per database, default 500, ``--quick`` 50, 0 skips). Run alone with
``.venv/bin/python tests/bench/commands.py`` (``--help`` for the flags; ``--profile``
prints where the time goes). Not a pytest module.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import structlog
from aiokafka import ConsumerRecord
from faststream.kafka.annotations import KafkaMessage
from sqlalchemy import text

from kyosei_coordination.app import service as coordination
from kyosei_events import RecordedEvent
from kyosei_events.catalogue.intake import CaseEscalated
from kyosei_events.consumer import Batch, Delivery, Outcome
from kyosei_events.database import create_engine
from kyosei_intake.app import service as intake
from kyosei_platform import logging as service_logging
from kyosei_platform.auth import Role, issue_token
from kyosei_platform.http import create_app
from kyosei_platform.migrate import upgrade
from kyosei_platform.settings import Settings

DEFAULT_PG_URL = os.environ.get(
    "KYOSEI_BENCH_POSTGRES_URL",
    os.environ.get("KYOSEI_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
)
MASTER_KEY = "42" * 32
AUTH_SECRET = "bench-commands-secret-0123456789abcdef"
AGENCY = "houkatsu"
WARM_UP = 20  # steps (and messages) before the timed ones
BATCH = 10  # messages per batch in the batched half of coordination's figures


@dataclass
class CommandsResult:
    database: str
    commands: int
    command_s: float
    command_cpu_s: float
    messages: int
    message_s: float
    message_cpu_s: float
    batched: int  # messages handled in batches of BATCH
    batched_s: float
    batched_cpu_s: float

    @property
    def commands_per_s(self) -> float:
        return self.commands / self.command_s

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.message_s

    @property
    def batched_per_s(self) -> float:
        return self.batched / self.batched_s


def settings_for(name: str, database: str, tmp: Path, pg_url: str, prefix: str) -> Settings:
    if database == "postgresql":
        db, schema = pg_url, f"{prefix}_{name}"
        keys, keys_schema = pg_url, f"{prefix}_keys"
    else:
        db, schema = f"sqlite+aiosqlite:///{tmp / name}.db", None
        keys, keys_schema = f"sqlite+aiosqlite:///{tmp / 'keys'}.db", None
    return Settings(
        database_url=db,
        db_schema=schema,
        keys_database_url=keys,
        keys_db_schema=keys_schema,
        kafka_bootstrap=["127.0.0.1:9"],  # never connected: the app's lifespan is not run
        master_key=MASTER_KEY,
        auth_secret=AUTH_SECRET,
        metrics_interval=0,
    )


def _ok(response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return response.json()


async def _step(client: httpx.AsyncClient, i: int) -> None:
    received = _ok(
        await client.post(
            "/consultations",
            json={
                "window": "community_general_support_center",
                "channel": "phone",
                "concerns": ["care", "withdrawal"],
                "summary": f"母に認知症の疑い、息子がひきこもり ({i})",
            },
        ),
        201,
    )
    _ok(
        await client.post(
            f"/consultations/{received['consultation_id']}/escalation",
            json={"reason": "8050: 母の認知症と息子のひきこもり"},
        ),
        200,
    )


async def intake_commands(
    settings: Settings, steps: int, profile: cProfile.Profile | None
) -> tuple[float, float]:
    """Seconds, and CPU seconds of the process, for ``steps`` receive + escalate pairs
    over HTTP (after a warm-up)."""
    app = create_app(intake, settings)
    runtime = app.state.runtime
    token = issue_token(AUTH_SECRET, AGENCY, f"{AGENCY}-staff", Role.STAFF)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://intake",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            for i in range(WARM_UP):
                await _step(client, -i)
            if profile:
                profile.enable()
            started, cpu = time.perf_counter(), time.process_time()
            for i in range(steps):
                await _step(client, i)
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            if profile:
                profile.disable()
    finally:
        await runtime.engine.dispose()
        await runtime.keys_engine.dispose()
    return took, cpu


def _message(rec: RecordedEvent, offset: int) -> KafkaMessage:
    """``rec`` as coordination's consumer receives it from intake's topic."""
    headers = [(k, v.encode()) for k, v in rec.envelope("/kyosei/intake").header_map().items()]
    value = rec.payload.encode()
    record = ConsumerRecord(
        topic="kyosei.intake.events",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=rec.subject.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(rec.subject),
        serialized_value_size=len(value),
        headers=headers,
    )
    # What the consumer reads of FastStream's message: the record, and for a dead
    # letter its headers and correlation id.
    return cast(
        KafkaMessage,
        SimpleNamespace(
            raw_message=record,
            headers={k: v.decode() for k, v in headers},
            correlation_id=rec.event_id,
        ),
    )


@dataclass
class Timed:
    messages: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0


async def coordination_messages(
    intake_settings: Settings,
    settings: Settings,
    warm_up: int,
    profile: cProfile.Profile | None,
) -> tuple[Timed, Timed]:
    """Intake's CaseEscalated events through coordination's consumer: (one at a time,
    in batches of BATCH), each its messages, seconds and CPU seconds of the process.
    The two take turns, BATCH messages at a time, so that noise falls on both alike."""
    source = create_app(intake, intake_settings).state.runtime
    try:
        log = await source.store.read_log()
    finally:
        await source.engine.dispose()
        await source.keys_engine.dispose()
    escalations = [r for r in log if r.event_type == CaseEscalated.event_type]
    messages = [_message(r, n) for n, r in enumerate(escalations)]
    runtime = create_app(coordination, settings).state.runtime
    consumer = runtime.consumer
    assert consumer is not None

    async def consume(batch: Sequence[KafkaMessage]) -> None:
        for m in batch:
            outcome = await consumer.handle(await consumer.decode(m), m)
            if outcome is not Outcome.PROCESSED:
                raise RuntimeError(f"coordination's consumer: {outcome}")

    async def consume_batch(batch: Sequence[KafkaMessage]) -> None:
        deliveries = [Delivery(await consumer.decode(m), m) for m in batch]
        outcomes = await consumer.handle_batch(Batch(tuple(deliveries)))
        if set(outcomes) != {Outcome.PROCESSED}:
            raise RuntimeError(f"coordination's consumer: {outcomes}")

    alone, together = Timed(), Timed()
    try:
        await consume(messages[:warm_up])
        if profile:
            profile.enable()
        for n, start in enumerate(range(warm_up, len(messages), BATCH)):
            chunk = messages[start : start + BATCH]
            timed, run = (alone, consume) if n % 2 == 0 else (together, consume_batch)
            started, cpu = time.perf_counter(), time.process_time()
            await run(chunk)
            timed.seconds += time.perf_counter() - started
            timed.cpu_seconds += time.process_time() - cpu
            timed.messages += len(chunk)
        if profile:
            profile.disable()
    finally:
        await runtime.engine.dispose()
        await runtime.keys_engine.dispose()
    return alone, together


async def commands_bench(
    database: str,
    steps: int,
    *,
    pg_url: str = DEFAULT_PG_URL,
    profiles: tuple[cProfile.Profile, cProfile.Profile] | None = None,
) -> CommandsResult:
    """One measurement on fresh databases (files or schemas) of its own."""
    prefix = f"bench_commands_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="kyosei-commands-") as tmpdir:
        tmp = Path(tmpdir)
        intake_settings = settings_for("intake", database, tmp, pg_url, prefix)
        coordination_settings = settings_for("coordination", database, tmp, pg_url, prefix)
        try:
            for svc, s in ((intake, intake_settings), (coordination, coordination_settings)):
                await asyncio.to_thread(upgrade, svc, s)
            command_s, command_cpu_s = await intake_commands(
                intake_settings, steps, profiles[0] if profiles else None
            )
            alone, together = await coordination_messages(
                intake_settings, coordination_settings, WARM_UP, profiles[1] if profiles else None
            )
        finally:
            if database == "postgresql":
                await _drop_schemas(pg_url, prefix)
    return CommandsResult(
        database,
        2 * steps,
        command_s,
        command_cpu_s,
        alone.messages,
        alone.seconds,
        alone.cpu_seconds,
        together.messages,
        together.seconds,
        together.cpu_seconds,
    )


async def _drop_schemas(pg_url: str, prefix: str) -> None:
    admin = create_engine(pg_url)
    try:
        async with admin.begin() as conn:
            for name in ("intake", "coordination", "keys"):
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}_{name}" CASCADE'))
    finally:
        await admin.dispose()


def quiet_service_logs() -> None:
    """The services' logging as deployed (JSON lines at info), written nowhere."""
    service_logging.configure("info", "json")
    devnull = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(devnull))
    logging.getLogger().handlers = [logging.StreamHandler(devnull)]


def bench_commands(databases: Sequence[str], steps: int, pg_url: str = DEFAULT_PG_URL) -> str:
    """The scenario as ``make bench`` runs it (``run.py --commands``): ``steps`` receive +
    escalate pairs per database, with the services' logging as deployed while it runs;
    the report."""
    structlog_config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet_service_logs()
    try:
        results = [asyncio.run(commands_bench(db, steps, pg_url=pg_url)) for db in databases]
    finally:
        structlog.configure(**structlog_config)
        root.handlers[:] = handlers
        root.setLevel(level)
    return report(results)


def report(results: Sequence[CommandsResult]) -> str:
    lines = [
        "\ncommands (intake over HTTP: receive a consultation, escalate it; coordination's "
        "consumer: CaseEscalated -> case opened)",
        f"{'database':<12}{'commands':>10}{'cmd/s':>8}{'ms/cmd':>8}{'CPU ms':>8}"
        f"{'messages':>10}{'msg/s':>8}{'ms/msg':>8}{'CPU ms':>8}"
        f"{f'by {BATCH}':>10}{'msg/s':>8}{'ms/msg':>8}{'CPU ms':>8}{'CPU ratio':>10}",
    ]
    for r in results:
        lines.append(
            f"{r.database:<12}{r.commands:>10,}{r.commands_per_s:>8.0f}"
            f"{1000 / r.commands_per_s:>8.2f}{1000 * r.command_cpu_s / r.commands:>8.2f}"
            f"{r.messages:>10,}{r.messages_per_s:>8.0f}{1000 / r.messages_per_s:>8.2f}"
            f"{1000 * r.message_cpu_s / r.messages:>8.2f}"
            f"{r.batched:>10,}{r.batched_per_s:>8.0f}{1000 / r.batched_per_s:>8.2f}"
            f"{1000 * r.batched_cpu_s / r.batched:>8.2f}"
            f"{(r.batched_cpu_s / r.batched) / (r.message_cpu_s / r.messages):>10.2f}"
        )
    lines.append(
        f"  (messages: one at a time, each in a unit of work of its own; by {BATCH}: "
        f"handed to the consumer {BATCH} at a time as one fetch, one unit of work for "
        "them; the two take turns; CPU ratio: batched over one at a time, per message)"
    )
    return "\n".join(lines)


def _top(profile: cProfile.Profile, title: str, rows: int) -> str:
    out = io.StringIO()
    print(f"\n== {title}", file=out)
    stats = pstats.Stats(profile, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(rows)
    stats.sort_stats("tottime").print_stats(rows)
    return out.getvalue()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--pg-url", default=DEFAULT_PG_URL, help="SQLAlchemy URL (postgresql+asyncpg://…)"
    )
    p.add_argument(
        "--database",
        choices=("sqlite", "postgresql", "both"),
        default="both",
        help="default both",
    )
    p.add_argument(
        "--steps", type=int, help="receive + escalate pairs timed (default 500; --quick 100)"
    )
    p.add_argument("--quick", action="store_true", help="smoke run with small counts")
    p.add_argument("--profile", action="store_true", help="cProfile the timed part")
    p.add_argument("--rows", type=int, default=40, help="rows of each profile listing")
    args = p.parse_args(argv)
    args.steps = args.steps or (100 if args.quick else 500)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_service_logs()
    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    results = []
    for database in databases:
        profiles = (cProfile.Profile(), cProfile.Profile()) if args.profile else None
        results.append(
            asyncio.run(commands_bench(database, args.steps, pg_url=args.pg_url, profiles=profiles))
        )
        if profiles:
            print(_top(profiles[0], f"intake over HTTP, {database}", args.rows))
            print(_top(profiles[1], f"coordination's consumer, {database}", args.rows))
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
