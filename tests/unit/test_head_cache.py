"""The store's cache of stream heads stays within its size, whether heads come from
appends or from reads."""

from __future__ import annotations

from typing import Any, cast

import pytest

from kyosei_events.crypto import KeyVault
from kyosei_events.records import RecordedEvent
from kyosei_events.writer import StreamWriter


def recorded(stream_id: str, version: int) -> RecordedEvent:
    fields = {"stream_id": stream_id, "version": version, "hash": "h"}
    return cast(Any, type("Rec", (), fields | {"event_type": "E", "partition_key": stream_id}))


def writer(size: int) -> StreamWriter:
    return StreamWriter(cast(KeyVault, None), "sqlite", head_cache_size=size)


def test_appended_and_read_heads_stay_within_the_size() -> None:
    w = writer(3)
    for n in range(10):
        w.committed([recorded(f"s-{n}", 1)])
        assert w.cached_heads() <= 3
    for n in range(10, 20):  # a process that only reads
        w.remember_head(f"s-{n}", 1, "h", f"s-{n}")
        assert w.cached_heads() <= 3
    # the most recently used stay
    w.committed([recorded("s-17", 2)])
    assert list(w._heads) == ["s-18", "s-19", "s-17"]


def test_size_zero_keeps_nothing() -> None:
    w = writer(0)
    w.committed([recorded("s-1", 1)])
    w.remember_head("s-2", 1, "h", "s-2")
    assert w.cached_heads() == 0
    with pytest.raises(ValueError):
        writer(-1)
