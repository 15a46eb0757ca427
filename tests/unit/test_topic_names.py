"""One rule for every topic and consumer group name, the prefix first:
``<prefix>kyosei.<service>.events``, ``<prefix>kyosei.<service>.dlq`` and the group
``<prefix>kyosei-<service>``; the runtime names everything by it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyosei_events.topics import consumer_group, dead_letter_topic, events_topic
from kyosei_platform.runtime import ServiceRuntime
from kyosei_platform.service import discover
from kyosei_platform.settings import Settings


def test_names_without_a_prefix() -> None:
    assert events_topic("intake") == "kyosei.intake.events"
    assert dead_letter_topic("intake") == "kyosei.intake.dlq"
    assert consumer_group("intake") == "kyosei-intake"


def test_names_with_a_prefix_put_it_first() -> None:
    assert events_topic("intake", "nabari.") == "nabari.kyosei.intake.events"
    assert dead_letter_topic("intake", "nabari.") == "nabari.kyosei.intake.dlq"
    assert consumer_group("intake", "nabari.") == "nabari.kyosei-intake"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (
            "",
            {
                "topic": "kyosei.intake.events",
                "group": "kyosei-intake",
                "dlq": "kyosei.intake.dlq",
                "consumes": ["kyosei.community.events", "kyosei.coordination.events"],
            },
        ),
        (
            "nabari.",
            {
                "topic": "nabari.kyosei.intake.events",
                "group": "nabari.kyosei-intake",
                "dlq": "nabari.kyosei.intake.dlq",
                "consumes": ["nabari.kyosei.community.events", "nabari.kyosei.coordination.events"],
            },
        ),
    ],
    ids=["no-prefix", "prefix"],
)
async def test_the_runtime_names_topics_and_groups_by_the_rule(
    tmp_path: Path, prefix: str, expected: dict[str, object]
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'svc'}.db",
        keys_database_url=f"sqlite+aiosqlite:///{tmp_path / 'keys'}.db",
        kafka_bootstrap=["127.0.0.1:9"],
        master_key="ab" * 32,
        auth_secret="x" * 32,
        topic_prefix=prefix,
    )
    runtime = ServiceRuntime(discover()["intake"], settings)
    try:
        assert runtime.consumer is not None
        assert {
            "topic": runtime.topic,
            "group": runtime.consumer.name,
            "dlq": runtime.consumer.dead_letter_topic,
            "consumes": runtime.consumed_topics,
        } == expected
    finally:
        await runtime.stop()
