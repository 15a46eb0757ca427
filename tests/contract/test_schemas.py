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
from kyosei_events.model import DomainEvent, catalogue, installed_event_modules
from kyosei_events.schemas import SCHEMA_DIR, event_schema, rendered
from kyosei_events.topics import events_topic
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
    expected, found = rendered(), committed()
    missing = sorted(expected.keys() - found.keys())
    assert not missing, f"{REGENERATE} (missing: {', '.join(missing)})"
    changed = sorted(name for name in expected if found[name] != expected[name])
    assert not changed, f"{REGENERATE} (changed: {', '.join(changed)})"
    stale = sorted(found.keys() - expected.keys())
    assert not stale, (
        f"{REGENERATE}, and delete what it no longer generates (stale: {', '.join(stale)})"
    )


@pytest.mark.parametrize("name", sorted(n for n in rendered() if n != "asyncapi.json"))
def test_each_committed_schema_is_valid_json_schema(name: str) -> None:
    path = SCHEMA_DIR / name
    assert path.exists(), f"{name} is not committed: run `make schemas`"
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_the_asyncapi_document_points_at_committed_schemas() -> None:
    doc = json.loads((SCHEMA_DIR / "asyncapi.json").read_text(encoding="utf-8"))
    assert doc["asyncapi"].startswith("3.")
    Draft202012Validator.check_schema(doc["components"]["schemas"]["CloudEventsHeaders"])
    assert set(doc["components"]["messages"]) == set(catalogue())
    for name, message in doc["components"]["messages"].items():
        ref = message["payload"]["$ref"]
        assert (SCHEMA_DIR / ref.removeprefix("schemas/")).exists(), ref
        cls = catalogue()[name]
        channel = doc["channels"][cls.producer]
        assert channel["address"] == events_topic(cls.producer)
        assert name in channel["messages"]


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
