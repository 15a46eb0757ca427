"""intake served by uvicorn over a real socket, with each HTTP/1.1 parser uvicorn can
use: the pure-Python ``h11`` and ``httptools`` (a binding of llhttp, the parser of
Node.js), which uvicorn picks when it is installed, as kyosei ships it (part of ``make
bench``).

intake's app is built as ``commands.py`` builds it (``create_app``: auth, idempotency
keys, body limit, request log and metrics, error envelope; no Kafka, no relay, no
lifespan), migrated, and served by ``uvicorn.Server`` with the config
``kyosei_platform.http.server_config`` gives it, in a process of its own, one for each
parser, taking turns (``ROUNDS``), so the noise of a shared machine falls on both. This
process POSTs receive + escalate pairs (``commands.py``'s steps) to it over one
keep-alive connection, one after another. Printed per parser: milliseconds a command,
and the CPU milliseconds a command of the server's process (what the parser changes),
and the ratio of httptools to h11.

``make bench`` runs it on PostgreSQL after the commands scenario (``run.py
--http-parser``: pairs per round, default 300, ``--quick`` 50, 0 skips). Run alone with
``.venv/bin/python tests/bench/http_parser.py`` (``--help``). Not a pytest module.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.connection
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from commands import (
    AGENCY,
    AUTH_SECRET,
    DEFAULT_PG_URL,
    WARM_UP,
    _drop_schemas,
    _step,
    quiet_service_logs,
    settings_for,
)

from kyosei_intake.app import service as intake
from kyosei_platform.auth import Role, issue_token
from kyosei_platform.migrate import upgrade
from kyosei_platform.settings import Settings

PARSERS = ("h11", "httptools")
ROUNDS = 3


@dataclass
class ParserResult:
    parser: str
    commands: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def ms(self) -> float:
        return 1000 * self.seconds / self.commands

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / self.commands


def _serve(
    settings: Settings, parser: str, port: int, cpu: multiprocessing.connection.Connection
) -> None:
    """The server's process: intake on ``port`` with ``parser``; each message on
    ``cpu`` is answered with the process's CPU seconds so far."""
    import uvicorn

    from kyosei_platform.http import create_app, server_config

    quiet_service_logs()
    config = server_config(create_app(intake, settings), settings, log_level="warning")
    config.host, config.port, config.http, config.lifespan = "127.0.0.1", port, parser, "off"

    def answer() -> None:
        while True:
            try:
                cpu.recv()
            except EOFError:
                return
            cpu.send(time.process_time())

    threading.Thread(target=answer, daemon=True).start()
    uvicorn.Server(config).run()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _drive(
    port: int, steps: int, cpu: multiprocessing.connection.Connection
) -> tuple[float, float]:
    """Seconds and the server's CPU seconds for ``steps`` pairs, after a warm-up."""
    token = issue_token(AUTH_SECRET, AGENCY, f"{AGENCY}-staff", Role.STAFF)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
    ) as client:
        for _ in range(200):  # until it listens
            try:
                await client.get("/health/live")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"intake did not answer on port {port} within 10 s")
        for i in range(WARM_UP):
            await _step(client, -i)
        cpu.send(None)
        cpu_before, started = cpu.recv(), time.perf_counter()
        for i in range(steps):
            await _step(client, i)
        took = time.perf_counter() - started
        cpu.send(None)
        return took, cpu.recv() - cpu_before


def one_run(settings: Settings, parser: str, steps: int) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    port = _free_port()
    server = context.Process(target=_serve, args=(settings, parser, port, theirs), daemon=True)
    server.start()
    try:
        return asyncio.run(_drive(port, steps, ours))
    finally:
        server.terminate()
        server.join(10)


def http_parser_bench(
    database: str, steps: int, rounds: int = ROUNDS, pg_url: str = DEFAULT_PG_URL
) -> list[ParserResult]:
    """``rounds`` runs of ``steps`` pairs per parser, taking turns, on one database."""
    results = {parser: ParserResult(parser) for parser in PARSERS}
    prefix = f"bench_http_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="kyosei-http-") as tmpdir:
        settings = settings_for("intake", database, Path(tmpdir), pg_url, prefix)
        try:
            upgrade(intake, settings)
            for round_ in range(rounds):
                order = PARSERS if round_ % 2 == 0 else PARSERS[::-1]
                for parser in order:
                    took, cpu = one_run(settings, parser, steps)
                    r = results[parser]
                    r.commands += 2 * steps
                    r.seconds += took
                    r.cpu_seconds += cpu
        finally:
            if database == "postgresql":
                asyncio.run(_drop_schemas(pg_url, prefix))
    return list(results.values())


def report(database: str, results: Sequence[ParserResult]) -> str:
    lines = [
        f"\nhttp parser (intake served by uvicorn over TCP, {database}: receive + escalate "
        "one after another on one keep-alive connection; CPU: the server's process)",
        f"{'parser':<12}{'commands':>10}{'ms/cmd':>8}{'CPU ms':>8}",
    ]
    for r in results:
        lines.append(f"{r.parser:<12}{r.commands:>10,}{r.ms:>8.2f}{r.cpu_ms:>8.2f}")
    by = {r.parser: r for r in results}
    lines.append(
        f"  httptools / h11: CPU a command {by['httptools'].cpu_ms / by['h11'].cpu_ms:.2f}, "
        f"time a command {by['httptools'].ms / by['h11'].ms:.2f} (kyosei ships httptools)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="postgresql")
    p.add_argument("--steps", type=int, default=300, help="pairs per run (default 300)")
    p.add_argument("--rounds", type=int, default=ROUNDS, help=f"runs per parser (default {ROUNDS})")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = p.parse_args(argv)
    quiet_service_logs()
    results = http_parser_bench(args.database, args.steps, args.rounds, args.pg_url)
    print(report(args.database, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
