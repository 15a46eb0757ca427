"""``make dev``: every installed service in one process on the embedded default.

SQLite files under the data folder, the in-process Kafka-protocol broker, one HTTP
port per service. Secrets for this machine are generated once into the data folder.

At every start each service's settings are written to ``<data>/<service>.env``
(KYOSEI_* lines, readable by the owner only): the maintenance commands (``kyosei
verify``, ``rebuild``, ``anchor``, ``keys …``, ``dlq …``, ``republish``, ``topics``,
``token``, ``checkpoint-key``) read them when run from the same folder, so they find the
dev databases, keys and the running broker without anything exported. A KYOSEI_*
variable that is set still wins over the file (kyosei_platform.settings.load).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

import uvicorn

from .auth import Role, issue_token
from .embedded import EmbeddedKafka
from .http import create_app, server_config
from .logging import configure
from .migrate import upgrade
from .service import discover, host_ports
from .settings import Settings, settings_file


def dev_secrets(data: str) -> dict[str, str]:
    """This machine's dev secrets, generated once (a key added later is generated
    then: the anchor signing key of a data folder made before there was one)."""
    path = Path(data) / "dev-secrets.json"
    values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing: dict[str, Callable[[], str]] = {
        "master_key": lambda: secrets.token_hex(32),
        "auth_secret": lambda: secrets.token_urlsafe(32),
        "checkpoint_signing_key": lambda: secrets.token_hex(32),
    }
    if set(missing) <= set(values):
        return values
    for key, make in missing.items():
        values.setdefault(key, make())
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, json.dumps(values))
    return values


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    path.write_text(text)


# What `kyosei dev` writes to each service's settings file: what the maintenance
# commands need to reach that service's store, the key vault and the broker.
WRITTEN = (
    "database_url",
    "keys_database_url",
    "kafka_bootstrap",
    "master_key",
    "auth_secret",
    "checkpoint_signing_key",
    "log_format",
)


def write_settings_file(data: Path, name: str, settings: Settings) -> Path:
    """``<data>/<name>.env``: the service's settings as KYOSEI_* lines."""
    lines = ["# written by `kyosei dev` at its last start; KYOSEI_* variables win over it"]
    for field in WRITTEN:
        value = getattr(settings, field)
        text = ",".join(value) if isinstance(value, list) else str(value)
        lines.append(f"KYOSEI_{field.upper()}={json.dumps(text, ensure_ascii=False)}")
    path = settings_file(data, name)
    _write_private(path, "\n".join(lines) + "\n")
    return path


# How long the embedded broker may hold a consumer's fetch (KYOSEI_KAFKA_FETCH_MAX_WAIT_MS).
# It answers only when the wait is over, so each hop through it waits half this on
# average; shorter costs more fetches while idle. At 5 ms against 10: a command's way to
# coordination's read model at 50/s took 18.7 ms at the median instead of about 23, and
# intake's and coordination's processes idled at 1.9 s of CPU per 10 s instead of 1.3
# (tests/bench/latency.py, PostgreSQL, a process per service).
EMBEDDED_FETCH_MAX_WAIT_MS = 5


def dev_settings(name: str, data: Path, bootstrap: list[str], port: int, host: str) -> Settings:
    s = dev_secrets(str(data))
    return Settings(
        database_url=f"sqlite+aiosqlite:///{data.resolve() / name}.db",
        keys_database_url=f"sqlite+aiosqlite:///{data.resolve() / 'keys'}.db",
        kafka_bootstrap=bootstrap,
        master_key=s["master_key"],
        auth_secret=s["auth_secret"],
        checkpoint_signing_key=s["checkpoint_signing_key"],
        http_host=host,
        http_port=port,
        log_format="console",
        relay_poll_interval=1.0,
        # The embedded broker holds a fetch for all of this when it has nothing new,
        # where Kafka answers as soon as something arrives: it is the consumer's wait.
        kafka_fetch_max_wait_ms=EMBEDDED_FETCH_MAX_WAIT_MS,
    )


def _check_ports_free(host: str, ports: range) -> None:
    for port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                sock.bind((host, port))
            except OSError:
                raise SystemExit(
                    f"port {port} on {host} is in use (another `make dev`?); stop it or run "
                    f"`.venv/bin/kyosei dev --port N` with a free range"
                ) from None


async def run_dev(data_dir: str, host: str, first_port: int) -> None:
    configure("info", "console")
    data = Path(data_dir).resolve()  # noqa: ASYNC240 (once, before anything serves)
    data.mkdir(parents=True, exist_ok=True)
    services = discover()
    _check_ports_free(host, range(first_port, first_port + len(services)))
    kafka = EmbeddedKafka()
    servers: list[uvicorn.Server] = []
    lines = []
    for name, port in host_ports(services, first_port).items():
        svc = services[name]
        settings = dev_settings(name, data, kafka.bootstrap, port, host)
        write_settings_file(data, name, settings)
        await asyncio.to_thread(upgrade, svc, settings)
        config = server_config(create_app(svc, settings), settings, log_level="warning")
        servers.append(uvicorn.Server(config))
        base = f"http://{host}:{settings.http_port}"
        lines.append(f"  {name:14} {base}   docs {base}/docs")
    token = issue_token(
        dev_secrets(data_dir)["auth_secret"], "fukushi-madoguchi", "dev-staff", Role.COORDINATOR
    )
    print(
        "\nkyosei is running on the embedded default\n"
        f"  kafka          {', '.join(kafka.bootstrap)} (in-process; nothing kept on disk)\n"
        f"  data           {data}\n" + "\n".join(lines) + "\n\n"
        "  a token for trying the APIs (agency fukushi-madoguchi, role coordinator):\n"
        f"    export TOKEN={token}\n"
        "  other tokens: .venv/bin/kyosei token --agency ID --staff ID "
        "--role staff|coordinator|auditor\n"
        "  maintenance from this folder, nothing to export: .venv/bin/kyosei verify SERVICE, "
        "rebuild SERVICE, anchor SERVICE, dlq list SERVICE …\n"
        f"    (settings of each service in {data}/<service>.env)\n"
        "  stop with Ctrl-C\n",
        flush=True,
    )
    try:
        await asyncio.gather(*(s.serve() for s in servers))
    finally:
        kafka.close()
