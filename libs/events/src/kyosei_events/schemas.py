"""JSON Schema and AsyncAPI documents generated from the catalogue.

The committed files under ``libs/events/schemas/`` are what agencies integrate
against; a contract test regenerates them and fails when they drift. Regenerate with
``make schemas``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from . import catalogue as _catalogue  # noqa: F401  (registers every event type)
from .envelope import TYPE_PREFIX
from .model import DomainEvent, catalogue
from .topics import events_topic

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def event_schema(cls: type[DomainEvent]) -> dict[str, Any]:
    schema = cls.model_json_schema()
    # On the wire (topics, archives) a personal field is sealed: an AES-GCM envelope
    # string in place of the value. The schema admits both forms.
    for name in cls.personal_fields():
        plain = schema["properties"][name]
        schema["properties"][name] = {
            "anyOf": [
                {k: v for k, v in plain.items() if k not in ("title", "description", "default")},
                {"type": "string", "pattern": "^kyosei-enc:v1:", "description": "sealed"},
            ],
            **{k: v for k, v in plain.items() if k in ("title", "description", "default")},
            "x-kyosei-personal": True,
        }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"urn:kyosei:schema:{cls.event_type}:v{cls.schema_version}"
    schema["title"] = f"{cls.event_type} ({cls.label_ja})"
    schema["x-kyosei-event-type"] = TYPE_PREFIX + cls.event_type
    schema["x-kyosei-schema-version"] = cls.schema_version
    schema["x-kyosei-label-ja"] = cls.label_ja
    schema["x-kyosei-topic"] = events_topic(cls.producer)
    schema["x-kyosei-personal-fields"] = sorted(cls.personal_fields())
    return schema


def asyncapi() -> dict[str, Any]:
    """An AsyncAPI 3.0 document: one channel per producing service's topic."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for name, cls in catalogue().items():
        messages[name] = {
            "name": name,
            "title": cls.label_ja,
            "summary": (cls.__doc__ or "").strip().splitlines()[0],
            "description": (cls.__doc__ or "").strip(),
            "contentType": "application/json",
            "bindings": {"kafka": {"key": {"type": "string", "description": "household id"}}},
            "headers": {"$ref": "#/components/schemas/CloudEventsHeaders"},
            "payload": {"$ref": f"schemas/{name}.v{cls.schema_version}.json"},
        }
        topic = events_topic(cls.producer)
        channel = channels.setdefault(cls.producer, {"address": topic, "messages": {}})
        channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        operations.setdefault(
            f"publish_{cls.producer}",
            {"action": "send", "channel": {"$ref": f"#/channels/{cls.producer}"}},
        )
    headers = {
        "type": "object",
        "description": "CloudEvents 1.0, Kafka protocol binding, binary content mode",
        "required": [
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
        ],
        "properties": {
            h: {"type": "string"}
            for h in (
                "ce_specversion",
                "ce_id",
                "ce_source",
                "ce_type",
                "ce_time",
                "ce_subject",
                "ce_dataschema",
                "content-type",
                "ce_schemaversion",
                "ce_streamid",
                "ce_streamversion",
                "ce_prevhash",
                "ce_hash",
                "ce_correlationid",
                "ce_causationid",
                "ce_agencyid",
                "ce_staffid",
            )
        },
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "kyosei events",
            "version": "1.0.0",
            "description": "Domain events of kyosei (共生), 重層的支援体制整備事業.",
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": {"CloudEventsHeaders": headers}},
    }


def rendered() -> dict[str, str]:
    """File name -> text, for every generated document."""
    out = {
        f"{name}.v{cls.schema_version}.json": _dump(event_schema(cls))
        for name, cls in catalogue().items()
    }
    out["asyncapi.json"] = _dump(asyncapi())
    return out


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write():
        print(p, file=sys.stderr)
