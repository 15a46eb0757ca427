"""Optional OpenTelemetry tracing (``KYOSEI_OTEL_ENABLED``).

When enabled, the service's Kafka client carries FastStream's telemetry middleware (a
span for every message published and every batch consumed, the trace context in the
Kafka headers), the consumer a span for each message it processes, continuing the
producer's trace, and its HTTP app
FastAPI's instrumentation (a span per request, continuing a caller's ``traceparent``).
Spans go over OTLP (HTTP/protobuf) as the standard ``OTEL_*`` variables say
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER``…).

The SDK, the exporter and the FastAPI instrumentation are the extra
``kyosei-platform[otel]``; they are imported only when tracing is enabled, and a
missing one is a :class:`TracingUnavailable` that says what to install.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

INSTALL_HINT = (
    "KYOSEI_OTEL_ENABLED needs the OpenTelemetry SDK, its OTLP exporter and the FastAPI "
    "instrumentation: install kyosei-platform[otel] (opentelemetry-sdk, "
    "opentelemetry-exporter-otlp-proto-http, opentelemetry-instrumentation-fastapi)"
)
# Probes and scrapes are not worth a trace each.
EXCLUDED_URLS = "health/live,health/ready,metrics"


class TracingUnavailable(RuntimeError):
    """Tracing is enabled but the packages of ``kyosei-platform[otel]`` are missing."""


def span_exporter() -> Any:
    """Where spans go: OTLP over HTTP, configured by the ``OTEL_EXPORTER_OTLP_*`` variables."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise TracingUnavailable(f"{INSTALL_HINT} ({exc})") from exc
    return OTLPSpanExporter()


def tracer_provider(service: str, exporter: Any = None) -> Any:
    """The SDK tracer provider of ``service`` (``service.name`` kyosei-<service> unless
    ``OTEL_SERVICE_NAME`` says otherwise), batching spans to ``exporter`` (default
    :func:`span_exporter`)."""
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise TracingUnavailable(f"{INSTALL_HINT} ({exc})") from exc
    attributes = (
        {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": f"kyosei-{service}"}
    )
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter or span_exporter()))
    return provider


def kafka_middleware(provider: Any) -> Any:
    """FastStream's telemetry middleware for the service's broker."""
    from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

    return KafkaTelemetryMiddleware(tracer_provider=provider)


def instrument_app(app: FastAPI, provider: Any) -> None:
    """A span per HTTP request (probes and /metrics left out)."""
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError as exc:
        raise TracingUnavailable(f"{INSTALL_HINT} ({exc})") from exc
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS)


def shutdown(provider: Any) -> None:
    """Flush the spans still batched and stop the exporter."""
    provider.shutdown()
