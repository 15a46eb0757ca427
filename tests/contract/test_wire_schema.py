"""What an agency receives on a topic validates against the published schema,
personal fields sealed and all."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema

from kyosei_events import KeyVault, NewEvent
from kyosei_events.catalogue.intake import ConsultationReceived
from kyosei_events.schemas import SCHEMA_DIR
from kyosei_events.store import EventStore


async def test_sealed_payload_validates_against_the_published_schema(
    store: EventStore, vault: KeyVault
) -> None:
    schema = json.loads((SCHEMA_DIR / "ConsultationReceived.v5.json").read_text("utf-8"))
    event = ConsultationReceived(
        consultation_id="c-wire",
        household_id="h-wire",
        agency_id="kodomo",
        window="child_family_center",
        channel="clinic_referral",
        concerns=["foreign_national", "childcare"],
        summary="通訳を子どもが担っている（ヤングケアラーの疑い）" * 3,
        caller_name="グエン・ティ・ラン" * 12,
        received_at=datetime.now(UTC),
    )
    [recorded] = await store.append("consultation-c-wire", [NewEvent(event, "h-wire")], 0)
    wire = json.loads(recorded.payload)
    assert wire["caller_name"].startswith("kyosei-enc:v1:")
    assert len(wire["caller_name"]) > 200  # longer than the plaintext limit: the schema allows it
    jsonschema.Draft202012Validator(schema).validate(wire)

    plain_too_long = {**wire, "caller_name": "x" * 201}
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(plain_too_long))
    assert errors, "an unsealed caller_name over 200 characters must not validate"
