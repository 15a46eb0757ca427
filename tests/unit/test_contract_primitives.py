"""The primitives the contract rests on: canonical bytes, chain links, the registry."""

from __future__ import annotations

import hashlib
from typing import ClassVar

import pytest

from kyosei_events import dead_letter_topic, events_topic
from kyosei_events.canonical import canonical_bytes
from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.intake import ConsultationReceived
from kyosei_events.catalogue.participation import ParticipationMatched
from kyosei_events.codec import GENESIS, link_hash, record_of
from kyosei_events.model import DomainEvent, event


def test_canonical_bytes_are_sorted_compact_utf8() -> None:
    value = {"b": "介護🙏", "a": [1, 2.5, None, True], "ｃ": {"y": 1, "x": "か\u3099"}}
    assert canonical_bytes(value) == (
        '{"a":[1,2.5,null,true],"b":"介護🙏","ｃ":{"x":"か\u3099","y":1}}'.encode()
    )
    assert canonical_bytes(dict(reversed(list(value.items())))) == canonical_bytes(value)
    with pytest.raises(ValueError):
        canonical_bytes({"x": float("nan")})


def test_a_link_is_sha256_of_the_previous_hash_and_the_canonical_record() -> None:
    """What an agency implements to verify a chain without our code."""
    record = record_of(
        stream_id="s", version=1, event_id="e", event_type="T", schema_version=1,
        recorded_at="2025-01-01T00:00:00.000000Z", subject="hh", metadata="{}", payload="{}",
    )  # fmt: skip
    expected = hashlib.sha256(bytes(32) + canonical_bytes(record)).hexdigest()
    assert link_hash(GENESIS, record) == expected
    second = link_hash(expected, record | {"version": 2})
    assert (
        second
        == hashlib.sha256(
            bytes.fromhex(expected) + canonical_bytes(record | {"version": 2})
        ).hexdigest()
    )
    assert link_hash(GENESIS, record | {"payload": '{"a":1}'}) != expected


def test_personal_fields_are_declared_on_the_types() -> None:
    assert ConsultationReceived.personal_fields() == {
        "summary",
        "caller_name",
        "caller_contact",
        "other_concern",
        "brought_by",
    }
    assert ParticipationMatched.personal_fields() == {"fit_notes"}


def test_labels_are_japanese() -> None:
    assert Concern.CARE.label_ja == "介護"
    assert Concern.labels_ja()["withdrawal"] == "ひきこもり"
    assert Concern("care") is Concern.CARE


def test_topics() -> None:
    assert events_topic("intake") == "kyosei.intake.events"
    assert dead_letter_topic("coordination") == "kyosei.coordination.dlq"


def test_an_event_type_must_be_complete_to_register() -> None:
    with pytest.raises(TypeError, match="docstring"):

        @event
        class NoDocstringRecorded(DomainEvent):
            event_type: ClassVar[str] = "NoDocstringRecorded"
            schema_version: ClassVar[int] = 1
            label_ja: ClassVar[str] = "テスト"
            producer: ClassVar[str] = "intake"

    with pytest.raises(TypeError, match="label_ja"):

        @event
        class NoLabelRecorded(DomainEvent):
            """Missing its label."""

            event_type: ClassVar[str] = "NoLabelRecorded"
            schema_version: ClassVar[int] = 1
            producer: ClassVar[str] = "intake"

    with pytest.raises(TypeError, match="registered twice"):

        @event
        class ConsultationReceivedAgain(DomainEvent):
            """A second class under an existing name."""

            event_type: ClassVar[str] = "ConsultationReceived"
            schema_version: ClassVar[int] = 3
            label_ja: ClassVar[str] = "相談受付"
            producer: ClassVar[str] = "intake"
