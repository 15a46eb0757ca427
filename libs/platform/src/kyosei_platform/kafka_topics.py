"""``kyosei topics``: the topics of the installed services, declared rather than left to
the broker's auto-creation.

For each service: its events topic (``retention.ms`` from ``KYOSEI_TOPIC_RETENTION_MS``,
for ever by default), its dead-letter topic when it has policies
(``KYOSEI_TOPIC_DLQ_RETENTION_MS``, 30 days by default) and the events topics its
policies consume (so that its consumer group finds them, whoever produces them), each
with ``KYOSEI_TOPIC_PARTITIONS`` partitions and ``KYOSEI_TOPIC_REPLICATION_FACTOR``
replicas. A topic that exists already is left as it is and reported. Compose runs it as
a one-shot step before each service, Kubernetes as a Job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from kyosei_events import dead_letter_topic, events_topic

from .bus import kafka_client_options
from .service import Service
from .settings import Settings

# CreateTopics' TOPIC_ALREADY_EXISTS: another run created it in the meantime.
_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicSpec:
    name: str
    role: str  # "events", "dead letters", "consumed"
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


def declared_topics(services: Iterable[Service], settings: Settings) -> list[TopicSpec]:
    """The topics ``services`` need, once each, in a stable order."""
    prefix = settings.topic_prefix
    events_config = {"retention.ms": str(settings.topic_retention_ms)}
    dlq_config = {"retention.ms": str(settings.topic_dlq_retention_ms)}
    found: dict[str, TopicSpec] = {}
    consumed: list[str] = []
    for svc in services:
        own = events_topic(svc.name, prefix)
        found[own] = TopicSpec(own, "events", settings.topic_partitions, events_config)
        if svc.policies:
            dlq = dead_letter_topic(svc.name, prefix)
            found[dlq] = TopicSpec(dlq, "dead letters", settings.topic_partitions, dlq_config)
        consumed += [events_topic(p.event_type.producer, prefix) for p in svc.policies]
    for name in sorted(set(consumed)):
        found.setdefault(
            name, TopicSpec(name, "consumed", settings.topic_partitions, events_config)
        )
    return list(found.values())


class Admin(Protocol):
    """What ``ensure_topics`` needs of a Kafka admin client (aiokafka's)."""

    async def list_topics(self) -> list[str]: ...

    async def describe_cluster(self) -> dict[str, Any]: ...

    async def create_topics(self, new_topics: list[NewTopic]) -> Any: ...


@dataclass
class TopicReport:
    created: list[TopicSpec] = field(default_factory=list)
    existing: list[TopicSpec] = field(default_factory=list)


async def ensure_topics(
    admin: Admin, specs: Sequence[TopicSpec], replication_factor: int | None = None
) -> TopicReport:
    """Create the topics of ``specs`` that do not exist; leave the others."""
    report = TopicReport()
    present = set(await admin.list_topics())
    missing = [s for s in specs if s.name not in present]
    report.existing = [s for s in specs if s.name in present]
    if not missing:
        return report
    if replication_factor is None:
        brokers = len((await admin.describe_cluster()).get("brokers") or ()) or 1
        replication_factor = min(3, brokers)
    response = await admin.create_topics(
        [
            NewTopic(s.name, s.partitions, replication_factor, topic_configs=dict(s.config))
            for s in missing
        ]
    )
    errors = {e[0]: (e[1], e[2] if len(e) > 2 else None) for e in response.topic_errors}
    problems = []
    for spec in missing:
        code, message = errors.get(spec.name, (0, None))
        if code == 0:
            report.created.append(spec)
        elif code == _ALREADY_EXISTS:
            report.existing.append(spec)
        else:
            problems.append(f"{spec.name}: {for_code(code).__name__} {message or ''}".strip())
    if problems:
        raise RuntimeError("could not create topics: " + "; ".join(problems))
    return report


async def create_topics(services: Sequence[Service], settings: Settings) -> int:
    """``kyosei topics``: print what was created and what existed; exit status 0."""
    specs = declared_topics(services, settings)
    admin = AIOKafkaAdminClient(
        client_id="kyosei-topics",
        **kafka_client_options(settings),
    )
    await admin.start()
    try:
        report = await ensure_topics(admin, specs, settings.topic_replication_factor)
    finally:
        await admin.close()
    for spec in report.created:
        print(f"created  {spec.name} ({spec.role}, {spec.partitions} partitions, {_config(spec)})")
    for spec in report.existing:
        print(f"exists   {spec.name} ({spec.role}; left as it is)")
    print(f"{len(report.created)} created, {len(report.existing)} already there")
    return 0


def _config(spec: TopicSpec) -> str:
    return ", ".join(f"{k}={v}" for k, v in spec.config.items())
