"""/health/ready: ready when the database and the key vault answer. Kafka's state and
the relay's are reported in the body (and as metrics) but do not make the service
unready: writes need only the database (the store is the outbox)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter
from prometheus_client import REGISTRY

from kyosei_events.relay import Stuck
from kyosei_platform.http import create_app
from kyosei_platform.service import Service
from kyosei_platform.settings import Settings

SERVICE = Service(
    name="readiness",
    title="readiness",
    description="test",
    router=APIRouter(),
    migrations=Path("."),
    order=98,
)


def settings_for(tmp_path: Path, bootstrap: list[str], db: str | None = None) -> Settings:
    return Settings(
        database_url=db or f"sqlite+aiosqlite:///{tmp_path}/events.db",
        keys_database_url=f"sqlite+aiosqlite:///{tmp_path}/keys.db",
        kafka_bootstrap=bootstrap,
        master_key="33" * 32,
        auth_secret="s" * 32,
    )


async def ready(settings: Settings, start: bool = True) -> tuple[int, dict[str, Any], Any]:
    app = create_app(SERVICE, settings)
    runtime = app.state.runtime
    if start:
        await runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            if start and settings.kafka_bootstrap != ["127.0.0.1:9"]:
                await asyncio.wait_for(runtime.wait_connected(), 30)
            runtime.relay.stuck = Stuck("consultation-1", 3, 42, "e-1", "MessageSizeTooLarge")
            # Like an orchestrator's failureThreshold: a probe that only timed out (this
            # machine was busy) is asked again, up to three times in all.
            for _ in range(3):
                answer = await client.get("/health/ready")
                problems = answer.json().get("problems", {})
                if answer.status_code == 200 or set(problems.values()) != {"TimeoutError"}:
                    break
                await asyncio.sleep(1)
            return (
                answer.status_code,
                answer.json(),
                REGISTRY.get_sample_value("kyosei_kafka_connected", {"service": SERVICE.name}),
            )
    finally:
        await runtime.stop()


async def test_ready_without_kafka_and_kafka_state_in_the_body(tmp_path: Path) -> None:
    status, body, connected = await ready(settings_for(tmp_path, ["127.0.0.1:9"]))
    assert status == 200, body
    assert body["status"] == "ready"
    assert body["kafka"] == "connecting"
    assert connected == 0
    assert body["relay"]["stuck"] == {
        "stream_id": "consultation-1",
        "version": 3,
        "position": 42,
        "event_id": "e-1",
        "error": "MessageSizeTooLarge",
    }


async def test_kafka_connected_is_reported(tmp_path: Path, kafka_bootstrap: list[str]) -> None:
    status, body, connected = await ready(settings_for(tmp_path, kafka_bootstrap))
    assert status == 200, body
    assert body["kafka"] == "connected"
    assert connected == 1
    assert body["relay"]["leader"] is True


async def test_not_ready_when_the_database_does_not_answer(tmp_path: Path) -> None:
    missing = f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/events.db"
    status, body, _ = await ready(settings_for(tmp_path, ["127.0.0.1:9"], missing))
    assert status == 503
    assert body["status"] == "not_ready"
    assert "database" in body["problems"]
    assert "kafka" not in body["problems"]
