"""Topic and consumer group names: one rule for every name, the prefix first.

With ``KYOSEI_TOPIC_PREFIX`` (``prefix``, e.g. ``nabari.`` when several
municipalities share one Kafka cluster) in front of each:

- ``<prefix>kyosei.<service>.events``: the topic a service's relay publishes to;
- ``<prefix>kyosei.<service>.dlq``: where a service's consumer puts messages it can
  never process;
- ``<prefix>kyosei-<service>``: the service's consumer group.
"""

from __future__ import annotations


def events_topic(service: str, prefix: str = "") -> str:
    """The topic a service's relay publishes its events to."""
    return f"{prefix}kyosei.{service}.events"


def dead_letter_topic(service: str, prefix: str = "") -> str:
    """Where a service's consumer puts messages it can never process, with the reason."""
    return f"{prefix}kyosei.{service}.dlq"


def consumer_group(service: str, prefix: str = "") -> str:
    """The consumer group of a service's policies (and the name it records processed
    messages under)."""
    return f"{prefix}kyosei-{service}"
