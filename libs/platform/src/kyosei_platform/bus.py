"""The one Kafka client of a service process: a FastStream ``KafkaBroker``.

The outbox relay publishes the service's events through it, the idempotent consumer
runs the service's policies on its one subscriber and writes dead letters through it
(``kyosei_events.relay``, ``kyosei_events.consumer``). FastStream's Prometheus
middleware counts and times every message received and published on the registry
``/metrics`` serves; its log lines go to structlog.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import structlog
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

# The largest message the service's producer sends (aiokafka's max_request_size): the
# consumer cuts its dead-letter copies to fit it.
MAX_MESSAGE_BYTES = 1024 * 1024


def kafka_broker(bootstrap: str | Sequence[str], *, service: str) -> KafkaBroker:
    """The broker of ``service``; connect it with ``start()``."""
    return KafkaBroker(
        bootstrap,
        client_id=f"kyosei-{service}",
        # The relay's guarantees (at least once, in order per key) rest on an
        # idempotent producer that waits for every in-sync replica.
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        max_request_size=MAX_MESSAGE_BYTES,
        # kyosei validates its own messages (the consumer's decoder): FastDepends
        # hands the decoded value to the handler as it is.
        serializer=None,
        middlewares=[KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service)],
        logger=structlog.get_logger("faststream").bind(service=service),
        # FastStream logs every message received and processed at this level;
        # warnings and errors keep theirs.
        log_level=logging.DEBUG,
    )
