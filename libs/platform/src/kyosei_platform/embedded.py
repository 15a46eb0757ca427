"""The embedded Kafka-protocol broker: librdkafka's mock cluster from confluent-kafka.

A real broker over TCP speaking the Kafka protocol (produce, consume, consumer
groups, commits, idempotent producers), in this process; topics are created on
first use. It keeps nothing on disk: the event stores stay the source of truth, and
the relays republish from their checkpoints when it restarts.
"""

from __future__ import annotations

from confluent_kafka import Producer


class EmbeddedKafka:
    def __init__(self, brokers: int = 1) -> None:
        # log_level 4 hides librdkafka's notice that the mock cluster replaced
        # bootstrap.servers, which is the point here.
        self._client = Producer({"test.mock.num.brokers": brokers, "log_level": 4})
        metadata = self._client.list_topics(timeout=10)
        self.bootstrap = sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values())
        if not self.bootstrap:
            raise RuntimeError("the embedded Kafka broker did not report any broker address")

    def close(self) -> None:
        self._client.flush(1)
        del self._client
