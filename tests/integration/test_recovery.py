"""Recovery commands over the embedded broker: a dead letter replayed once its cause is
fixed is really processed again; events republished from a log position reach the
topic again as they were, and the relay's checkpoint stays where it was."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from kyosei_events import (
    EventStore,
    IdempotentConsumer,
    KeyVault,
    LogCursor,
    PolicyContext,
    Unprocessable,
    consumer_group,
    dead_letter_topic,
    events_topic,
    policy,
)
from kyosei_events.catalogue.intake import ConsultationReceived
from kyosei_platform import recovery
from kyosei_platform.bus import kafka_broker
from kyosei_platform.cli import main
from kyosei_platform.settings import Settings
from tests.backbone_support import case_opened, consultation, header, new, outcomes, read_topic
from tests.conftest import MASTER_KEY, sqlite_store

SOURCE = "/kyosei/intake"


def settings_for(tmp_path: Path, store: str, bootstrap: list[str], prefix: str) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / store}.db",
        keys_database_url=f"sqlite+aiosqlite:///{tmp_path / 'keys'}.db",
        kafka_bootstrap=bootstrap,
        master_key=MASTER_KEY.hex(),
        auth_secret="s" * 32,
        topic_prefix=prefix,
    )


async def until(check: Any, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_a_dead_letter_replayed_after_its_cause_is_fixed_is_processed(
    tmp_path: Path,
    vault: KeyVault,
    source: EventStore,
    kafka_bootstrap: list[str],
    kafka_producer: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    group = consumer_group("coordination", prefix)
    intake_topic = events_topic("intake", prefix)
    settings = settings_for(tmp_path, "coordination", kafka_bootstrap, prefix)
    offices: set[str] = set()  # the cause: no coordination office configured yet
    handled: list[str] = []

    async def open_case(e: ConsultationReceived, ctx: PolicyContext) -> None:
        if e.agency_id not in offices:
            raise Unprocessable(f"no coordination office for {e.agency_id}")
        handled.append(e.consultation_id)

    (rec,) = await source.append("consultation-1", [new(consultation("hh-1"))], 0)
    async with sqlite_store(tmp_path, vault, "coordination") as store:
        broker = kafka_broker(kafka_bootstrap, service="coordination")
        consumer = IdempotentConsumer(
            group,
            store,
            [policy(ConsultationReceived)(open_case)],
            broker,
            dead_letter_topic=dead_letter_topic("coordination", prefix),
        )
        consumer.subscribe(intake_topic)
        await broker.start()
        try:
            await kafka_producer.send_and_wait(
                intake_topic,
                value=rec.payload.encode(),
                key=b"hh-1",
                headers=rec.envelope(SOURCE).to_headers(),
            )
            await until(lambda: outcomes(group).get("dead_lettered") == 1)

            assert await recovery.list_dead_letters("coordination", settings) == 0
            out = capsys.readouterr().out
            assert f"from {intake_topic}/" in out
            assert "jp.kyosei.ConsultationReceived" in out
            assert rec.event_id in out
            assert "no coordination office for agency-a" in out
            assert "1 dead letters" in out
            assert "summary" not in out and "kyosei-enc" not in out  # no payload

            offices.add("agency-a")  # the cause is fixed
            assert await recovery.replay("coordination", settings, offsets=["0"]) == 0
            await until(lambda: outcomes(group).get("processed") == 1)
        finally:
            await broker.stop()
    assert handled == [json.loads(rec.payload)["consultation_id"]]
    assert outcomes(group) == {"processed": 1, "dead_lettered": 1}
    # The replayed message is the original, without the dead-letter headers.
    records = await read_topic(kafka_bootstrap, intake_topic, expect_at_least=2)
    first, again = records
    assert again.value == first.value and again.key == first.key
    assert header(again, "ce_hash") == rec.hash
    assert not [k for k, _ in again.headers if k.startswith("dlq_")]
    with pytest.raises(SystemExit):
        await recovery.replay("coordination", settings, offsets=["7"])


async def test_republish_sends_events_from_a_position_again_without_moving_the_relay(
    tmp_path: Path, vault: KeyVault, source: EventStore, kafka_bootstrap: list[str]
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = settings_for(tmp_path, "intake", kafka_bootstrap, prefix)
    recorded = [
        (await source.append(f"case-{i}", [new(case_opened(f"hh-{i}"))], 0))[0] for i in range(4)
    ]
    relayed = LogCursor(recorded[-1].tx_id, recorded[-1].position)
    await source.save_checkpoint("relay", relayed)

    assert await recovery.republish("intake", settings, from_position=recorded[1].position) == 0

    topic = events_topic("intake", prefix)
    records = await read_topic(kafka_bootstrap, topic, expect_at_least=3)
    assert sorted(header(r, "ce_id") or "" for r in records) == sorted(
        r.event_id for r in recorded[1:]
    )
    by_id = {header(r, "ce_id"): r for r in records}
    for rec in recorded[1:]:
        message = by_id[rec.event_id]
        assert message.value == rec.payload.encode()
        assert message.key == rec.subject.encode()
        sent = {k: v.decode() for k, v in message.headers}
        assert sent.items() >= rec.envelope(SOURCE).header_map().items()
    assert await source.checkpoint("relay") == relayed


def test_the_cli_names_the_recovery_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dlq", "replay", "intake"])  # --offset or --all is required
    assert "--offset" in capsys.readouterr().err


def test_an_offset_on_several_partitions_must_name_its_partition() -> None:
    letters = [recovery.DeadLetter(p, 3, 0, None, b"x", ()) for p in (0, 1)]
    with pytest.raises(SystemExit, match="PARTITION:3"):
        recovery._chosen(letters, ["3"])
    assert recovery._chosen(letters, ["1:3"]) == [letters[1]]
    with pytest.raises(SystemExit, match="no dead letter"):
        recovery._chosen(letters, ["2:3"])
