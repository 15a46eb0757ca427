"""The published contract: the committed JSON Schemas and AsyncAPI document are what
the catalogue generates, they are valid, and every event is documented."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from kyosei_events import catalogue as _catalogue  # noqa: F401  (registers every type)
from kyosei_events.envelope import TYPE_PREFIX
from kyosei_events.model import DomainEvent, catalogue, installed_event_modules, readable_versions
from kyosei_events.schemas import SCHEMA_DIR, event_schema, frozen, published, write
from kyosei_events.topics import dead_letter_topic, events_topic
from kyosei_platform.service import discover
from tests.backbone_support import case_opened, consultation, matched

REGENERATE = (
    "the committed schemas in libs/events/schemas/ differ from the catalogue; "
    "run `make schemas` and commit the result"
)
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
EVENTS = sorted(catalogue().items())


def producer_modules(service: str) -> set[str]:
    """Where the event types a service produces may be declared: its catalogue module,
    or the module its package declares under the `kyosei.events` entry point."""
    own = installed_event_modules().get(service)
    return {f"kyosei_events.catalogue.{service}"} | ({own} if own else set())


def committed() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(SCHEMA_DIR.glob("*.json"))}


def test_the_catalogue_is_not_empty() -> None:
    assert len(EVENTS) >= 5
    assert "ConsultationReceived" in catalogue()


def test_committed_schemas_match_the_catalogue() -> None:
    expected, found = published(), committed()
    missing = sorted(expected.keys() - found.keys())
    assert not missing, f"{REGENERATE} (missing: {', '.join(missing)})"
    changed = sorted(name for name in expected if found[name] != expected[name])
    assert not changed, f"{REGENERATE} (changed: {', '.join(changed)})"
    stale = sorted(found.keys() - expected.keys())
    assert not stale, (
        f"{REGENERATE}, and delete what it no longer generates (stale: {', '.join(stale)})"
    )


@pytest.mark.parametrize("name", sorted(n for n in published() if n != "asyncapi.json"))
def test_each_committed_schema_is_valid_json_schema(name: str) -> None:
    path = SCHEMA_DIR / name
    assert path.exists(), f"{name} is not committed: run `make schemas`"
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    event_type, version = name.removesuffix(".json").split(".v")
    assert schema["$id"] == f"urn:kyosei:schema:{event_type}:v{version}"
    assert schema["x-kyosei-schema-version"] == int(version)


def test_every_version_that_may_be_stored_is_published() -> None:
    """The relay publishes stored payloads as stored: v1 to v5 of ConsultationReceived
    and v1, v2 of ConsentGiven all travel, so all are published."""
    assert readable_versions("ConsultationReceived") == [1, 2, 3, 4, 5]
    assert readable_versions("ConsentGiven") == [1, 2]
    names = set(published())
    for name in catalogue():
        for version in readable_versions(name):
            assert f"{name}.v{version}.json" in names
    assert set(frozen()) >= {
        "ConsultationReceived.v1.json",
        "ConsultationReceived.v2.json",
        "ConsultationReceived.v3.json",
        "ConsentGiven.v1.json",
    }


def test_older_stored_payloads_validate_against_their_frozen_schema() -> None:
    v1 = {
        "consultation_id": "c-1",
        "agency_id": "a-1",
        "window": "community_general_support_center",
        "concern": "care",
        "summary": "kyosei-enc:v1:abc",
        "received_at": "2026-01-01T00:00:00Z",
    }
    schema = json.loads((SCHEMA_DIR / "ConsultationReceived.v1.json").read_text("utf-8"))
    Draft202012Validator(schema).validate(v1)
    latest = json.loads((SCHEMA_DIR / "ConsultationReceived.v5.json").read_text("utf-8"))
    assert not Draft202012Validator(latest).is_valid(v1)


def test_the_generator_keeps_frozen_versions(tmp_path: Any) -> None:
    for name, text in frozen().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    write(tmp_path)
    assert {p.name: p.read_text("utf-8") for p in tmp_path.glob("*.json")} == published()
    (tmp_path / "ConsentGiven.v1.json").unlink()
    with pytest.raises(FileNotFoundError, match="ConsentGiven v1"):
        write(tmp_path)


def asyncapi_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SCHEMA_DIR / "asyncapi.json").read_text(encoding="utf-8"))
    return doc


def test_the_asyncapi_document_points_at_committed_schemas() -> None:
    doc = asyncapi_doc()
    assert doc["asyncapi"].startswith("3.")
    Draft202012Validator.check_schema(doc["components"]["schemas"]["CloudEventsHeaders"])
    # Store-only event types never travel: they have no AsyncAPI message.
    expected = {
        f"{n}.v{v}" for n, cls in catalogue().items() if cls.published for v in readable_versions(n)
    }
    assert set(doc["components"]["messages"]) == expected | {"DeadLetter"}
    for name in expected:
        message = doc["components"]["messages"][name]
        event_type, version = name.split(".v")
        # Relative to the document itself, as $refs are resolved.
        ref = message["payload"]["$ref"]
        assert (SCHEMA_DIR / ref).resolve() == (SCHEMA_DIR / f"{name}.json").resolve(), ref
        assert (SCHEMA_DIR / ref).exists(), ref
        identity = message["headers"]["allOf"][1]["properties"]
        assert identity["ce_type"] == {"const": TYPE_PREFIX + event_type}
        assert identity["ce_schemaversion"] == {"const": version}
        assert message["correlationId"] == {"$ref": "#/components/correlationIds/ceCorrelationId"}
    location = doc["components"]["correlationIds"]["ceCorrelationId"]["location"]
    assert location == "$message.header#/ce_correlationid"


def test_the_asyncapi_document_says_who_publishes_and_who_consumes_each_topic() -> None:
    doc = asyncapi_doc()
    channels, operations = doc["channels"], doc["operations"]
    by_address = {c["address"]: key for key, c in channels.items()}
    producers = {cls.producer for cls in catalogue().values()}
    for producer in producers:
        key = by_address[events_topic(producer)]
        sends = [o for o in operations.values() if o["channel"]["$ref"] == f"#/channels/{key}"]
        assert [o["action"] for o in sends if o["action"] == "send"] == ["send"], producer
        for name, cls in catalogue().items():
            if cls.producer == producer and cls.published:
                assert f"{name}.v{cls.schema_version}" in channels[key]["messages"]
            elif cls.producer == producer:
                assert name in channels[key]["x-kyosei-store-only"], name
                assert f"{name}.v{cls.schema_version}" not in channels[key]["messages"]
    services = discover()
    assert services, "no service is installed"
    consumers = {s.name: s for s in services.values() if s.policies}
    receivers: dict[tuple[str, str], set[str]] = {}
    for op in operations.values():
        if op["action"] == "receive":
            consumer = op["x-kyosei-service"]
            channel = op["channel"]["$ref"].removeprefix("#/channels/")
            topic = channels[channel]["address"]
            ids = {m["$ref"].rsplit("/", 1)[1] for m in op["messages"]}
            receivers[(consumer, topic)] = ids
    expected: dict[tuple[str, str], set[str]] = {}
    for svc in consumers.values():
        for p in svc.policies:
            cls = p.event_type
            expected.setdefault((svc.name, events_topic(cls.producer)), set()).update(
                f"{cls.event_type}.v{v}" for v in readable_versions(cls.event_type)
            )
    assert receivers == expected
    for name in consumers:
        key = by_address[dead_letter_topic(name)]
        assert list(channels[key]["messages"]) == ["DeadLetter"]
        assert any(
            o["action"] == "send" and o["channel"]["$ref"] == f"#/channels/{key}"
            for o in operations.values()
        )
    assert "dlq_reason" in doc["components"]["messages"]["DeadLetter"]["headers"]["required"]


def test_the_asyncapi_document_declares_plain_and_sasl_ssl_servers() -> None:
    doc = asyncapi_doc()
    protocols = {s["protocol"] for s in doc["servers"].values()}
    assert protocols == {"kafka", "kafka-secure"}
    secure = next(s for s in doc["servers"].values() if s["protocol"] == "kafka-secure")
    schemes = doc["components"]["securitySchemes"]
    types = {schemes[r["$ref"].rsplit("/", 1)[1]]["type"] for r in secure["security"]}
    assert types == {"scramSha256", "scramSha512"}


@pytest.mark.parametrize(("name", "cls"), EVENTS, ids=[n for n, _ in EVENTS])
def test_every_event_is_documented(name: str, cls: type[DomainEvent]) -> None:
    assert cls.event_type == name
    assert cls.__doc__ and cls.__doc__.strip(), f"{name} needs a docstring"
    assert JAPANESE.search(cls.label_ja), f"{name}.label_ja {cls.label_ja!r} is not Japanese"
    assert cls.__module__ in producer_modules(cls.producer), (
        f"{name}.producer is {cls.producer!r}, but it is declared in {cls.__module__}: the "
        "catalogue has one module per producing service"
    )
    assert isinstance(cls.schema_version, int) and cls.schema_version >= 1
    # Past tense: the catalogue names facts, not commands.
    assert re.search(r"(ed|Held|Given|Withdrawn|Made)(To[A-Z]\w*|Into)?$", name), (
        f"{name} is not a past-tense name"
    )
    schema = event_schema(cls)
    assert schema["description"] == inspect.cleandoc(cls.__doc__)
    assert schema["x-kyosei-label-ja"] == cls.label_ja
    assert schema["x-kyosei-personal-fields"] == sorted(cls.personal_fields())
    for field in cls.personal_fields():
        prop = schema["properties"][field]
        assert prop.get("x-kyosei-personal") is True, f"{name}.{field} is not marked personal"


@pytest.mark.parametrize(
    "event",
    [consultation("hh-1"), consultation(None, caller_name=None), case_opened(), matched()],
    ids=lambda e: type(e).__name__,
)
def test_plaintext_events_validate_against_the_published_schema(event: Any) -> None:
    schema = json.loads(
        (SCHEMA_DIR / f"{event.event_type}.v{event.schema_version}.json").read_text("utf-8")
    )
    Draft202012Validator(schema).validate(event.model_dump(mode="json"))
