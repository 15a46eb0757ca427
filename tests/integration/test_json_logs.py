"""Every log line is one JSON object, request lines carry the correlation id, and no
line carries personal data: intake served by uvicorn as `kyosei serve` runs it (the
same logging configuration and server config), a short scenario over HTTP, and every
line written to stdout and stderr checked."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from sqlalchemy import CheckConstraint, Column, MetaData, String, Table
from sqlalchemy import exc as sa_exc

from kyosei_events.consumer import _describe
from kyosei_events.database import create_engine
from kyosei_platform.auth import Role, issue_token
from kyosei_platform.http import create_app, server_config
from kyosei_platform.logging import QUIET, configure
from kyosei_platform.migrate import upgrade
from kyosei_platform.service import discover
from kyosei_platform.settings import Settings
from tests.conftest import Database

AUTH_SECRET = "logs-secret-" + uuid.uuid4().hex
NAMES = ["相馬 ミツ子", "そうま みつこ", "相馬 健太"]
ADDRESS = "千葉県松戸市小金原9丁目8番7号"
PHONE = "047-987-6543"
SUMMARY = "母87歳、転倒が続き食事もとれていない。次男49歳は失職して家に籠っている"
PERSONAL = [*NAMES, ADDRESS, PHONE, SUMMARY, "小金原", "987-6543", "相馬", "ミツ子"]


@pytest.fixture
def json_logging() -> Iterator[None]:
    """Logging put back as it was after the test configures it (inside the test, so
    that it writes to the streams capsys captures)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    named = [logging.getLogger(n) for n in [*QUIET, "uvicorn.error"]]
    levels = [(logger, logger.level) for logger in named]
    try:
        yield
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for logger, level in levels:
            logger.setLevel(level)
        logging.captureWarnings(False)
        structlog.reset_defaults()


async def test_every_line_is_json_with_correlation_id_and_no_personal_data(
    tmp_path: Path,
    kafka_bootstrap: list[str],
    capsys: pytest.CaptureFixture[str],
    json_logging: None,
) -> None:
    started = time.monotonic()
    configure("info", "json")  # as `kyosei serve` does
    svc = discover()["intake"]
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'intake'}.db",
        keys_database_url=f"sqlite+aiosqlite:///{tmp_path / 'keys'}.db",
        kafka_bootstrap=kafka_bootstrap,
        master_key="44" * 32,
        auth_secret=AUTH_SECRET,
        topic_prefix=f"logs{uuid.uuid4().hex[:8]}.",
        http_host="127.0.0.1",
        http_port=0,
        relay_poll_interval=0.2,
        max_request_bytes=64 * 1024,
    )
    await asyncio.to_thread(upgrade, svc, settings)
    app = create_app(svc, settings)
    server = uvicorn.Server(server_config(app, settings))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), serving.result()
            await asyncio.sleep(0.05)
        await asyncio.wait_for(app.state.runtime.wait_connected(), 30)
        port = server.servers[0].sockets[0].getsockname()[1]
        token = issue_token(AUTH_SECRET, "houkatsu-1", "staff-1", Role.STAFF)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ) as client:
            registered = await client.post(
                "/households",
                json={
                    "address": ADDRESS,
                    "phone": PHONE,
                    "members": [
                        {"name": NAMES[0], "kana": NAMES[1], "birth_date": "1938-02-03"},
                        {"name": NAMES[2], "relationship": "child"},
                    ],
                },
                headers={"x-correlation-id": "corr-register"},
            )
            assert registered.status_code == 201, registered.text
            hid = registered.json()["household_id"]
            consulted = await client.post(
                "/consultations",
                json={
                    "household_id": hid,
                    "window": "community_general_support_center",
                    "channel": "phone",
                    "concerns": ["care"],
                    "summary": SUMMARY,
                    "complex": True,
                },
            )
            assert consulted.status_code == 201, consulted.text
            # Personal data in the query string and in an invalid body (422 echoes it
            # in the response, never in a log line).
            found = await client.get("/households/search", params={"name": NAMES[0]})
            assert found.status_code == 200, found.text
            invalid = await client.post(
                "/consultations",
                json={"window": "nowhere", "summary": SUMMARY, "caller_name": NAMES[2]},
            )
            assert invalid.status_code == 422, invalid.text
            missing = await client.get(f"/households/{uuid.uuid4()}")
            assert missing.status_code == 404, missing.text
            assert (await client.get("/no-such-route", params={"q": PHONE})).status_code == 404
            assert (await client.get("/health/ready")).status_code == 200
            too_large = await client.post(
                "/consultations", json={"summary": SUMMARY * 2000, "caller_name": NAMES[0]}
            )
            assert too_large.status_code == 413, too_large.text
            assert too_large.headers["x-correlation-id"]

        # The standard library's loggers (aiokafka's and Python warnings, such as
        # SQLAlchemy's) reach the same handler.
        logging.getLogger("aiokafka.consumer").warning("Heartbeat failed for group %s", "g")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("a SQLAlchemy warning", sa_exc.SAWarning, stacklevel=1)
        await asyncio.sleep(0.5)  # the relay publishes what the scenario appended
    finally:
        server.should_exit = True
        await serving

    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    parsed: list[dict[str, Any]] = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
        for personal in PERSONAL:
            assert personal not in line, (personal, line)

    requests = [e for e in parsed if e.get("event") == "http_request"]
    assert [(e["method"], e["route"], e["status"]) for e in requests] == [
        ("POST", "/households", 201),
        ("POST", "/consultations", 201),
        ("GET", "/households/search", 200),
        ("POST", "/consultations", 422),
        ("GET", "/households/{household_id}", 404),
        ("GET", "unmatched", 404),
        ("GET", "/health/ready", 200),
        ("POST", "unmatched", 413),  # refused before routing
    ]
    assert all(e["correlation_id"] and e["service"] == "intake" for e in requests)
    assert all(isinstance(e["duration_ms"], float) for e in requests)
    assert requests[0]["correlation_id"] == "corr-register"
    assert len({e["correlation_id"] for e in requests}) == len(requests)
    loggers = {e.get("logger") for e in parsed}
    assert {"uvicorn.error", "aiokafka.consumer", "py.warnings"} <= loggers, loggers
    assert all("level" in e and "timestamp" in e for e in parsed)
    print(f"{len(lines)} lines checked in {time.monotonic() - started:.1f}s")


async def test_a_database_error_never_carries_the_values_it_refused(database: Database) -> None:
    """A policy's permanent database error is logged and becomes a dead-letter reason:
    its text names the statement, never the values (a policy writes opened fields)."""
    engine = create_engine(database.url, schema=database.schema)
    notes = Table("notes", MetaData(), Column("v", String(200)), CheckConstraint("length(v) < 5"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(notes.metadata.create_all)
        with pytest.raises(sa_exc.IntegrityError) as caught:
            async with engine.begin() as conn:
                await conn.execute(notes.insert().values(v=SUMMARY))
    finally:
        await engine.dispose()
    assert "INSERT INTO" in str(caught.value)
    assert SUMMARY not in str(caught.value)
    assert SUMMARY not in _describe(caught.value)
