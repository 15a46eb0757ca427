"""Chain verification: recompute each stream's hash chain and report the first broken link.

Works on any store through its public read API (``read_stream`` and ``stream_ids``),
so an auditor's tool needs nothing else. The chain itself is defined in codec.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .codec import GENESIS, link_hash
from .records import RecordedEvent


@dataclass(frozen=True)
class BrokenLink:
    """The first event of a stream whose stored hash does not match its content."""

    version: int
    position: int
    reason: str
    expected_hash: str
    stored_hash: str


@dataclass(frozen=True)
class ChainReport:
    stream_id: str
    events: int
    head_hash: str
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        return self.broken is None


class StreamReader(Protocol):
    """What verification reads: an EventStore, or anything with the same two reads."""

    async def read_stream(
        self, stream_id: str, after_version: int = 0
    ) -> Sequence[RecordedEvent]: ...

    async def stream_ids(self) -> list[str]:
        """Every stream id, in order."""
        ...


async def verify_stream(store: StreamReader, stream_id: str) -> ChainReport:
    """Recompute a stream's chain; report the first event whose link is broken."""
    prev, count, expected_version = GENESIS, 0, 1
    for rec in await store.read_stream(stream_id):
        count += 1
        broken: BrokenLink | None = None
        recomputed = link_hash(prev, rec.record())
        if rec.version != expected_version:
            broken = BrokenLink(
                rec.version,
                rec.position,
                f"version {expected_version} is missing",
                recomputed,
                rec.hash,
            )
        elif rec.prev_hash != prev:
            broken = BrokenLink(
                rec.version,
                rec.position,
                "prev_hash does not match the previous event",
                prev,
                rec.prev_hash,
            )
        elif recomputed != rec.hash:
            broken = BrokenLink(
                rec.version,
                rec.position,
                "content does not match its hash",
                recomputed,
                rec.hash,
            )
        if broken is not None:
            return ChainReport(stream_id, count, prev, broken)
        prev = rec.hash
        expected_version += 1
    return ChainReport(stream_id, count, prev, None)


async def verify_all(store: StreamReader) -> list[ChainReport]:
    """A report for every stream, in order of stream id."""
    return [await verify_stream(store, s) for s in await store.stream_ids()]
