"""The one Kafka client of a service process: a FastStream ``KafkaBroker``.

The outbox relay publishes the service's events through it, the idempotent consumer
runs the service's policies on its one subscriber and writes dead letters through it
(``kyosei_events.relay``, ``kyosei_events.consumer``). FastStream's Prometheus
middleware counts and times every message received and published on the registry
``/metrics`` serves; its log lines go to structlog.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from typing import Any

import structlog
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from prometheus_client import REGISTRY

from .settings import Settings

# The largest message the service's producer sends (aiokafka's max_request_size): the
# consumer cuts its dead-letter copies to fit it.
MAX_MESSAGE_BYTES = 1024 * 1024


def kafka_security(settings: Settings) -> BaseSecurity | None:
    """What ``KYOSEI_KAFKA_SECURITY_PROTOCOL`` and its companions ask for, as FastStream's
    security object (None: PLAINTEXT). TLS verifies the brokers against
    ``KYOSEI_KAFKA_SSL_CAFILE``, or the system's CAs."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    tls = protocol in ("SSL", "SASL_SSL")
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile) if tls else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    scram = SASLScram256 if settings.kafka_sasl_mechanism == "SCRAM-SHA-256" else SASLScram512
    assert settings.kafka_sasl_username and settings.kafka_sasl_password  # Settings checks
    return scram(
        settings.kafka_sasl_username,
        settings.kafka_sasl_password.get_secret_value(),
        ssl_context=context,
        use_ssl=tls,
    )


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """The same security as options of a plain aiokafka client (the admin client of
    ``kyosei topics``, the reader of ``kyosei dlq``): bootstrap servers included."""
    return {"bootstrap_servers": settings.kafka_bootstrap} | parse_security(
        kafka_security(settings)
    )


def kafka_broker(
    bootstrap: str | Sequence[str],
    *,
    service: str,
    security: BaseSecurity | None = None,
    tracer_provider: Any = None,
    linger_ms: int = 0,
) -> KafkaBroker:
    """The broker of ``service``; connect it with ``start()``. ``security``: see
    :func:`kafka_security`; ``linger_ms``: how long the producer waits to fill a
    request (``KYOSEI_KAFKA_LINGER_MS``). With ``tracer_provider`` (tracing.py),
    FastStream's telemetry middleware traces every message and carries the trace
    context in its headers."""
    middlewares: list[Any] = []
    if tracer_provider is not None:
        from .tracing import kafka_middleware

        middlewares.append(kafka_middleware(tracer_provider))
    middlewares.append(KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service))
    return KafkaBroker(
        bootstrap,
        client_id=f"kyosei-{service}",
        security=security,
        # The relay's guarantees (at least once, in order per key) rest on an
        # idempotent producer that waits for every in-sync replica.
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_request_size=MAX_MESSAGE_BYTES,
        # kyosei validates its own messages (the consumer's decoder): FastDepends
        # hands the decoded value to the handler as it is.
        serializer=None,
        middlewares=middlewares,
        logger=structlog.get_logger("faststream").bind(service=service),
        # FastStream logs every message received and processed at this level;
        # warnings and errors keep theirs.
        log_level=logging.DEBUG,
    )
