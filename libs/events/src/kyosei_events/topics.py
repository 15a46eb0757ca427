"""Topic names. One event topic per producing service; one dead-letter topic per consumer."""

from __future__ import annotations


def events_topic(service: str) -> str:
    """The topic a service's relay publishes its events to."""
    return f"kyosei.{service}.events"


def dead_letter_topic(consumer: str) -> str:
    """Where a consumer puts messages it can never process, with the reason."""
    return f"kyosei.{consumer}.dlq"
