"""The embedded Kafka-protocol broker: librdkafka's mock cluster from confluent-kafka.

A real broker over TCP speaking the Kafka protocol (produce, consume, consumer
groups, commits, idempotent producers), in this process; topics are created on
first use. It keeps nothing on disk: the event stores stay the source of truth, and
the relays republish from their checkpoints when it restarts.

Like a development broker set up with ``group.initial.rebalance.delay.ms=0``, a new
consumer group gets its partitions at once instead of after the 3 s a production
broker waits for more members (so ``kyosei dev`` and each test's services start that
much sooner). The mock cluster's own C call sets it; where the bundled librdkafka does
not have it, the broker starts with the usual 3 s delay.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Any

import confluent_kafka
from confluent_kafka import Producer

log = logging.getLogger(__name__)


def _librdkafka() -> Any | None:
    """The librdkafka that confluent-kafka bundles (the one its extension uses)."""
    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    for candidate in sorted(libs.glob("librdkafka*.so*")):
        try:
            lib = ctypes.CDLL(str(candidate))
        except OSError:
            continue
        needed = (
            "rd_kafka_mock_cluster_new",
            "rd_kafka_mock_cluster_bootstraps",
            "rd_kafka_mock_cluster_destroy",
            "rd_kafka_mock_group_initial_rebalance_delay_ms",
        )
        if all(hasattr(lib, name) for name in needed):
            return lib
    return None


class _MockCluster:
    """A mock cluster made through librdkafka's C API, so it can be configured."""

    def __init__(self, lib: Any, brokers: int, initial_rebalance_delay_ms: int) -> None:
        lib.rd_kafka_conf_new.restype = ctypes.c_void_p
        lib.rd_kafka_conf_set.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
        ]
        lib.rd_kafka_new.restype = ctypes.c_void_p
        lib.rd_kafka_new.argtypes = [
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
        ]
        lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
        lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
        lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_mock_cluster_destroy.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_mock_group_initial_rebalance_delay_ms.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int32,
        ]
        self._lib = lib
        errstr = ctypes.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        # The handle only owns the cluster; it never connects anywhere, and says so
        # (no bootstrap.servers) at a level below errors.
        lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, len(errstr))
        self._rk = lib.rd_kafka_new(0, conf, errstr, len(errstr))  # RD_KAFKA_PRODUCER
        if not self._rk:
            raise RuntimeError(f"librdkafka: {errstr.value.decode(errors='replace')}")
        self._cluster = lib.rd_kafka_mock_cluster_new(self._rk, brokers)
        if not self._cluster:
            lib.rd_kafka_destroy(self._rk)
            raise RuntimeError("librdkafka could not start its mock cluster")
        lib.rd_kafka_mock_group_initial_rebalance_delay_ms(
            self._cluster, initial_rebalance_delay_ms
        )
        self.bootstrap = sorted(
            lib.rd_kafka_mock_cluster_bootstraps(self._cluster).decode().split(",")
        )

    def close(self) -> None:
        if self._cluster:
            self._lib.rd_kafka_mock_cluster_destroy(self._cluster)
            self._cluster = None
        if self._rk:
            self._lib.rd_kafka_destroy(self._rk)
            self._rk = None


class EmbeddedKafka:
    def __init__(self, brokers: int = 1, *, initial_rebalance_delay_ms: int = 0) -> None:
        self._cluster: _MockCluster | None = None
        self._client: Producer | None = None
        lib = _librdkafka()
        if lib is not None:
            self._cluster = _MockCluster(lib, brokers, initial_rebalance_delay_ms)
            self.bootstrap = self._cluster.bootstrap
            return
        log.info("embedded Kafka: librdkafka's mock API not found; consumer groups wait 3 s")
        # log_level 4 hides librdkafka's notice that the mock cluster replaced
        # bootstrap.servers, which is the point here.
        self._client = Producer({"test.mock.num.brokers": brokers, "log_level": 4})
        metadata = self._client.list_topics(timeout=10)
        self.bootstrap = sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values())
        if not self.bootstrap:
            raise RuntimeError("the embedded Kafka broker did not report any broker address")

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
        if self._client is not None:
            self._client.flush(1)
            self._client = None
