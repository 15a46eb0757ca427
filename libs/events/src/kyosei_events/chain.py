"""Per-stream SHA-256 hash chains.

hash(n) = SHA-256(bytes(hash(n-1)) || canonical bytes of event n's record), with
hash(0) = 32 zero bytes. The record holds everything that makes the event what it
is (stream, version, id, type, schema version, time, subject, metadata and the
stored payload text, ciphertext included), so any edit of a stored event, or a
removed or reordered one, breaks the chain from that event on. Because the hash is
over the ciphertext, erasing a household key leaves the chain verifiable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .canonical import canonical_bytes

GENESIS = "0" * 64


def record_of(
    *,
    stream_id: str,
    version: int,
    event_id: str,
    event_type: str,
    schema_version: int,
    recorded_at: str,
    subject: str,
    metadata: str,
    payload: str,
) -> dict[str, Any]:
    return {
        "stream_id": stream_id,
        "version": version,
        "event_id": event_id,
        "type": event_type,
        "schema_version": schema_version,
        "time": recorded_at,
        "subject": subject,
        "metadata": metadata,
        "payload": payload,
    }


def link_hash(prev_hash: str, record: dict[str, Any]) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_bytes(record)).hexdigest()


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
