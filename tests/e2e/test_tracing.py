"""OpenTelemetry tracing (KYOSEI_OTEL_ENABLED): a span per HTTP request, continuing
the caller's traceparent, and per Kafka message, the consumer's span in the trace the
relay's publish started (the context travels in the Kafka headers). Spans are caught
by the SDK's in-memory exporter; skipped when kyosei-platform[otel] is not installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kyosei_events.catalogue.intake import CaseEscalated
from kyosei_platform import tracing
from kyosei_platform.auth import Role
from tests.conftest import PG_URL
from tests.e2e.harness import eventually, json_of, running_system

try:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"kyosei-platform[otel] is not installed: {exc}", allow_module_level=True)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
ESCALATED = {
    "window": "community_general_support_center",
    "channel": "phone",
    "concerns": ["care"],
    "summary": "母82歳に認知症の疑い",
    "complex": True,
}


async def test_requests_and_messages_are_traced(
    tmp_path: Path, kafka_bootstrap: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    monkeypatch.setattr(tracing, "span_exporter", lambda: exporter)
    async with running_system(
        "sqlite", tmp_path, PG_URL, kafka_bootstrap, otel_enabled=True
    ) as system:
        window = system.client("intake", "houkatsu-matsudo-1", "staff-ito", Role.STAFF)
        coordinator = system.client("coordination", "matsudo-city", "coord-abe", Role.COORDINATOR)
        created = json_of(
            await window.post(
                "/consultations", json=ESCALATED, headers={"traceparent": TRACEPARENT}
            ),
            201,
        )

        async def case() -> Any:
            params = {"consultation_id": created["consultation_id"]}
            return json_of(await coordinator.get("/cases", params=params), 200) or None

        await eventually(case)
        assert (await window.get("/health/live")).status_code == 200

        def spans() -> list[Any]:
            for service in system.services.values():
                service.runtime.tracer_provider.force_flush()
            return list(exporter.get_finished_spans())

        intake_events = f"{system.topic_prefix}kyosei.intake.events"

        async def consumed() -> list[Any] | None:
            found = spans()
            return found if any(_consumed_from(s, intake_events) for s in found) else None

        found = await eventually(consumed)

    by_service = {
        name: [s for s in found if s.resource.attributes["service.name"] == f"kyosei-{name}"]
        for name in ("intake", "coordination")
    }
    # The request continued the caller's trace.
    server = [s for s in by_service["intake"] if s.kind is SpanKind.SERVER]
    assert any(format(s.context.trace_id, "032x") == TRACE_ID for s in server)
    assert not any("/health" in s.name for s in server)
    # The relay's publish and the consumer's processing of each message are one trace;
    # the consumer's span of the batch a fetch brought links to the messages' spans.
    published = {
        s.context.trace_id
        for s in by_service["intake"]
        if s.kind is SpanKind.PRODUCER and intake_events in s.name
    }
    consumed = [s for s in by_service["coordination"] if _consumed_from(s, intake_events)]
    processed = {s.context.trace_id for s in consumed if "cloudevents.event_id" in s.attributes}
    assert published and processed
    assert processed <= published
    escalated = [
        s
        for s in consumed
        if s.attributes.get("cloudevents.event_type") == CaseEscalated.event_type
    ]
    assert escalated and all(s.context.trace_id in published for s in escalated)
    linked = {link.context.trace_id for s in consumed for link in s.links}
    assert linked and linked <= published


def _consumed_from(span: Any, topic: str) -> bool:
    return span.kind is SpanKind.CONSUMER and topic in span.name
