"""End-to-end latency: a command on intake until its effect is in coordination's read
model, through Kafka (part of ``make bench``; ``--latency RATE:SECONDS``).

The system runs as ``make dev`` runs it (kyosei_platform.dev): every installed service
in one process of its own (or, with ``--per-service``, intake and the broker in one
process and coordination in another, as compose runs each service), on the embedded
Kafka broker, one HTTP port per service, the
settings ``kyosei dev`` gives them (its relay poll interval and consumer fetch wait,
console logs at info) and
whatever KYOSEI_* variables are set, on SQLite files (the embedded default) or on
PostgreSQL schemas of its own (dropped at the end). This process is the load
generator: it POSTs complex consultations (``complex: true``: escalated at once, no
household, so nothing has to exist before) to intake over real HTTP at a fixed,
open-loop rate with at most ``--in-flight`` requests outstanding, and watches
coordination's read-model table ``case_consultations`` (written in the same transaction
as the case coordination opens for the escalation) for the consultations answered so
far: on PostgreSQL a trigger the benchmark adds to that table sends NOTIFY, which
arrives as the transaction commits; on SQLite it polls the table every ``POLL``
seconds.

A command's latency runs from when it was due to be sent (so a generator held back by
the in-flight bound or by a slow answer does not hide the wait) until its row is seen
committed (on SQLite the poll interval is part of it). Before the timed window, a few
commands are sent one at a time and waited for (the consumer group has joined, every
code path is warm). Sending stops when the window ends, whatever is still due; the run
then waits at most ``--drain`` seconds for what was answered to become visible and
ends: a command not seen by then is counted as not visible (its latency is over the
deadline, and counts so in the percentiles).

Run alone with ``.venv/bin/python tests/bench/latency.py`` (``--help``); ``--variant
NAME:KEY=VALUE,...`` (repeatable) runs the same scenario with KYOSEI_* settings of the
system changed, in alternating rounds, to compare them side by side; ``--profile DIR``
records the system's process with py-spy. Each run also prints the mean time of each
stage as the system's own metrics measure it (intake's HTTP handling, the relay from
commit to Kafka's acknowledgement, coordination's handling of a message), the CPU
milliseconds each command answered cost each part (each of the system's processes,
PostgreSQL's processes when the server runs on this machine, the load generator; from
/proc, so on Linux), with the cores the system would take at that rate, and the reasons
of any errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

DEFAULT_PG_URL = os.environ.get(
    "KYOSEI_BENCH_POSTGRES_URL",
    os.environ.get("KYOSEI_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
)
PG = "postgresql"
SQLITE = "sqlite"
ONE_PROCESS = "one process"  # as `make dev` runs the system
PER_SERVICE = "a process per service"  # as compose and Kubernetes run it
POLL = 0.002  # seconds between polls of the read model
WARM_UP = 20  # commands sent one at a time and waited for before the timed window
READY_WITHIN = 180.0  # seconds the system may take to start
# The issue's targets on PostgreSQL, ms.
P50_TARGET = 25.0
P99_TARGET = 100.0
COMMAND = {
    "window": "community_general_support_center",
    "channel": "phone",
    "concerns": ["care", "withdrawal", "hardship"],
    "summary": "母（82歳）に認知症の疑い。息子（54歳）は20年ひきこもり、年金のみの収入。",
    "complex": True,
    "escalation_reason": "介護・ひきこもり・生活困窮が重なる8050世帯",
}
WHAT = (
    "POST intake /consultations (complex: escalated, no household) over HTTP until its row "
    "is committed in coordination's case_consultations table (PostgreSQL: NOTIFY from a "
    f"trigger; SQLite: polled every {POLL * 1000:.0f} ms); "
    "latency from when each command was due"
)


def _progress(msg: str) -> None:
    print(f"[latency {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the system, in a process of its own ---------------------------------------------


async def serve(
    database: str,
    data: Path,
    pg_url: str,
    schema_prefix: str,
    overrides: dict[str, str],
    only: Sequence[str] = (),
    bootstrap: Sequence[str] = (),
) -> None:
    """Every installed service (or those named in ``only``) as ``kyosei dev`` starts
    them (its settings, with ``overrides``: settings by field name), on free ports, on
    the embedded broker started here (or on the one at ``bootstrap``); prints one JSON
    line with their URLs and the broker's address once each has joined Kafka, then
    serves until stdin closes or SIGTERM."""
    import uvicorn

    from kyosei_platform.dev import dev_secrets, dev_settings
    from kyosei_platform.embedded import EmbeddedKafka
    from kyosei_platform.http import create_app, server_config
    from kyosei_platform.logging import configure
    from kyosei_platform.migrate import upgrade
    from kyosei_platform.service import discover

    configure("info", "console")
    kafka = None if bootstrap else EmbeddedKafka()
    brokers = list(bootstrap) if bootstrap else kafka.bootstrap  # type: ignore[union-attr]
    servers: list[uvicorn.Server] = []
    tasks: list[asyncio.Task[None]] = []
    urls: dict[str, str] = {}
    try:
        for name, svc in discover().items():
            if only and name not in only:
                continue
            settings = dev_settings(name, data, brokers, 0, "127.0.0.1")
            changed: dict[str, Any] = dict(overrides)
            if database == PG:
                changed |= {
                    "database_url": pg_url,
                    "db_schema": f"{schema_prefix}_{name}",
                    "keys_database_url": pg_url,
                    "keys_db_schema": f"{schema_prefix}_keys",
                }
            settings = type(settings).model_validate(settings.model_dump() | changed)
            await asyncio.to_thread(upgrade, svc, settings)
            app = create_app(svc, settings)
            server = uvicorn.Server(server_config(app, settings, log_level="warning"))
            servers.append(server)
            tasks.append(asyncio.create_task(server.serve()))
            while not server.started:
                if tasks[-1].done():
                    tasks[-1].result()
                await asyncio.sleep(0.05)
            await asyncio.wait_for(app.state.runtime.wait_connected(), 60)
            port = server.servers[0].sockets[0].getsockname()[1]
            urls[name] = f"http://127.0.0.1:{port}"
        ready = {
            "urls": urls,
            "auth_secret": dev_secrets(str(data))["auth_secret"],
            "bootstrap": brokers,
        }
        print(json.dumps(ready), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(0, 1024) else None)
        await stop.wait()
    finally:
        for s in servers:
            s.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        if kafka is not None:
            kafka.close()


# -- the load generator ------------------------------------------------------------


@dataclass
class LatencyResult:
    database: str
    variant: str
    offered: float  # commands/s asked for
    seconds: float  # the timed window
    sent: int = 0
    answered: int = 0  # 201
    errors: int = 0  # another status, or no answer
    why: Counter[str] = field(default_factory=Counter)  # the errors' reasons
    visible: list[float] = field(default_factory=list)  # ms, of those seen
    not_visible: int = 0  # answered, not seen by the deadline
    command_ms: list[float] = field(default_factory=list)  # due -> HTTP answer
    drain_s: float = 0.0  # from the window's end until the last was seen (or the deadline)
    stages: dict[str, float] = field(default_factory=dict)  # mean ms, from /metrics
    # CPU ms a command answered, per part (the system's processes, PostgreSQL, the load
    # generator), from the timed window's start until the drain ended
    cpu_ms: dict[str, float] = field(default_factory=dict)

    @property
    def achieved(self) -> float:
        """Commands answered 201 in the window, per second."""
        return self.answered / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        """The ``q`` quantile of the latency of every answered command, a command not
        seen counting as infinitely late."""
        n = len(self.visible) + self.not_visible
        if not n:
            return math.nan
        ordered = sorted(self.visible)
        k = min(max(math.ceil(q * n) - 1, 0), n - 1)
        return ordered[k] if k < len(ordered) else math.inf

    def worst(self) -> float:
        if self.not_visible:
            return math.inf
        return max(self.visible) if self.visible else math.nan

    def command_pct(self, q: float) -> float:
        if not self.command_ms:
            return math.nan
        ordered = sorted(self.command_ms)
        return ordered[min(max(math.ceil(q * len(ordered)) - 1, 0), len(ordered) - 1)]


class ReadModel:
    """Which consultation ids coordination's ``case_consultations`` holds. On
    PostgreSQL it can also tell as each one commits (:meth:`watch`)."""

    def __init__(self, database: str, pg_url: str, schema: str, path: Path) -> None:
        self.database = database
        self.pg_url = pg_url
        self.schema = schema
        self.path = path
        self._pg: asyncpg.Connection | None = None
        self._sqlite: sqlite3.Connection | None = None

    async def open(self) -> None:
        if self.database == PG:
            self._pg = await asyncpg.connect(_asyncpg_dsn(self.pg_url))
        else:
            self._sqlite = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    async def watch(self, seen: Callable[[str], None]) -> bool:
        """On PostgreSQL: call ``seen`` with each consultation id as the transaction
        that adds it to ``case_consultations`` commits (a trigger the benchmark adds to
        the table sends NOTIFY, delivered at commit), instead of polling, which every
        ``POLL`` seconds would cost the database hundreds of queries a second. False
        (poll instead) on SQLite."""
        if self._pg is None:
            return False
        channel = f"{self.schema}_visible"
        await self._pg.execute(
            f"""
            CREATE FUNCTION "{self.schema}".bench_visible() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('{channel}', NEW.consultation_id); RETURN NULL; END $$;
            CREATE TRIGGER bench_visible AFTER INSERT ON "{self.schema}".case_consultations
            FOR EACH ROW EXECUTE FUNCTION "{self.schema}".bench_visible();
            """
        )
        await self._pg.add_listener(channel, lambda *args: seen(args[3]))
        return True

    async def seen(self, ids: Sequence[str]) -> list[str]:
        if self._pg is not None:
            rows = await self._pg.fetch(
                f'SELECT consultation_id FROM "{self.schema}".case_consultations '
                "WHERE consultation_id = ANY($1::text[])",
                list(ids),
            )
            return [r[0] for r in rows]
        assert self._sqlite is not None
        found: list[str] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.extend(
                r[0]
                for r in self._sqlite.execute(
                    f"SELECT consultation_id FROM case_consultations "
                    f"WHERE consultation_id IN ({marks})",
                    chunk,
                )
            )
        return found

    @property
    def pg(self) -> asyncpg.Connection | None:
        """The connection to PostgreSQL, once open (None on SQLite)."""
        return self._pg

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._sqlite is not None:
            self._sqlite.close()


def cpu_seconds(pid: int) -> float | None:
    """The CPU seconds (user and system, every thread) process ``pid`` has used so far,
    from /proc (Linux); None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_of(pids: dict[int, str]) -> dict[int, tuple[str, float]]:
    """Each process's part and CPU seconds so far; PostgreSQL's only where the pid is a
    postgres process of this machine (the server may run elsewhere)."""
    out = {}
    for pid, name in pids.items():
        if name == "PostgreSQL":
            try:
                if not Path(f"/proc/{pid}/comm").read_text().startswith("postgres"):
                    continue
            except OSError:
                continue
        cpu = cpu_seconds(pid)
        if cpu is not None:
            out[pid] = (name, cpu)
    return out


class CpuMeter:
    """CPU seconds of the parts of a run between :meth:`start` and :meth:`stop`: each of
    the system's processes, PostgreSQL's processes (every backend and background process
    of the server, when it runs on this machine) and this process (the load generator)."""

    def __init__(self, processes: dict[str, int], pg: asyncpg.Connection | None) -> None:
        self.processes = processes | {"load generator": os.getpid()}
        self.pg = pg
        self._before: dict[int, float] = {}

    async def _read(self) -> dict[int, tuple[str, float]]:
        pids = {pid: name for name, pid in self.processes.items()}
        if self.pg is not None:
            backends = [int(r[0]) for r in await self.pg.fetch("SELECT pid FROM pg_stat_activity")]
            pids |= {pid: "PostgreSQL" for pid in backends}
        return _cpu_of(pids)

    async def start(self) -> None:
        self._before = {pid: cpu for pid, (_, cpu) in (await self._read()).items()}

    async def stop(self) -> dict[str, float]:
        """CPU seconds since :meth:`start`, per part (a PostgreSQL process that started
        since counts from nothing; one that ended is not counted)."""
        used: dict[str, float] = {}
        for pid, (name, cpu) in (await self._read()).items():
            used[name] = used.get(name, 0.0) + cpu - self._before.get(pid, 0.0)
        return used


def _asyncpg_dsn(url: str) -> str:
    u = make_url(url)
    return str(u.set(drivername="postgresql"))


async def _drop_schemas(pg_url: str, prefix: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(pg_url))
    try:
        rows = await conn.fetch(
            "select nspname from pg_namespace where nspname like $1", prefix + "%"
        )
        for (schema,) in rows:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()


class System:
    """``serve`` in a child process. ``env``: KYOSEI_* names change the services'
    settings (over what ``kyosei dev`` sets), anything else is added to the child's
    environment."""

    def __init__(
        self,
        database: str,
        tmp: Path,
        pg_url: str,
        env: dict[str, str],
        topology: str = ONE_PROCESS,
        intake_replicas: int = 1,
    ) -> None:
        self.database = database
        self.topology = topology
        self.intake_replicas = intake_replicas
        self.procs: list[asyncio.subprocess.Process] = []
        self.data = tmp / f"latency-{uuid.uuid4().hex[:8]}"
        self.data.mkdir()
        self.pg_url = pg_url
        self.prefix = f"bench_latency_{uuid.uuid4().hex[:8]}"
        self.env = env
        self.urls: dict[str, str] = {}
        self.auth_secret = ""
        self.log = self.data / "system.log"

    async def start(self) -> None:
        """One process with every service, or (``PER_SERVICE``) intake with the broker
        in one and coordination in another, as compose or Kubernetes would run them, and
        ``intake_replicas - 1`` more intake processes on the same database and broker
        (replicas of a Deployment: one relay publishes, the others stand by)."""
        if self.topology == ONE_PROCESS:
            ready = await self._start([])
            self.urls, self.auth_secret = ready["urls"], ready["auth_secret"]
            return
        first = await self._start(["--only", "intake"])
        second = await self._start(
            ["--only", "coordination", "--bootstrap", ",".join(first["bootstrap"])]
        )
        self.urls = first["urls"] | second["urls"]
        self.auth_secret = first["auth_secret"]
        for n in range(2, self.intake_replicas + 1):
            replica = await self._start(
                ["--only", "intake", "--bootstrap", ",".join(first["bootstrap"])]
            )
            self.urls[f"intake-{n}"] = replica["urls"]["intake"]

    @property
    def intake_urls(self) -> list[str]:
        """Where intake answers: each replica's URL."""
        return [url for name, url in self.urls.items() if name.split("-")[0] == "intake"]

    async def _start(self, extra: list[str]) -> dict[str, Any]:
        with open(self.log, "ab") as log:  # noqa: ASYNC230 (once, before the timed window)
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--serve",
                self.database,
                "--data",
                str(self.data),
                "--pg-url",
                self.pg_url,
                "--schema-prefix",
                self.prefix,
                "--settings",
                json.dumps(
                    {
                        k.removeprefix("KYOSEI_").lower(): v
                        for k, v in self.env.items()
                        if k.startswith("KYOSEI_")
                    }
                ),
                *extra,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=os.environ | {k: v for k, v in self.env.items() if not k.startswith("KYOSEI_")},
            )
        self.procs.append(proc)
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(READY_WITHIN):
                line = await proc.stdout.readline()
        except TimeoutError:
            line = b""
        if not line:
            await self.stop()
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the system did not start; its log ends with:\n{tail}")
        ready: dict[str, Any] = json.loads(line)
        return ready

    @property
    def pid(self) -> int | None:
        """The process serving intake (the only one, in one process)."""
        return self.procs[0].pid if self.procs else None

    def processes(self) -> dict[str, int]:
        """The system's processes by what they run."""
        if self.topology == ONE_PROCESS:
            names = ["services and broker"]
        else:
            names = ["intake and broker", "coordination"]
            names += [f"intake-{n}" for n in range(2, self.intake_replicas + 1)]
        return {name: proc.pid for name, proc in zip(names, self.procs, strict=False)}

    def read_model(self) -> ReadModel:
        return ReadModel(
            self.database,
            self.pg_url,
            f"{self.prefix}_coordination",
            self.data / "coordination.db",
        )

    async def stop(self) -> None:
        procs, self.procs = self.procs, []
        for proc in reversed(procs):  # the broker's process last
            if proc.returncode is not None:
                continue
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                async with asyncio.timeout(30):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self.database == PG:
            await _drop_schemas(self.pg_url, self.prefix)


class PostClient:
    """The load generator's HTTP/1.1 client: one JSON body POSTed again and again over
    up to ``connections`` kept-alive connections. Written for this alone (a general
    client such as httpx spends about 1 ms of CPU per request, which on a 2-core machine
    is taken from the system under test): the request's bytes are built once, and an
    answer is read by its Content-Length."""

    def __init__(
        self, base_url: str, path: str, body: dict[str, Any], token: str, connections: int
    ) -> None:
        url = httpx.URL(base_url)
        self.host, self.port = url.host, url.port or 80
        payload = json.dumps(body, ensure_ascii=False).encode()
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload
        self.slots = asyncio.Semaphore(connections)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.open: set[asyncio.StreamWriter] = set()

    async def post(self) -> tuple[int, bytes]:
        """The answer's status and body; OSError or IncompleteReadError if the
        connection failed (it is not used again). A kept-alive connection the server
        closed while idle (it answers nothing, or resets the connection) is replaced once."""
        async with self.slots:
            if self.idle:
                try:
                    return await self._exchange(*self.idle.pop())
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        raise
                except (ConnectionResetError, BrokenPipeError):
                    # The server closed it after its keep-alive timeout and the request
                    # went out before the close arrived: nothing of it was read.
                    pass
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.open.add(writer)
            return await self._exchange(reader, writer)

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[int, bytes]:
        try:
            writer.write(self.request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            keep = True
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    keep = False
            body = await reader.readexactly(length)
        except BaseException:
            self.open.discard(writer)
            writer.close()
            raise
        if keep:
            self.idle.append((reader, writer))
        else:
            self.open.discard(writer)
            writer.close()
        return status, body

    async def close(self) -> None:
        for writer in self.open:
            writer.close()
        self.open.clear()
        self.idle.clear()


class Spread:
    """Requests spread over intake's replicas in turn, as a Service in front of them
    would spread them."""

    def __init__(self, clients: Sequence[PostClient]) -> None:
        self.clients = list(clients)
        self.turn = 0

    async def post(self) -> tuple[int, bytes]:
        self.turn = (self.turn + 1) % len(self.clients)
        return await self.clients[self.turn].post()

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


async def drive(
    system: System,
    rate: float,
    seconds: float,
    in_flight: int,
    drain: float,
    variant: str = "as shipped",
) -> LatencyResult:
    """The timed window on a started system: see the module's docstring."""
    from kyosei_platform.auth import Role, issue_token

    result = LatencyResult(system.database, variant, rate, seconds)
    token = issue_token(system.auth_secret, "houkatsu-matsudo-1", "staff-bench", Role.STAFF)
    client = Spread(
        [PostClient(url, "/consultations", COMMAND, token, in_flight) for url in system.intake_urls]
    )
    reads = system.read_model()
    await reads.open()
    pending: dict[str, float] = {}  # consultation id -> when its command was due
    clock = time.perf_counter

    async def command(due: float) -> None:
        try:
            status, body = await client.post()
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            result.errors += 1
            result.why[f"{type(exc).__name__}: {exc}"[:120]] += 1
            return
        if status != 201:
            result.errors += 1
            result.why[f"HTTP {status}: {body[:100].decode(errors='replace')}"] += 1
            return
        result.answered += 1
        result.command_ms.append((clock() - due) * 1000)
        cid = json.loads(body)["consultation_id"]
        pending[cid] = due
        if cid in early:
            visible(cid, early.pop(cid))

    early: dict[str, float] = {}  # visible before its answer was read: when

    def visible(cid: str, at: float) -> None:
        due = pending.pop(cid, None)
        if due is None:
            early[cid] = at
        else:
            result.visible.append((at - due) * 1000)

    async def poll() -> None:
        while True:
            if pending:
                ids = list(pending)
                found = await reads.seen(ids)
                at = clock()
                for cid in found:
                    visible(cid, at)
            await asyncio.sleep(POLL)

    try:
        # warm-up, not timed: one at a time, each until visible
        for _ in range(WARM_UP):
            status, body = await client.post()
            if status != 201:
                raise RuntimeError(f"intake answered {status}: {body.decode(errors='replace')}")
            cid = json.loads(body)["consultation_id"]
            deadline = clock() + 60
            while not await reads.seen([cid]):
                if clock() > deadline:
                    raise RuntimeError("a warm-up command never became visible in coordination")
                await asyncio.sleep(POLL)
        watched = await reads.watch(lambda cid: visible(cid, clock()))
        poller = None if watched else asyncio.create_task(poll())
        slots = asyncio.Semaphore(in_flight)
        running: set[asyncio.Task[None]] = set()

        async def bounded(due: float) -> None:
            try:
                await command(due)
            finally:
                slots.release()

        meter = CpuMeter(system.processes(), reads.pg)
        await meter.start()
        start = clock()
        end = start + seconds
        total = int(rate * seconds)
        for i in range(total):
            due = start + i / rate
            now = clock()
            if due > now:
                await asyncio.sleep(due - now)
            if clock() >= end:
                break
            try:
                async with asyncio.timeout(max(end - clock(), 0)):
                    await slots.acquire()
            except TimeoutError:
                break
            result.sent += 1
            task = asyncio.create_task(bounded(due))
            running.add(task)
            task.add_done_callback(running.discard)
        window_end = clock()
        stop_at = window_end + drain
        # what was sent gets its answer and becomes visible, until the deadline
        while (running or pending) and clock() < stop_at:  # noqa: ASYNC110 (two conditions)
            await asyncio.sleep(0.01)
        result.drain_s = clock() - window_end
        used = await meter.stop()
        if result.answered:
            result.cpu_ms = {part: 1000 * cpu / result.answered for part, cpu in used.items()}
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        for task in list(running):
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        unanswered = result.sent - result.answered - result.errors
        if unanswered:
            result.errors += unanswered
            result.why[f"no answer {drain:.0f} s after the window"] += unanswered
        result.not_visible = len(pending)
        async with httpx.AsyncClient(timeout=30.0) as metrics:
            result.stages = await stages(metrics, list(system.urls.values()))
    finally:
        await client.close()
        await reads.close()
    return result


# The stages of the way, as the system's own metrics time them (mean over the run,
# warm-up included), from every service's /metrics (one process serves them all, or each
# its own): a metric's sum over a count, each the total of the samples of that name
# with those labels, times a scale (seconds to ms).
COORDINATION = 'app_name="coordination"'
COORDINATION_CONSUMER = 'kyosei-coordination"'  # the consumer label, after any topic prefix
STAGES = {
    "http ms": (
        ("kyosei_http_request_seconds_sum", 'service="intake"', 'route="/consultations"'),
        ("kyosei_http_request_seconds_count", 'service="intake"', 'route="/consultations"'),
        1000,
    ),
    "relay ms": (
        ("kyosei_relay_publish_latency_seconds_sum", 'store="intake"'),
        ("kyosei_relay_publish_latency_seconds_count", 'store="intake"'),
        1000,
    ),
    "policy ms/msg": (
        ("faststream_received_processed_messages_duration_seconds_sum", COORDINATION),
        ("kyosei_consumer_messages_total", COORDINATION_CONSUMER),
        1000,
    ),
    "msgs/fetch": (
        ("kyosei_consumer_messages_total", COORDINATION_CONSUMER),
        ("faststream_received_processed_messages_duration_seconds_count", COORDINATION),
        1,
    ),
}


async def stages(client: httpx.AsyncClient, urls: Sequence[str]) -> dict[str, float]:
    """Each of STAGES: intake's HTTP handling of the command (ms), the relay from commit
    to Kafka's acknowledgement (ms), coordination's handling of its messages per
    message (decode, policy, read models, in batches as fetched; the commit of their
    offsets not included) and the mean number of messages a fetch brought it."""
    texts = []
    for url in sorted(set(urls)):
        try:
            texts.append((await client.get(f"{url}/metrics")).text)
        except httpx.HTTPError:
            return {}
    lines = "\n".join(texts).splitlines()

    def total(metric: str, *labels: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in lines
            if line.startswith(metric + "{") and all(label in line for label in labels)
        )

    out: dict[str, float] = {}
    for stage, (over, under, scale) in STAGES.items():
        count = total(*under)
        if count:
            out[stage] = total(*over) / count * scale
    return out


async def latency_run(
    database: str,
    tmp: Path,
    pg_url: str,
    rate: float,
    seconds: float,
    *,
    in_flight: int = 64,
    drain: float = 10.0,
    env: dict[str, str] | None = None,
    variant: str = "as shipped",
    started: Any = None,
    topology: str = ONE_PROCESS,
    intake_replicas: int = 1,
) -> LatencyResult:
    """One measurement on a system of its own. ``started(pid)`` is called once the
    system serves (to attach a profiler)."""
    system = System(database, tmp, pg_url, env or {}, topology, intake_replicas)
    if intake_replicas > 1:
        variant = f"{variant}, intake x{intake_replicas}"

    await system.start()
    try:
        if started is not None:
            started(system.pid)
        return await drive(system, rate, seconds, in_flight, drain, variant)
    finally:
        await system.stop()


def parse_rate(text: str) -> tuple[float, float]:
    """``RATE:SECONDS`` (``0``: skip, answered as (0, 0))."""
    if text.strip() in ("0", ""):
        return 0.0, 0.0
    rate, _, seconds = text.partition(":")
    return float(rate), float(seconds or 60)


def fmt(v: float) -> str:
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "lost"
    return f"{v:.1f}"


def table(results: Sequence[LatencyResult], drain: float) -> list[str]:
    out = [
        f"end-to-end latency ({WHAT}; not visible: answered but not seen within {drain:.0f} s "
        "after the window, counted as lost in the percentiles)",
    ]
    cols = (
        f"{'database':<11}{'variant':<28}{'offered/s':>10}{'achieved/s':>11}{'p50 ms':>9}"
        f"{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'not vis.':>9}{'errors':>7}"
        f"{'cmd p50':>9}{'cmd p99':>9}"
    )
    out.append(cols)
    out.append("-" * len(cols))
    for r in results:
        out.append(
            f"{r.database:<11}{r.variant[:27]:<28}{r.offered:>10.0f}{r.achieved:>11.1f}"
            f"{fmt(r.pct(0.5)):>9}{fmt(r.pct(0.9)):>9}{fmt(r.pct(0.99)):>9}{fmt(r.worst()):>9}"
            f"{r.not_visible:>9}{r.errors:>7}{fmt(r.command_pct(0.5)):>9}"
            f"{fmt(r.command_pct(0.99)):>9}"
        )
    out.append(
        "  (cmd: from due to intake's HTTP answer; achieved: commands answered 201 per "
        "second of the window)"
    )
    out.append(
        "  stages from the system's metrics, means (http: intake's handling of the "
        "command; relay: commit to Kafka's ack; policy: coordination's handling of its "
        "messages, per message; msgs/fetch: messages per batch coordination's consumer took)"
    )
    for r in results:
        if r.stages:
            shown = ", ".join(f"{k} {v:.1f}" for k, v in r.stages.items())
            out.append(f"    {r.database:<11}{r.variant[:27]:<28}{shown}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if any(r.cpu_ms for r in results):
        out.append(
            "  CPU ms a command answered (user and system time of every thread, from the "
            "window's start until the drain ended; system: all but the load generator), and "
            f"the cores the system would take at the offered rate (this machine: {cores})"
        )
    for r in results:
        if r.cpu_ms:
            parts = ", ".join(f"{part} {ms:.2f}" for part, ms in r.cpu_ms.items())
            system = sum(ms for part, ms in r.cpu_ms.items() if part != "load generator")
            out.append(
                f"    {r.database:<11}{r.variant[:27]:<28}{parts}; system {system:.2f} ms, "
                f"{system * r.offered / 1000:.2f} cores at {r.offered:g}/s"
            )
    for r in results:
        if r.why:
            reasons = "; ".join(f"{n} x {why}" for why, n in r.why.most_common())
            out.append(f"  errors of {r.database} {r.variant}: {reasons}")
    return out


def _profiler(out: Path, seconds: float) -> Any:
    """What starts py-spy on the system's process (``uv tool run py-spy``), recording
    for ``seconds``, its collapsed stacks written to ``out``."""
    import shutil
    import subprocess

    uv = shutil.which("uv") or str(Path(__file__).parents[2] / ".tools" / "bin" / "uv")

    def start(pid: int) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        spy = ["tool", "run", "py-spy", "record", "--format", "raw", "--rate", "100", "--gil"]
        length = ["--duration", str(math.ceil(seconds))]
        subprocess.Popen(  # it ends on its own after ``seconds``
            [uv, *spy, *length, "--pid", str(pid), "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    return start


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--serve", choices=(PG, SQLITE), help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--schema-prefix", help=argparse.SUPPRESS)
    p.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    p.add_argument("--only", default="", help=argparse.SUPPRESS)
    p.add_argument("--bootstrap", default="", help=argparse.SUPPRESS)
    p.add_argument(
        "--per-service",
        action="store_true",
        help="run each service in a process of its own (as compose does), not all in one",
    )
    p.add_argument("--pg-url", default=DEFAULT_PG_URL)
    p.add_argument("--latency", default="200:60", help="RATE:SECONDS (default 200:60)")
    p.add_argument("--in-flight", type=int, default=64, help="requests outstanding at most")
    p.add_argument("--drain", type=float, default=10.0, help="seconds to wait after the window")
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds of the variants")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:KEY=VALUE,... settings of the system for a variant (repeatable): "
        "KYOSEI_* names change the services' settings (over what `kyosei dev` sets), others "
        "are environment variables of its process; the system as shipped always runs too",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="record the system's process with py-spy during each run (collapsed stacks, "
        "DIR/<database>-<variant>-<round>.txt)",
    )
    p.add_argument(
        "--intake-replicas",
        type=int,
        default=1,
        help="with --per-service on PostgreSQL: intake processes (replicas), the load spread "
        "over them in turn (default 1)",
    )
    p.add_argument("--skip-postgres", action="store_true")
    p.add_argument("--skip-sqlite", action="store_true")
    args = p.parse_args(argv)
    if args.serve:
        overrides = json.loads(args.settings)
        only = [n for n in args.only.split(",") if n]
        bootstrap = [b for b in args.bootstrap.split(",") if b]
        asyncio.run(
            serve(
                args.serve,
                Path(args.data),
                args.pg_url,
                args.schema_prefix,
                overrides,
                only,
                bootstrap,
            )
        )
        return 0
    rate, seconds = parse_rate(args.latency)
    variants: list[tuple[str, dict[str, str]]] = [("as shipped", {})]
    for v in args.variant:
        name, _, pairs = v.partition(":")
        env = dict(kv.split("=", 1) for kv in pairs.split(",") if kv)
        variants.append((name, env))
    dbs = [d for d, skip in ((PG, args.skip_postgres), (SQLITE, args.skip_sqlite)) if not skip]
    if args.intake_replicas > 1 and (not args.per_service or SQLITE in dbs):
        p.error("--intake-replicas needs --per-service and --skip-sqlite (one database)")
    results: list[LatencyResult] = []
    with tempfile.TemporaryDirectory(prefix="kyosei-latency-") as tmpdir:
        for round_ in range(args.rounds):
            order = variants[round_ % len(variants) :] + variants[: round_ % len(variants)]
            for db in dbs:
                for name, env in order:
                    _progress(f"round {round_ + 1}: {db} {name} at {rate:g}/s for {seconds:g} s")
                    started = None
                    if args.profile:
                        out = Path(args.profile) / f"{db}-{name}-{round_ + 1}.txt"
                        started = _profiler(out, seconds + 2)
                    r = asyncio.run(
                        latency_run(
                            db,
                            Path(tmpdir),
                            args.pg_url,
                            rate,
                            seconds,
                            in_flight=args.in_flight,
                            drain=args.drain,
                            env=env,
                            variant=name,
                            started=started,
                            topology=PER_SERVICE if args.per_service else ONE_PROCESS,
                            intake_replicas=args.intake_replicas,
                        )
                    )
                    _progress(
                        f"  p50 {fmt(r.pct(0.5))} p99 {fmt(r.pct(0.99))} ms, "
                        f"{r.achieved:.1f}/s, not visible {r.not_visible}"
                    )
                    results.append(r)
    print("\n".join(table(results, args.drain)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
