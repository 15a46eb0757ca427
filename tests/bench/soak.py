"""Intake's resident memory over a long run of commands (part of ``make bench``).

Drives intake the way its API does: the command functions with a staff member's
``CommandContext``, on a fresh store with intake's read models, one command after
another. The commands cycle through registering a household (two members, sealed
personal data, a new household key), receiving a consultation about it and recording
its outcome, so every third command opens a household stream, every third a
consultation stream. At each checkpoint it prints resident memory (VmRSS) and, with
tracemalloc on, the allocation sites that grew most since the previous checkpoint.

Run alone with ``.venv/bin/python tests/bench/soak.py`` (``--help`` for the flags;
``--quick`` checkpoints at 1,000 and 5,000 commands, the default at 1,000, 10,000 and
100,000). ``make bench`` runs it in a process of its own per database, so what the
throughput scenarios allocated does not count.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from kyosei_events import EventStore, KeyVault
from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.intake import Channel, Window
from kyosei_events.crypto import DEFAULT_CACHE_SIZE
from kyosei_events.database import create_engine
from kyosei_events.writer import HEAD_CACHE_SIZE
from kyosei_households.directory import metadata as directory_tables
from kyosei_intake.app import service
from kyosei_intake.commands.consultations import (
    ReceiveConsultation,
    handle_consultation,
    receive_consultation,
)
from kyosei_intake.commands.households import MemberIn, RegisterHousehold, register_household
from kyosei_intake.projections import metadata as intake_tables
from kyosei_platform.application import CommandContext
from kyosei_platform.idempotency import idempotency_metadata
from kyosei_platform.testing import acting_as

DEFAULT_PG_URL = os.environ.get(
    "KYOSEI_BENCH_POSTGRES_URL",
    os.environ.get("KYOSEI_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
)
MASTER_KEY = bytes(range(32))
BORN = date(1930, 1, 1)  # the members' birth dates spread from here, one a day
TOP = 8  # allocation sites shown per checkpoint


def status_kib(field: str = "VmRSS") -> int:
    """A memory figure of this process from /proc/self/status (VmRSS: resident memory,
    RssAnon: its heap part), in KiB; the peak RSS (ru_maxrss) where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_kib() -> int:
    return status_kib("VmRSS")


@dataclass
class Checkpoint:
    commands: int
    seconds: float
    rss_kib: int
    traced_kib: int | None
    growth: list[str]


class Commands:
    """register -> receive a consultation about it -> handle it, over and over."""

    def __init__(self, ctx: CommandContext) -> None:
        self.ctx = ctx
        self.n = 0
        self.household: str | None = None
        self.consultation: str | None = None

    async def next(self) -> None:
        step, i = self.n % 3, self.n // 3
        self.n += 1
        if step == 0:
            done = await register_household(
                self.ctx,
                RegisterHousehold(
                    address=f"松戸市本町{i}-2-3",
                    members=[
                        MemberIn(name=f"町民 {i}", birth_date=BORN + timedelta(days=i % 20_000)),
                        MemberIn(name=f"町民 {i}-子"),
                    ],
                    proceed_despite_duplicates=True,
                ),
            )
            self.household = done.household_id
        elif step == 1:
            state = await receive_consultation(
                self.ctx,
                ReceiveConsultation(
                    household_id=self.household,
                    window=Window.COMMUNITY_GENERAL_SUPPORT_CENTER,
                    channel=Channel.PHONE,
                    concerns=[Concern.CARE, Concern.WITHDRAWAL],
                    summary=f"母に認知症の疑い、息子がひきこもり ({i})",
                ),
            )
            self.consultation = state.consultation_id
        else:
            assert self.consultation is not None
            await handle_consultation(self.ctx, self.consultation, "窓口で対応")


def cache_sizes() -> tuple[int, int]:
    """The store's head cache and the vault's key cache, sized as the service sizes them
    (KYOSEI_HEAD_CACHE_SIZE, KYOSEI_KEY_CACHE_SIZE)."""
    heads = int(os.environ.get("KYOSEI_HEAD_CACHE_SIZE", HEAD_CACHE_SIZE))
    keys = int(os.environ.get("KYOSEI_KEY_CACHE_SIZE", DEFAULT_CACHE_SIZE))
    return heads, keys


async def soak(
    engine: AsyncEngine, vault: KeyVault, checkpoints: Sequence[int], trace: bool
) -> list[Checkpoint]:
    heads, _ = cache_sizes()
    store = EventStore(
        engine,
        vault,
        name=service.name,
        projections=[make() for make in service.projections],
        head_cache_size=heads,
    )
    await store.create_tables()
    async with engine.begin() as conn:
        for metadata in (idempotency_metadata, intake_tables, directory_tables):
            await conn.run_sync(metadata.create_all)
    commands = Commands(acting_as(store, "houkatsu"))
    out: list[Checkpoint] = []
    previous: tracemalloc.Snapshot | None = None
    if trace:
        tracemalloc.start(1)
    started = time.perf_counter()
    for target in checkpoints:
        while commands.n < target:
            await commands.next()
        elapsed = time.perf_counter() - started
        gc.collect()
        growth: list[str] = []
        traced = None
        if trace:
            snap = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            traced = tracemalloc.get_traced_memory()[0] // 1024
            if previous is not None:
                for stat in snap.compare_to(previous, "lineno")[:TOP]:
                    frame = stat.traceback[0]
                    growth.append(
                        f"{stat.size_diff / 1024:+10.0f} KiB {stat.count_diff:+9,} blocks  "
                        f"{_short(frame.filename)}:{frame.lineno}"
                    )
            previous = snap
        out.append(Checkpoint(target, elapsed, rss_kib(), traced, growth))
        caches = f"heads {store.writer.cached_heads():,}, keys {vault.cached_keys():,}"
        print(
            f"  {target:>9,} commands  {elapsed:8.1f}s  RSS {out[-1].rss_kib / 1024:8.1f} MiB"
            f"  (anon {status_kib('RssAnon') / 1024:.1f}, file {status_kib('RssFile') / 1024:.1f},"
            f" threads {status_kib('Threads')}; cached {caches})",
            file=sys.stderr,
            flush=True,
        )
    if trace:
        tracemalloc.stop()
    return out


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def report(database: str, points: Sequence[Checkpoint]) -> str:
    heads, keys = cache_sizes()
    lines = [
        f"\nintake soak on {database} (register / consultation / outcome; RSS after gc.collect())",
        f"  caches: up to {heads:,} stream heads, {keys:,} household keys "
        "(KYOSEI_HEAD_CACHE_SIZE, KYOSEI_KEY_CACHE_SIZE); they grow until full",
        f"{'commands':>10}{'seconds':>10}{'cmd/s':>8}{'RSS MiB':>10}{'traced MiB':>12}"
        f"{'B/cmd since last':>18}",
    ]
    last: Checkpoint | None = None
    for p in points:
        per = ""
        if last is not None:
            per = f"{(p.rss_kib - last.rss_kib) * 1024 / (p.commands - last.commands):,.0f}"
        traced = f"{p.traced_kib / 1024:.1f}" if p.traced_kib is not None else "-"
        lines.append(
            f"{p.commands:>10,}{p.seconds:>10.1f}{p.commands / p.seconds:>8.0f}"
            f"{p.rss_kib / 1024:>10.1f}{traced:>12}{per:>18}"
        )
        last = p
    for p, prev in zip(points[1:], points, strict=False):
        if p.growth:
            lines.append(f"  top growth, {prev.commands:,} -> {p.commands:,} commands:")
            lines.extend(f"    {g}" for g in p.growth)
    return "\n".join(lines)


async def run(database: str, pg_url: str, checkpoints: Sequence[int], trace: bool) -> str:
    with tempfile.TemporaryDirectory(prefix="kyosei-soak-") as tmpdir:
        tmp = Path(tmpdir)
        keys = create_engine(f"sqlite+aiosqlite:///{tmp / 'keys.db'}")
        vault = KeyVault(keys, MASTER_KEY, cache_size=cache_sizes()[1])
        await vault.create_tables()
        schema = None
        if database == "postgresql":
            from run import pg_admin  # the bench's helpers; psycopg is a dev dependency

            schema = f"bench_soak_{uuid.uuid4().hex[:8]}"
            pg_admin(pg_url, f'CREATE SCHEMA "{schema}"')
            engine = create_engine(pg_url, schema=schema)
        else:
            engine = create_engine(f"sqlite+aiosqlite:///{tmp / 'intake.db'}")
        try:
            points = await soak(engine, vault, checkpoints, trace)
        finally:
            await engine.dispose()
            await keys.dispose()
            if schema is not None:
                pg_admin(pg_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return report(database, points)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--pg-url", default=DEFAULT_PG_URL, help="SQLAlchemy URL (postgresql+asyncpg://…)"
    )
    p.add_argument(
        "--database", choices=("sqlite", "postgresql"), default="sqlite", help="default sqlite"
    )
    p.add_argument(
        "--soak",
        help="checkpoints, in commands, comma-separated (default 1000,10000,100000; "
        "--quick 1000,5000)",
    )
    p.add_argument("--no-tracemalloc", action="store_true", help="RSS only (runs faster)")
    p.add_argument("--quick", action="store_true", help="smoke run with small counts")
    args = p.parse_args(argv)
    spec = args.soak or ("1000,5000" if args.quick else "1000,10000,100000")
    args.checkpoints = sorted(int(n) for n in spec.split(",") if int(n) > 0)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if not args.checkpoints:
        return 0
    print(asyncio.run(run(args.database, args.pg_url, args.checkpoints, not args.no_tracemalloc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
