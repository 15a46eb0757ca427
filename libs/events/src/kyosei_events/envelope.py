"""The envelope: CloudEvents 1.0 attributes carried as Kafka headers (binary mode).

Kafka key = the stream's partition key: the subject of the stream's first event (the
household id, or a consultation's own id when it was received without a household).
Every event of a stream keeps that key when its subject changes (a consultation linked
to a household), so a stream stays in order on one partition, and one household's
streams that began under it share its partition. The value is the event's JSON payload exactly as it
is stored (personal fields sealed), so a consumer can recompute the hash chain.

Headers (all UTF-8):
    ce_specversion, ce_id, ce_source, ce_type, ce_time, ce_subject, ce_dataschema,
    content-type, and the kyosei extensions ce_schemaversion, ce_correlationid,
    ce_causationid, ce_agencyid, ce_staffid, ce_streamid, ce_streamversion,
    ce_prevhash, ce_hash.

On the wire the service's Kafka client (FastStream) adds one header of its own,
``correlation_id``: :attr:`Envelope.effective_correlation_id` (the correlation id, or
ce_id when the event starts a correlation). It is not a CloudEvents attribute (no
``ce_`` prefix), so CloudEvents SDKs ignore it; FastStream's logs and tracing use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .canonical import canonical_text
from .codec import link_hash, metadata_of, record_of
from .tables import events, processed_messages

SPEC_VERSION = "1.0"
TYPE_PREFIX = "jp.kyosei."
CONTENT_TYPE = "application/json"


class EnvelopeError(ValueError):
    """A message whose headers are not a valid kyosei CloudEvents envelope."""


def _length(column: object) -> int:
    length = getattr(getattr(column, "type", None), "length", None)
    assert isinstance(length, int), f"{column} has no length"
    return length


# The longest value a consumer may have to store, by header: the columns a policy's
# appends (subject, stream id, type, time) and the processed mark (ce_id) write it to.
# PostgreSQL refuses a longer value (a DataError on every attempt); SQLite would keep
# it. Checked up front, so the message is dead-lettered before any write.
MAX_LENGTHS = {
    "ce_id": _length(processed_messages.c.message_id),
    "ce_subject": _length(events.c.subject),
    "ce_streamid": _length(events.c.stream_id),
    "ce_type": _length(events.c.event_type),
    "ce_time": _length(events.c.recorded_at),
}
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    source: str
    event_type: str
    schema_version: int
    time: str
    subject: str
    stream_id: str
    stream_version: int
    prev_hash: str
    hash: str
    correlation_id: str | None = None
    causation_id: str | None = None
    agency_id: str | None = None
    staff_id: str | None = None
    # The Kafka key, when it is not the subject (a stream whose subject changed); not a
    # header, so an envelope read back from headers has none.
    partition_key: str | None = field(default=None, compare=False)

    @property
    def ce_type(self) -> str:
        return TYPE_PREFIX + self.event_type

    @property
    def dataschema(self) -> str:
        return f"urn:kyosei:schema:{self.event_type}:v{self.schema_version}"

    @property
    def effective_correlation_id(self) -> str:
        """The correlation this event belongs to: its correlation id, or its own id
        when it starts one."""
        return self.correlation_id or self.id

    @property
    def key(self) -> bytes:
        return (self.partition_key or self.subject).encode()

    def link_hash(self, payload: str) -> str:
        """The chain hash of this event with ``payload``: equals ``hash`` when authentic."""
        record = record_of(
            stream_id=self.stream_id,
            version=self.stream_version,
            event_id=self.id,
            event_type=self.event_type,
            schema_version=self.schema_version,
            recorded_at=self.time,
            subject=self.subject,
            metadata=canonical_text(metadata_of(self)),
            payload=payload,
        )
        return link_hash(self.prev_hash, record)

    def to_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v.encode()) for k, v in self.header_map().items()]

    def header_map(self) -> dict[str, str]:
        """The headers as text, the form the service's Kafka client publishes."""
        pairs: list[tuple[str, str | None]] = [
            ("ce_specversion", SPEC_VERSION),
            ("ce_id", self.id),
            ("ce_source", self.source),
            ("ce_type", self.ce_type),
            ("ce_time", self.time),
            ("ce_subject", self.subject),
            ("ce_dataschema", self.dataschema),
            ("content-type", CONTENT_TYPE),
            ("ce_schemaversion", str(self.schema_version)),
            ("ce_streamid", self.stream_id),
            ("ce_streamversion", str(self.stream_version)),
            ("ce_prevhash", self.prev_hash),
            ("ce_hash", self.hash),
            ("ce_correlationid", self.correlation_id),
            ("ce_causationid", self.causation_id),
            ("ce_agencyid", self.agency_id),
            ("ce_staffid", self.staff_id),
        ]
        return {k: v for k, v in pairs if v is not None}

    @classmethod
    def from_headers(
        cls, headers: Iterable[tuple[str, bytes | str]] | Mapping[str, bytes | str]
    ) -> Envelope:
        """Parse Kafka headers; raises :class:`EnvelopeError` naming what is wrong."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        h: dict[str, str] = {}
        for k, v in items:
            try:
                h[k] = v.decode() if isinstance(v, bytes) else str(v)
            except UnicodeDecodeError:
                raise EnvelopeError(f"header {k} is not UTF-8") from None

        def need(name: str) -> str:
            value = h.get(name)
            if not value:
                raise EnvelopeError(f"missing header {name}")
            if name in MAX_LENGTHS and len(value) > MAX_LENGTHS[name]:
                raise EnvelopeError(
                    f"header {name} is {len(value)} characters, longer than {MAX_LENGTHS[name]}"
                )
            return value

        def need_hash(name: str) -> str:
            value = need(name)
            if len(value) != 64 or not _HEX.issuperset(value):
                raise EnvelopeError(
                    f"header {name} must be 64 lowercase hexadecimal characters (SHA-256), "
                    f"got {value[:80]!r}"
                )
            return value

        def need_int(name: str) -> int:
            raw = need(name)
            try:
                return int(raw)
            except ValueError:
                raise EnvelopeError(f"header {name} must be an integer, got {raw[:80]!r}") from None

        if (spec := need("ce_specversion")) != SPEC_VERSION:
            raise EnvelopeError(f"unsupported ce_specversion {spec!r}")
        ce_type = need("ce_type")
        if not ce_type.startswith(TYPE_PREFIX):
            raise EnvelopeError(f"ce_type {ce_type!r} is not a kyosei type ({TYPE_PREFIX}…)")
        return cls(
            id=need("ce_id"),
            source=need("ce_source"),
            event_type=ce_type[len(TYPE_PREFIX) :],
            schema_version=need_int("ce_schemaversion"),
            time=need("ce_time"),
            subject=need("ce_subject"),
            stream_id=need("ce_streamid"),
            stream_version=need_int("ce_streamversion"),
            prev_hash=need_hash("ce_prevhash"),
            hash=need_hash("ce_hash"),
            correlation_id=h.get("ce_correlationid"),
            causation_id=h.get("ce_causationid"),
            agency_id=h.get("ce_agencyid"),
            staff_id=h.get("ce_staffid"),
        )
