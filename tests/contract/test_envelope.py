"""The envelope is CloudEvents 1.0 in the Kafka protocol binding, binary content mode:
what agencies read with any CloudEvents SDK, and what we read back from them."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from kyosei_events import Envelope, EnvelopeError, Metadata, RecordedEvent
from kyosei_events.canonical import canonical_text
from kyosei_events.codec import GENESIS, link_hash
from kyosei_events.envelope import TYPE_PREFIX
from tests.backbone_support import META

SOURCE = "urn:kyosei:service:intake"
PAYLOAD = canonical_text(
    {"consultation_id": "c-1", "household_id": "hh-1", "summary": "kyosei-enc:v1:AAAA"}
)


def recorded(**changes: object) -> RecordedEvent:
    base = RecordedEvent(
        position=7,
        tx_id=12345,
        stream_id="consultation-c-1",
        version=3,
        event_id="8f4f5c1e-2b7a-4c65-9d2e-0c6a3c1b2a10",
        event_type="ConsultationReceived",
        schema_version=2,
        recorded_at="2025-04-01T09:30:15.123456Z",
        subject="hh-1",
        metadata=canonical_text(META.as_dict()),
        payload=PAYLOAD,
        prev_hash="ab" * 32,
        hash="",
        partition_key="hh-1",
    )
    rec = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(rec, hash=link_hash(rec.prev_hash, rec.record()))


def message(rec: RecordedEvent) -> KafkaMessage:
    env = rec.envelope(SOURCE)
    return KafkaMessage(headers=dict(env.to_headers()), key=env.key, value=rec.payload.encode())


def test_headers_are_what_the_binding_names() -> None:
    rec = recorded()
    headers = dict(rec.envelope(SOURCE).to_headers())
    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": rec.event_id.encode(),
        "ce_source": SOURCE.encode(),
        "ce_type": b"jp.kyosei.ConsultationReceived",
        "ce_time": b"2025-04-01T09:30:15.123456Z",
        "ce_subject": b"hh-1",
        "ce_dataschema": b"urn:kyosei:schema:ConsultationReceived:v2",
        "content-type": b"application/json",
        "ce_schemaversion": b"2",
        "ce_streamid": b"consultation-c-1",
        "ce_streamversion": b"3",
        "ce_prevhash": ("ab" * 32).encode(),
        "ce_hash": rec.hash.encode(),
        "ce_correlationid": b"corr-1",
        "ce_causationid": b"cause-1",
        "ce_agencyid": b"agency-a",
        "ce_staffid": b"staff-9",
    }
    assert rec.envelope(SOURCE).key == b"hh-1"


def test_the_cloudevents_sdk_reads_our_headers() -> None:
    rec = recorded()
    event = from_binary(message(rec), JSONFormat())
    assert isinstance(event, CloudEvent)  # validated by the SDK: ids, names of extensions
    assert event.get_specversion() == "1.0"
    assert event.get_id() == rec.event_id
    assert event.get_source() == SOURCE
    assert event.get_type() == "jp.kyosei.ConsultationReceived"
    assert event.get_subject() == "hh-1"
    assert event.get_time() == datetime(2025, 4, 1, 9, 30, 15, 123456, tzinfo=UTC)
    assert event.get_datacontenttype() == "application/json"
    assert event.get_dataschema() == "urn:kyosei:schema:ConsultationReceived:v2"
    assert event.get_data() == json.loads(PAYLOAD)
    for name, value in {
        "schemaversion": "2",
        "streamid": "consultation-c-1",
        "streamversion": "3",
        "prevhash": "ab" * 32,
        "hash": rec.hash,
        "correlationid": "corr-1",
        "causationid": "cause-1",
        "agencyid": "agency-a",
        "staffid": "staff-9",
        "partitionkey": "hh-1",
    }.items():
        assert event.get_extension(name) == value, name


@pytest.mark.parametrize(
    "changes",
    [{}, {"metadata": "{}"}, {"prev_hash": GENESIS, "version": 1}],
    ids=["full", "no-metadata", "first-in-stream"],
)
def test_headers_round_trip_through_the_sdk(changes: dict[str, object]) -> None:
    rec = recorded(**changes)
    original = rec.envelope(SOURCE)
    event = from_binary(message(rec), JSONFormat())
    again = to_binary(event, JSONFormat(), key_mapper=lambda e: e.get_subject())

    assert again.key == b"hh-1" or again.key == "hh-1"
    back = Envelope.from_headers(again.headers)
    assert back == original
    assert json.loads(again.value) == json.loads(rec.payload)
    # The link still verifies over the stored payload: nothing of the chain was lost.
    assert back.link_hash(rec.payload) == back.hash


def test_we_read_an_event_made_with_the_sdk() -> None:
    """An agency publishing with its own CloudEvents SDK, with our extensions."""
    rec = recorded()
    event = CloudEvent(
        attributes={
            "id": rec.event_id,
            "source": "urn:agency:partner",
            "type": TYPE_PREFIX + "ConsultationReceived",
            "subject": "hh-1",
            "time": datetime(2025, 4, 1, 9, 30, 15, 123456, tzinfo=UTC),
            "datacontenttype": "application/json",
            "schemaversion": "2",
            "streamid": rec.stream_id,
            "streamversion": "3",
            "prevhash": rec.prev_hash,
            "hash": rec.hash,
            "agencyid": "agency-a",
        },
        data=json.loads(PAYLOAD),
    )
    msg = to_binary(event, JSONFormat())
    env = Envelope.from_headers(msg.headers)
    assert env.id == rec.event_id
    assert env.event_type == "ConsultationReceived"
    assert env.schema_version == 2
    assert env.stream_version == 3
    assert env.time == "2025-04-01T09:30:15.123456Z"
    assert env.agency_id == "agency-a"
    assert env.correlation_id is None and env.staff_id is None


def test_header_values_may_be_str_or_bytes_and_a_mapping_or_pairs() -> None:
    env = recorded().envelope(SOURCE)
    pairs = env.to_headers()
    assert Envelope.from_headers(pairs) == env
    assert Envelope.from_headers({k: v.decode() for k, v in pairs}) == env


REQUIRED = [
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_subject",
    "ce_schemaversion",
    "ce_streamid",
    "ce_streamversion",
    "ce_prevhash",
    "ce_hash",
]


@pytest.mark.parametrize("name", REQUIRED)
def test_a_missing_header_is_named(name: str) -> None:
    headers = [(k, v) for k, v in recorded().envelope(SOURCE).to_headers() if k != name]
    with pytest.raises(EnvelopeError, match=f"missing header {name}"):
        Envelope.from_headers(headers)


@pytest.mark.parametrize("name", REQUIRED)
def test_an_empty_header_is_named(name: str) -> None:
    headers = dict(recorded().envelope(SOURCE).to_headers()) | {name: b""}
    with pytest.raises(EnvelopeError, match=name):
        Envelope.from_headers(headers)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ce_specversion", b"0.3", "ce_specversion"),
        ("ce_type", b"com.example.ConsultationReceived", "ce_type"),
        ("ce_schemaversion", b"two", "ce_schemaversion must be an integer"),
        ("ce_streamversion", b"3.5", "ce_streamversion must be an integer"),
        ("ce_subject", b"\xff\xfe", "ce_subject is not UTF-8"),
    ],
)
def test_a_bad_header_is_named(name: str, value: bytes, message: str) -> None:
    headers = dict(recorded().envelope(SOURCE).to_headers()) | {name: value}
    with pytest.raises(EnvelopeError, match=message):
        Envelope.from_headers(headers)


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (META, "c937bc4a3e0b63dd29163e8a47bb9d4a90b3def91862af45c7cab883628a8cee"),
        (
            Metadata(correlation_id="corr-1", staff_id="職員-9"),
            "8f7549e9b0608e9922b5afdc25a3ef2864910e4dadd8c8a9ba7639fb015929df",
        ),
    ],
    ids=["full-metadata", "partial-metadata"],
)
def test_the_stored_record_and_the_envelope_hash_to_the_published_value(
    meta: Metadata, expected: str
) -> None:
    """Hashes already stored and published never change: the record a RecordedEvent
    hashes and the one an Envelope rebuilds from its headers are the same bytes."""
    payload = canonical_text(
        {"summary": "kyosei-enc:v1:AAAA", "household_id": "hh-1", "note": "介護🙏"}
    )
    rec = recorded(metadata=canonical_text(meta.as_dict()), payload=payload, tx_id=1)
    assert rec.hash == expected
    assert rec.envelope(SOURCE).link_hash(rec.payload) == expected
    headers = rec.envelope(SOURCE).to_headers()
    assert Envelope.from_headers(headers).link_hash(rec.payload) == expected
