"""What /metrics says after the system has been driven: events appended and consumed
per type, the relay's publish latency and backlog, the consumer's lag per partition.
Real HTTP and the real Kafka protocol, on SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kyosei_events import consumer_group, events_topic
from kyosei_platform.auth import Role
from tests.conftest import PG_URL
from tests.e2e.harness import eventually, json_of, running_system

ESCALATED = {
    "window": "community_general_support_center",
    "channel": "phone",
    "concerns": ["care", "withdrawal"],
    "summary": "母82歳に認知症の疑い、息子54歳が20年ひきこもり",
    "complex": True,
}


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample /metrics serves, by name and labels."""
    async with httpx.AsyncClient(base_url=url) as anon:
        answer = await anon.get("/metrics")
    assert answer.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_metrics_after_a_consultation_crosses_the_broker(
    tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system("sqlite", tmp_path, PG_URL, kafka_bootstrap) as system:
        intake = system.services["intake"]
        coordination = system.services["coordination"]
        before = await scrape(intake.url)

        def appended(samples: dict[Any, float], event_type: str) -> float:
            name = "kyosei_events_appended_total"
            return value(samples, name, store="intake", event_type=event_type) or 0.0

        window = system.client("intake", "houkatsu-matsudo-1", "staff-ito", Role.STAFF)
        hid = json_of(
            await window.post(
                "/households", json={"members": [{"name": "松戸 ハル", "birth_date": "1944-04-01"}]}
            ),
            201,
        )["household_id"]
        json_of(await window.post("/consultations", json={**ESCALATED, "household_id": hid}), 201)

        # Intake: what was appended, by type; how long Kafka took to acknowledge it.
        after = await scrape(intake.url)
        for event_type in ("HouseholdRegistered", "ConsultationReceived", "CaseEscalated"):
            assert appended(after, event_type) - appended(before, event_type) >= 1, event_type

        async def published() -> dict[Any, float] | None:
            samples = await scrape(intake.url)
            count = value(samples, "kyosei_relay_publish_latency_seconds_count", store="intake")
            was = value(before, "kyosei_relay_publish_latency_seconds_count", store="intake")
            backlog = value(samples, "kyosei_relay_backlog", store="intake")
            return samples if (count or 0) - (was or 0) >= 3 and backlog == 0 else None

        samples = await eventually(published)
        total = value(samples, "kyosei_relay_publish_latency_seconds_sum", store="intake")
        assert total is not None and total > 0
        assert value(
            samples, "kyosei_relay_publish_latency_seconds_bucket", store="intake", le="+Inf"
        )

        # Coordination: what it consumed, by type and outcome; its lag per partition.
        group = consumer_group("coordination", system.topic_prefix)
        topic = events_topic("intake", system.topic_prefix)

        async def consumed() -> dict[Any, float] | None:
            samples = await scrape(coordination.url)
            processed = value(
                samples,
                "kyosei_consumer_events_total",
                consumer=group,
                event_type="CaseEscalated",
                outcome="processed",
            )
            lags = [
                v
                for (name, labels), v in samples.items()
                if name == "kyosei_consumer_lag"
                and ("consumer", group) in labels
                and ("topic", topic) in labels
            ]
            return samples if processed and lags and not any(lags) else None

        samples = await eventually(consumed)
        household = value(
            samples,
            "kyosei_consumer_events_total",
            consumer=group,
            event_type="HouseholdRegistered",
            outcome="processed",
        )
        assert household == 1

        # The relay held: its backlog grows by what is committed meanwhile.
        def appended_in_all(samples: dict[Any, float]) -> float:
            return sum(
                v
                for (name, labels), v in samples.items()
                if name == "kyosei_events_appended_total" and ("store", "intake") in labels
            )

        await intake.runtime.relay.stop()
        await intake.runtime.measure()
        held = await scrape(intake.url)
        json_of(
            await window.post(
                "/households", json={"members": [{"name": "松戸 一郎", "birth_date": "1970-01-01"}]}
            ),
            201,
        )
        await intake.runtime.measure()
        samples = await scrape(intake.url)
        grown = appended_in_all(samples) - appended_in_all(held)
        assert grown >= 1
        backlog = value(samples, "kyosei_relay_backlog", store="intake")
        assert backlog == (value(held, "kyosei_relay_backlog", store="intake") or 0) + grown
