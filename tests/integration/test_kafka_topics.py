"""``kyosei topics``: every events and dead-letter topic of the installed services, with
partitions and retention from settings; idempotent.

The embedded broker (librdkafka's mock cluster) lists topics but does not offer the
CreateTopics API, so creation is checked against an admin client that records what it
is asked, and the embedded broker checks that existing topics are left and reported."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.admin import NewTopic

from kyosei_platform.kafka_topics import create_topics, declared_topics, ensure_topics
from kyosei_platform.service import discover
from kyosei_platform.settings import Settings


def settings(bootstrap: list[str] | None = None, **kw: Any) -> Settings:
    return Settings(
        database_url="sqlite+aiosqlite:///unused.db",
        keys_database_url="sqlite+aiosqlite:///unused-keys.db",
        kafka_bootstrap=bootstrap or ["127.0.0.1:9"],
        master_key="00" * 32,
        auth_secret="s" * 32,
        **kw,
    )


def test_the_installed_services_topics_with_partitions_and_retention_from_settings() -> None:
    specs = declared_topics(
        discover().values(),
        settings(topic_prefix="nabari.", topic_partitions=12, topic_dlq_retention_ms=86_400_000),
    )
    by_name = {s.name: s for s in specs}
    assert set(by_name) == {
        "nabari.kyosei.intake.events",
        "nabari.kyosei.intake.dlq",
        "nabari.kyosei.coordination.events",
        "nabari.kyosei.coordination.dlq",
        "nabari.kyosei.community.events",  # consumed by intake
        "nabari.kyosei.participation.events",  # consumed by coordination
    }
    assert {s.partitions for s in specs} == {12}
    assert by_name["nabari.kyosei.intake.events"].config == {"retention.ms": "-1"}
    assert by_name["nabari.kyosei.intake.dlq"].config == {"retention.ms": "86400000"}
    assert by_name["nabari.kyosei.community.events"].role == "consumed"
    assert by_name["nabari.kyosei.participation.events"].role == "consumed"
    defaults = settings()
    assert defaults.topic_partitions == 6
    assert defaults.topic_retention_ms == -1
    assert defaults.topic_dlq_retention_ms == 30 * 24 * 3600 * 1000


@dataclass
class RecordingAdmin:
    """An admin client on a cluster of ``brokers`` holding ``topics``."""

    topics: set[str]
    brokers: int = 1
    asked: list[NewTopic] = field(default_factory=list)

    async def list_topics(self) -> list[str]:
        return sorted(self.topics)

    async def describe_cluster(self) -> dict[str, Any]:
        return {"brokers": [{"node_id": i} for i in range(self.brokers)]}

    async def create_topics(self, new_topics: list[NewTopic]) -> Any:
        self.asked += new_topics
        self.topics |= {t.name for t in new_topics}

        return SimpleNamespace(topic_errors=[(t.name, 0, None) for t in new_topics])


async def test_missing_topics_are_created_and_existing_ones_left() -> None:
    specs = declared_topics(discover().values(), settings())
    admin = RecordingAdmin({"kyosei.intake.events"}, brokers=5)
    report = await ensure_topics(admin, specs)
    assert [s.name for s in report.existing] == ["kyosei.intake.events"]
    assert {s.name for s in report.created} == {s.name for s in specs} - {"kyosei.intake.events"}
    asked = {t.name: t for t in admin.asked}
    dlq = asked["kyosei.intake.dlq"]
    assert (dlq.num_partitions, dlq.replication_factor) == (6, 3)
    assert dlq.topic_configs == {"retention.ms": "2592000000"}
    assert asked["kyosei.coordination.events"].topic_configs == {"retention.ms": "-1"}

    # Idempotent: a second run creates nothing.
    again = await ensure_topics(admin, specs)
    assert again.created == [] and len(again.existing) == len(specs)
    assert len(admin.asked) == len(specs) - 1

    # One broker: one replica, unless set.
    small = RecordingAdmin(set(), brokers=1)
    await ensure_topics(small, specs[:1])
    assert small.asked[0].replication_factor == 1
    chosen = RecordingAdmin(set(), brokers=1)
    await ensure_topics(chosen, specs[:1], replication_factor=2)
    assert chosen.asked[0].replication_factor == 2


async def test_topics_that_exist_on_the_broker_are_reported_and_left(
    kafka_bootstrap: list[str], kafka_producer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    config = settings(kafka_bootstrap, topic_prefix=prefix)
    services = list(discover().values())
    for spec in declared_topics(services, config):
        await kafka_producer.send_and_wait(spec.name, b"x")
    assert await create_topics(services, config) == 0
    out = capsys.readouterr().out
    assert f"exists   {prefix}kyosei.intake.dlq (dead letters; left as it is)" in out
    assert "0 created, 6 already there" in out
