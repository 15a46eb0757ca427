"""JSON Schema and AsyncAPI documents generated from the catalogue.

The committed files under ``libs/events/schemas/`` are what agencies integrate
against; a contract test regenerates them and fails when they drift. Regenerate with
``make schemas``.

The latest version of each event type is generated. A store-only event type
(``published = False``) gets its JSON Schema (marked ``x-kyosei-store-only``: it
describes the producer's store) but no AsyncAPI message; the producer's channel names it
as never published. Older versions still travel: the
relay publishes stored events as they were stored, so ``<EventType>.v<N>.json`` of every
version an upcaster still reads stays published. Those are frozen: the generator keeps
the committed file (it was generated when that version was the latest) and never
rewrites or deletes it. Raising an event's ``schema_version`` thus freezes the previous
file as it is; ``make schemas`` then writes the new one.

Who consumes what comes from the installed services (the ``kyosei.services`` entry
points, read by their ``name`` and ``policies``): the catalogue itself imports no service.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from . import catalogue as _catalogue  # noqa: F401  (registers every event type)
from .envelope import TYPE_PREFIX
from .model import DomainEvent, catalogue, readable_versions
from .topics import dead_letter_topic, events_topic

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
SCHEMA_FILE = re.compile(r"(?P<type>[A-Za-z0-9]+)\.v(?P<version>[0-9]+)\.json")


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
    if not cls.published:
        # Kept in the producer's event store, never put on the topic (model.py).
        schema["x-kyosei-store-only"] = True
    return schema


def schema_file(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}.json"


def message_id(event_type: str, version: int) -> str:
    """The AsyncAPI message of one version of an event type."""
    return f"{event_type}.v{version}"


def installed_consumers() -> dict[str, list[str]]:
    """Consuming service -> the event types its policies handle, from the installed
    services (empty where none is installed)."""
    found: dict[str, tuple[int, list[str]]] = {}
    for ep in entry_points(group="kyosei.services"):
        service = ep.load()
        types = sorted({p.event_type.event_type for p in service.policies})
        if types:
            found[service.name] = (service.order, types)
    return {name: types for name, (_, types) in sorted(found.items(), key=lambda kv: kv[1][0])}


def frozen(directory: Path = SCHEMA_DIR) -> dict[str, str]:
    """File name -> committed text of every older version that is still read."""
    out = {}
    for name in catalogue():
        for version in readable_versions(name)[:-1]:
            path = directory / schema_file(name, version)
            if not path.exists():
                raise FileNotFoundError(
                    f"{path} is missing: {name} v{version} may be stored, so its schema "
                    "stays published (restore the file committed while it was the latest)"
                )
            out[path.name] = path.read_text(encoding="utf-8")
    return out


CLOUDEVENTS_HEADERS = (
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
    "correlation_id",
)
REQUIRED_HEADERS = [
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
KEY_DESCRIPTION = (
    "the subject of the stream's first event, for every event of the stream: the "
    "household id, or the consultation id when it was received without a household (it "
    "keeps that key once linked; ce_subject becomes the household id). Order per key; "
    "within a stream ce_streamversion gives the order"
)
# How an agency recomputes ce_hash without kyosei (README, "For agencies integrating by
# events"; tests/integration/test_agency_integration.py runs it).
CHAIN_RECIPE = (
    "ce_hash = SHA-256(bytes of hex ce_prevhash (64 zeros for version 1) || UTF-8 RFC 8785 "
    "(JCS) canonical JSON of the chain record {stream_id: ce_streamid, version: "
    "int(ce_streamversion), event_id: ce_id, type: ce_type without 'jp.kyosei.', "
    "schema_version: int(ce_schemaversion), time: ce_time, subject: ce_subject, metadata: "
    "JCS text of {correlation_id, causation_id, agency_id, staff_id} from ce_correlationid, "
    "ce_causationid, ce_agencyid, ce_staffid (absent ones left out), payload: the message "
    "value as received}). The record holds only strings and integers, so "
    "json.dumps(record, sort_keys=True, separators=(',', ':'), ensure_ascii=False) is JCS "
    "for it."
)
HEADER_DESCRIPTIONS = {
    "ce_streamid": "the stream (one consultation, household, case…) the event belongs to",
    "ce_streamversion": "the event's place in its stream: 1, 2, …",
    "ce_prevhash": "ce_hash of the stream's previous event (64 zeros for version 1)",
    "ce_hash": "SHA-256 chain hash of the event (see CloudEventsHeaders' description)",
}
DEAD_LETTER_HEADERS = {
    "dlq_reason": "why the consumer could never process the message",
    "dlq_consumer": "the consumer group that gave up on it",
    "dlq_topic": "the topic it was read from",
    "dlq_partition": "its partition there",
    "dlq_offset": "its offset there",
    "dlq_time": "when it was dead-lettered (ISO 8601)",
}


def _message(cls: type[DomainEvent], version: int) -> dict[str, Any]:
    doc = (cls.__doc__ or "").strip()
    name = cls.event_type
    latest = version == cls.schema_version
    return {
        "name": name,
        "title": f"{cls.label_ja} v{version}",
        "summary": doc.splitlines()[0],
        "description": doc
        if latest
        else f"{doc}\n\nv{version}: stored before v{version + 1}; published as stored, "
        f"read by upcasting to v{cls.schema_version}.",
        "contentType": "application/json",
        "correlationId": {"$ref": "#/components/correlationIds/ceCorrelationId"},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": KEY_DESCRIPTION,
                },
                "bindingVersion": "0.5.0",
            }
        },
        "headers": {
            "allOf": [
                {"$ref": "#/components/schemas/CloudEventsHeaders"},
                {
                    "type": "object",
                    "description": f"identified by ce_type {TYPE_PREFIX}{name} and "
                    f"ce_schemaversion {version}",
                    "properties": {
                        "ce_type": {"const": TYPE_PREFIX + name},
                        "ce_schemaversion": {"const": str(version)},
                    },
                },
            ]
        },
        "payload": {"$ref": f"./{schema_file(name, version)}"},
    }


def asyncapi(consumers: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """An AsyncAPI 3.0 document: one channel per producing service's topic, with the
    service's send operation and a receive operation per consuming service; one
    dead-letter channel per consuming service. ``consumers`` (service -> event types
    it handles) defaults to the installed services'."""
    if consumers is None:
        consumers = installed_consumers()
    events = catalogue()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    by_producer: dict[str, list[str]] = {}
    store_only: dict[str, list[str]] = {}
    for name, cls in events.items():
        if not cls.published:
            store_only.setdefault(cls.producer, []).append(f"{name} ({cls.label_ja})")
            continue
        for version in readable_versions(name):
            messages[message_id(name, version)] = _message(cls, version)
            by_producer.setdefault(cls.producer, []).append(message_id(name, version))
    for producer, ids in sorted(by_producer.items()):
        channels[f"{producer}Events"] = {
            "address": events_topic(producer),
            "title": f"{producer} events",
            "description": f"Every event {producer} records, keyed by its stream's first "
            "subject (the household id, or the consultation id when received without one); "
            "the address takes KYOSEI_TOPIC_PREFIX in front when set."
            + (
                f" Store-only, never published (kept in {producer}'s event store and "
                f"read only through its API): {', '.join(store_only[producer])}."
                if producer in store_only
                else ""
            ),
            "servers": [{"$ref": "#/servers/plain"}, {"$ref": "#/servers/saslSsl"}],
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in ids},
        }
        if producer in store_only:
            channels[f"{producer}Events"]["x-kyosei-store-only"] = sorted(
                n.split(" ")[0] for n in store_only[producer]
            )
        operations[f"{producer}Publishes"] = {
            "action": "send",
            "x-kyosei-service": producer,
            "title": f"{producer} publishes its events",
            "description": f"The outbox relay of {producer} publishes every stored event "
            "but the store-only ones, at least once and in order per key, as it was stored.",
            "channel": {"$ref": f"#/channels/{producer}Events"},
            "messages": [{"$ref": f"#/channels/{producer}Events/messages/{m}"} for m in ids],
        }
    for consumer, types in consumers.items():
        handled: dict[str, list[str]] = {}
        for event_type in types:
            cls = events[event_type]
            handled.setdefault(cls.producer, []).extend(
                message_id(event_type, v) for v in readable_versions(event_type)
            )
        for producer, ids in sorted(handled.items()):
            operations[f"{consumer}Receives{producer.capitalize()}Events"] = {
                "action": "receive",
                "x-kyosei-service": consumer,
                "title": f"{consumer} consumes {producer}'s events",
                "description": f"The consumer group kyosei-{consumer} runs its policies "
                "on these; it skips the topic's other messages.",
                "channel": {"$ref": f"#/channels/{producer}Events"},
                "messages": [
                    {"$ref": f"#/channels/{producer}Events/messages/{m}"} for m in sorted(ids)
                ],
            }
        channels[f"{consumer}DeadLetters"] = {
            "address": dead_letter_topic(consumer),
            "title": f"{consumer} dead letters",
            "description": f"Messages {consumer} can never process, as they arrived (key, "
            "value, headers) plus dlq_* headers saying why and where from.",
            "servers": [{"$ref": "#/servers/plain"}, {"$ref": "#/servers/saslSsl"}],
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
        }
        operations[f"{consumer}DeadLetters"] = {
            "action": "send",
            "x-kyosei-service": consumer,
            "title": f"{consumer} dead-letters what it cannot process",
            "channel": {"$ref": f"#/channels/{consumer}DeadLetters"},
            "messages": [{"$ref": f"#/channels/{consumer}DeadLetters/messages/DeadLetter"}],
        }
    headers = {
        "type": "object",
        "description": "CloudEvents 1.0, Kafka protocol binding, binary content mode. "
        + CHAIN_RECIPE,
        "required": REQUIRED_HEADERS,
        "properties": {
            h: {"type": "string", "description": HEADER_DESCRIPTIONS[h]}
            if h in HEADER_DESCRIPTIONS
            else {"type": "string"}
            for h in CLOUDEVENTS_HEADERS
        },
    }
    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "title": "dead letter",
        "summary": "A message a consumer could never process, copied as it arrived.",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "required": sorted(DEAD_LETTER_HEADERS),
            "properties": {
                h: {"type": "string", "description": d} for h, d in DEAD_LETTER_HEADERS.items()
            },
            "additionalProperties": {"type": "string"},
        },
        "payload": {"description": "the value as it arrived (often, not always, JSON)"},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "kyosei events",
            "version": "1.0.0",
            "description": "Domain events of kyosei (共生), 重層的支援体制整備事業. Topic "
            "names take KYOSEI_TOPIC_PREFIX in front when it is set.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "plain": {
                "host": "kafka:9092",
                "protocol": "kafka",
                "description": "A cluster without authentication (compose, a closed network).",
            },
            "saslSsl": {
                "host": "kafka:9093",
                "protocol": "kafka-secure",
                "description": "A cluster with TLS and SASL/SCRAM (security.protocol SASL_SSL).",
                "security": [
                    {"$ref": "#/components/securitySchemes/scramSha512"},
                    {"$ref": "#/components/securitySchemes/scramSha256"},
                ],
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {"CloudEventsHeaders": headers},
            "correlationIds": {
                "ceCorrelationId": {
                    "description": "the correlation a message belongs to "
                    "(ce_id when it starts one)",
                    "location": "$message.header#/ce_correlationid",
                }
            },
            "securitySchemes": {
                "scramSha512": {"type": "scramSha512", "description": "SASL/SCRAM-SHA-512"},
                "scramSha256": {"type": "scramSha256", "description": "SASL/SCRAM-SHA-256"},
            },
        },
    }


def rendered(consumers: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """File name -> text, for every generated document (the latest versions and the
    AsyncAPI document; older versions are :func:`frozen`)."""
    out = {
        schema_file(name, cls.schema_version): _dump(event_schema(cls))
        for name, cls in catalogue().items()
    }
    out["asyncapi.json"] = _dump(asyncapi(consumers))
    return out


def published(directory: Path = SCHEMA_DIR) -> dict[str, str]:
    """File name -> text of everything ``libs/events/schemas/`` publishes."""
    return {**frozen(directory), **rendered()}


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write the generated files; frozen ones (older versions) are kept as they are."""
    directory.mkdir(parents=True, exist_ok=True)
    frozen(directory)  # an older version's file is missing: say so before writing
    written = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write():
        print(p, file=sys.stderr)
