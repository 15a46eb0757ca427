"""Upcasting: stored events are never rewritten; an old version is brought up to the
latest when it is read."""

from __future__ import annotations

from typing import Any

import pytest

from kyosei_events import UnknownEventType
from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.coordination import CaseOpened
from kyosei_events.catalogue.intake import Channel, ConsentGiven, ConsultationReceived
from kyosei_events.model import event_class, upcast, upcaster

V1_PAYLOAD: dict[str, Any] = {
    "consultation_id": "c-1",
    "household_id": "hh-1",
    "agency_id": "agency-a",
    "window": "self_reliance_support",
    "concern": "hardship",
    "summary": "家賃を３か月滞納している。",
    "caller_name": None,
    "complex": False,
    "received_at": "2023-10-02T01:02:03.000004Z",
}


def test_consultation_received_is_at_version_5() -> None:
    assert event_class("ConsultationReceived") is ConsultationReceived
    assert ConsultationReceived.schema_version == 5


def test_a_v1_consultation_reads_as_the_latest() -> None:
    before = dict(V1_PAYLOAD)
    upcast_payload = upcast("ConsultationReceived", 1, V1_PAYLOAD)
    assert before == V1_PAYLOAD, "the stored payload must not be modified"
    assert "concern" not in upcast_payload
    assert upcast_payload["concerns"] == ["hardship"]
    assert upcast_payload["channel"] == "unknown"
    assert upcast_payload["other_concern"] is None
    assert upcast_payload["caller_contact"] is None
    assert upcast_payload["concern_report_id"] is None
    assert upcast_payload["member_ids"] == [], "v3 named nobody: it concerns every member"
    assert upcast_payload["unmet_needs"] == [], "v4 recorded no unmet need"
    assert upcast_payload["place_id"] is None
    assert upcast_payload["brought_by"] is None and upcast_payload["brought_by_agency"] is None

    event = ConsultationReceived.model_validate(upcast_payload)
    assert event.concerns == [Concern.HARDSHIP]
    assert event.channel is Channel.UNKNOWN
    assert event.summary == "家賃を３か月滞納している。"
    assert event.agency_id == "agency-a"


def test_a_v2_payload_gains_the_later_fields_as_empty() -> None:
    v2 = {**{k: v for k, v in V1_PAYLOAD.items() if k != "concern"}}
    v2 |= {"concerns": ["hardship"], "channel": "phone"}
    v5 = upcast("ConsultationReceived", 2, v2)
    assert v5 == {
        **v2,
        "other_concern": None,
        "caller_contact": None,
        "concern_report_id": None,
        "member_ids": [],
        "unmet_needs": [],
        "place_id": None,
        "brought_by": None,
        "brought_by_agency": None,
    }
    assert ConsultationReceived.model_validate(v5).channel is Channel.PHONE


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        (
            "ReferralMade",
            {
                "referral_id": "r-1",
                "consultation_id": "c-1",
                "from_agency": "a",
                "to_agency": "b",
                "concerns": ["care"],
                "note": None,
                "made_at": "2025-04-01T00:00:00Z",
            },
        ),
        (
            "OutreachStarted",
            {
                "outreach_id": "o-1",
                "agency_id": "a",
                "origin": "community",
                "concerns": ["withdrawal"],
                "reason": "x",
                "location": None,
                "reporter_name": None,
                "reporter_contact": None,
                "started_at": "2025-04-01T00:00:00Z",
            },
        ),
    ],
)
def test_a_v1_payload_of_a_widened_vocabulary_reads_unchanged(
    event_type: str, payload: dict[str, Any]
) -> None:
    """v2 of these events only admits more concerns (and origins): a v1 value keeps its
    meaning, so the payload is read as it was stored."""
    assert event_class(event_type).schema_version == 2
    assert upcast(event_type, 1, payload) == payload
    event_class(event_type).model_validate(payload)


def test_a_v1_consent_reads_as_v2_without_a_proxy() -> None:
    v1 = {
        "consent_id": "k-1",
        "household_id": "h-1",
        "member_id": None,
        "given_by": "family",
        "agencies": ["a"],
        "all_agencies": False,
        "purposes": ["information_sharing"],
        "given_on": "2025-04-01",
        "recorded_at": "2025-04-01T00:00:00Z",
    }
    v2 = upcast("ConsentGiven", 1, v1)
    assert v2 == {**v1, "proxy_id": None}
    assert ConsentGiven.model_validate(v2).member_id is None


def test_a_latest_payload_is_left_as_it_is() -> None:
    v5 = upcast("ConsultationReceived", 1, V1_PAYLOAD)
    assert upcast("ConsultationReceived", 5, v5) == v5


@pytest.mark.parametrize(
    ("event_type", "version", "message"),
    [
        ("ConsultationReceived", 6, "newer than this catalogue"),
        ("ConsultationReceived", 0, "no upcaster"),
        ("NoSuchEvent", 1, "unknown event type"),
    ],
)
def test_versions_it_cannot_read_are_refused(event_type: str, version: int, message: str) -> None:
    with pytest.raises(UnknownEventType, match=message):
        upcast(event_type, version, dict(V1_PAYLOAD))


def test_an_upcaster_must_start_from_an_older_version() -> None:
    with pytest.raises(TypeError, match="not older"):
        upcaster("ConsultationReceived", from_version=5)(lambda p: p)
    with pytest.raises(UnknownEventType):
        upcaster("NoSuchEvent", from_version=1)(lambda p: p)


def test_a_v2_case_opened_reads_as_an_escalation_coordinated_by_its_escalating_agency() -> None:
    v2 = {
        "case_id": "case-c-1",
        "household_id": "hh-1",
        "consultation_id": "c-1",
        "escalated_by": "houkatsu",
        "concerns": ["care"],
        "opened_at": "2026-11-25T00:00:00Z",
    }
    opened = CaseOpened.model_validate(upcast("CaseOpened", 2, v2))
    assert (opened.main_agency, opened.member_ids, opened.opened_by) == ("houkatsu", [], None)
    # v1 goes through v2 to the latest as well.
    assert CaseOpened.model_validate(upcast("CaseOpened", 1, v2)).main_agency == "houkatsu"
