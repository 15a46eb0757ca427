"""An event too large to publish never enters the outbox; a request body over the
limit is refused before it is parsed; and a relay that meets an event it cannot
publish says so (log, metric, /health/ready) instead of retrying silently."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import APIRouter, Request
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY

from kyosei_events import START, EventStore, EventTooLarge, OutboxRelay
from kyosei_platform.http import create_app
from kyosei_platform.service import Service
from kyosei_platform.settings import Settings
from tests.backbone_support import case_opened, consultation, new, read_topic, settled

SOURCE = "/kyosei/test"


def oversized(household: str, chars: int) -> Any:
    """A consultation whose summary is ``chars`` long, past the API's own field limit
    (as a bug, a migration or another writer might produce one)."""
    return consultation(household).model_copy(update={"summary": "相" * chars})


async def test_the_store_refuses_an_event_too_large_to_publish(store: EventStore) -> None:
    limited = EventStore(store.engine, store.vault, name=store.name, max_message_bytes=20_000)
    await limited.append("case-hh-1", [new(case_opened("hh-1"))])
    with pytest.raises(EventTooLarge) as refused:
        await limited.append("consultation-hh-2", [new(oversized("hh-2", 10_000))])
    assert refused.value.size > refused.value.limit == 20_000
    assert "consultation-hh-2" in str(refused.value)
    await settled(store)
    assert [r.stream_id for r in await store.read_log(START)] == ["case-hh-1"]


async def test_by_default_the_limit_is_kafkas_default_message_size(store: EventStore) -> None:
    assert Settings.model_fields["max_message_bytes"].default == 1_000_000
    assert store.max_message_bytes == 1_000_000
    with pytest.raises(EventTooLarge):
        await store.append("consultation-hh-3", [new(oversized("hh-3", 400_000))])


async def test_what_the_store_accepts_fits_the_limit_on_the_wire(
    store: EventStore, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    limit = 40_000
    limited = EventStore(store.engine, store.vault, name=store.name, max_message_bytes=limit)
    chars = 1_000
    while True:  # the largest summary the store accepts
        try:
            await limited.append(f"consultation-{chars}", [new(oversized("hh-4", chars))])
        except EventTooLarge:
            break
        chars += 500
    await settled(store)
    relay = OutboxRelay(limited, kafka_broker, topic=topic, source=SOURCE)
    await relay.publish_pending()
    records = await read_topic(kafka_bootstrap, topic)
    assert records
    largest = max(
        len(r.value) + len(r.key) + sum(len(k) + len(v) for k, v in r.headers) for r in records
    )
    assert limit * 0.9 < largest <= limit


# -- the HTTP layer ----------------------------------------------------------------------

router = APIRouter()


@router.post("/notes/{household}")
async def record(household: str, request: Request) -> dict[str, int]:
    body = await request.body()
    runtime = request.app.state.runtime
    await runtime.store.append(f"note-{household}", [new(oversized(household, len(body)))])
    return {"bytes": len(body)}


SERVICE = Service(
    name="sizes",
    title="sizes",
    description="test",
    router=router,
    migrations=Path("."),
    order=99,
)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/sizes.db",
        keys_database_url=f"sqlite+aiosqlite:///{tmp_path}/keys.db",
        kafka_bootstrap=["127.0.0.1:9"],
        master_key="22" * 32,
        auth_secret="s" * 32,
        max_message_bytes=30_000,
        max_request_bytes=50_000,
    )
    app = create_app(SERVICE, settings)
    runtime = app.state.runtime
    await runtime.store.create_tables()
    await runtime.vault.create_tables()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        yield c
    await runtime.engine.dispose()
    await runtime.keys_engine.dispose()


async def test_an_event_too_large_answers_413_in_the_error_envelope(
    client: httpx.AsyncClient,
) -> None:
    ok = await client.post("/notes/hh-1", content=b"x" * 1_000)
    assert ok.status_code == 200, ok.text
    refused = await client.post("/notes/hh-1", content=b"x" * 20_000)
    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert error["code"] == "event_too_large"
    assert error["message"] and error["message_ja"]


async def test_a_request_body_over_the_limit_is_refused_before_parsing(
    client: httpx.AsyncClient,
) -> None:
    refused = await client.post("/notes/hh-1", content=b"x" * 50_001)
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["code"] == "request_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted as it comes
        for _ in range(60):
            yield b"x" * 1_000

    refused = await client.post("/notes/hh-1", content=chunks())
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["code"] == "request_too_large"


# -- the relay -----------------------------------------------------------------------


async def test_a_relay_that_cannot_publish_an_event_says_so(
    store: EventStore, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    # A store without the limit (as one written before it existed): the Kafka client
    # refuses the message (MessageSizeTooLargeError), whatever the relay does.
    unlimited = EventStore(store.engine, store.vault, name=store.name, max_message_bytes=None)
    (first,) = await unlimited.append("case-hh-1", [new(case_opened("hh-1"))])
    (big,) = await unlimited.append("consultation-hh-2", [new(oversized("hh-2", 400_000))])
    (after,) = await unlimited.append("case-hh-3", [new(case_opened("hh-3"))])
    await settled(store)
    relay = OutboxRelay(unlimited, kafka_broker, topic=topic, source=SOURCE, poll_interval=0.1)
    with structlog.testing.capture_logs() as logs:
        relay.start()
        try:
            deadline = time.monotonic() + 15
            while relay.stuck is None:
                assert time.monotonic() < deadline, "the relay never reported it"
                await asyncio.sleep(0.02)
        finally:
            await relay.stop()
    stuck = relay.stuck
    assert (stuck.stream_id, stuck.version, stuck.position) == (
        "consultation-hh-2",
        1,
        big.position,
    )
    assert "MessageSizeTooLarge" in stuck.error
    assert REGISTRY.get_sample_value("kyosei_relay_stuck", {"store": store.name}) == 1
    errors = [e for e in logs if e["log_level"] == "error" and e["event"] == "relay_stuck"]
    assert errors and errors[0]["stream_id"] == "consultation-hh-2"
    assert errors[0]["version"] == 1 and errors[0]["position"] == big.position
    # In order: what came before went out, nothing after it was skipped ahead.
    records = await read_topic(kafka_bootstrap, topic, wait=1)
    assert [dict(r.headers)["ce_id"].decode() for r in records] == [first.event_id]
    assert await store.checkpoint(relay.name) == first.cursor
    assert after.position > big.position


async def test_a_broker_that_is_away_is_not_reported_as_stuck(
    store: EventStore, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    from tests.integration.test_relay import FailingBroker

    appended = [
        *await store.append("case-hh-1", [new(case_opened("hh-1"))]),
        *await store.append("case-hh-2", [new(case_opened("hh-2"))]),
    ]
    await settled(store)
    failing = FailingBroker(kafka_broker, ok=1, failures=3)
    relay = OutboxRelay(store, failing, topic=topic, source=SOURCE, poll_interval=0.1)  # type: ignore[arg-type]
    relay.start()
    try:
        deadline = time.monotonic() + 15
        while await store.checkpoint(relay.name) < appended[-1].cursor:
            assert relay.stuck is None
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        await relay.stop()
    assert relay.stuck is None
    assert REGISTRY.get_sample_value("kyosei_relay_stuck", {"store": store.name}) == 0
