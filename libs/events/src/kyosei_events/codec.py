"""How a stored event is hashed and read back.

The chain record. Every stream is a SHA-256 hash chain:
hash(n) = SHA-256(bytes(hash(n-1)) || canonical bytes of event n's record), with
hash(0) = :data:`GENESIS` (32 zero bytes). The record holds everything that makes the
event what it is (stream, version, id, type, schema version, time, subject, metadata
and the stored payload text, ciphertext included), so an edit of a stored event, or a
removed or reordered one with events after it, breaks the chain from that event on. The
chain cannot show a removed last event or stream, or a stream rewritten with every hash
recomputed: signed anchors (anchors.py) do, up to the latest anchor. Because the hash is
over the ciphertext, erasing a household key leaves the chain verifiable.

:func:`record_of` is the only place that record is built: the store's append, a
:class:`~kyosei_events.records.RecordedEvent` and an
:class:`~kyosei_events.envelope.Envelope` (a consumer's check) all call it, and
:func:`metadata_of` is the only place the metadata inside it is built, so the three
cannot drift apart.

Decoding. :func:`decode_payload` opens the sealed personal fields, upcasts the payload
to the latest schema version and validates it as its event type (shared by the store
and by consumers).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Protocol

from pydantic import TypeAdapter, ValidationError

from .canonical import canonical_bytes
from .crypto import KeyVault
from .model import DomainEvent, event_class, upcast

GENESIS = "0" * 64


class CorruptEvent(Exception):
    """A stored event that cannot be decoded as its declared type."""


# -- the chain record -------------------------------------------------------------------


class HasMetadata(Protocol):
    """Anything that carries an event's metadata (Metadata, Envelope)."""

    @property
    def correlation_id(self) -> str | None: ...
    @property
    def causation_id(self) -> str | None: ...
    @property
    def agency_id(self) -> str | None: ...
    @property
    def staff_id(self) -> str | None: ...


def metadata_of(source: HasMetadata) -> dict[str, str]:
    """An event's metadata as stored (canonical text of this) and hashed: unset keys left out."""
    pairs = (
        ("correlation_id", source.correlation_id),
        ("causation_id", source.causation_id),
        ("agency_id", source.agency_id),
        ("staff_id", source.staff_id),
    )
    return {k: v for k, v in pairs if v is not None}


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
    """The record of an event that its chain hash covers (``metadata`` and ``payload`` as
    stored: canonical JSON text). The keyword names are the events table's columns."""
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


def link_hash(prev_hash: str, record: Mapping[str, Any]) -> str:
    """The chain hash of ``record`` following ``prev_hash``."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_bytes(record)).hexdigest()


# -- decoding ---------------------------------------------------------------------------


async def decode_payload(
    vault: KeyVault,
    *,
    event_type: str,
    schema_version: int,
    subject: str,
    event_id: str,
    payload: str,
) -> tuple[DomainEvent, frozenset[str]]:
    """Open, upcast and validate a payload (shared by the store and consumers)."""
    cls = event_class(event_type)
    data = json.loads(payload)
    if not isinstance(data, dict):
        raise CorruptEvent(f"{event_type} payload is not a JSON object")
    data, erased = await vault.open(subject, event_id, data, cls.personal_fields())
    data = upcast(event_type, schema_version, data)
    if erased:
        # Erased personal fields read as None; every other field is validated (and so
        # typed: enums, datetimes) exactly as it is while the key exists.
        for name in cls.model_fields.keys() & data.keys() - erased:
            try:
                data[name] = _field_adapter(cls, name).validate_python(data[name])
            except ValidationError as exc:
                raise CorruptEvent(f"{event_type} v{schema_version} {name}: {exc}") from exc
        return cls.model_construct(**data), erased
    try:
        return cls.model_validate(data), erased
    except ValidationError as exc:
        raise CorruptEvent(f"{event_type} v{schema_version}: {exc}") from exc


@functools.cache
def _field_adapter(cls: type[DomainEvent], name: str) -> TypeAdapter[Any]:
    info = cls.model_fields[name]
    hint: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(hint)
