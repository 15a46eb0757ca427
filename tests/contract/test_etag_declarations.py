"""The OpenAPI document of every service says what the request rules and optimistic
concurrency are: request bodies refuse unknown fields, lists and texts have maximum
lengths, and every operation that reads one resource or takes If-Match declares the
ETag it answers with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kyosei_platform.http import create_app
from kyosei_platform.service import discover
from kyosei_platform.settings import Settings

SERVICES = sorted(discover())


def openapi(name: str, tmp_path: Path) -> dict[str, Any]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / name}.db",
        keys_database_url=f"sqlite+aiosqlite:///{tmp_path / 'keys'}.db",
        kafka_bootstrap=["127.0.0.1:1"],
        master_key="11" * 32,
        auth_secret="contract-secret-of-enough-length",
    )
    doc: dict[str, Any] = create_app(discover()[name], settings).openapi()
    return doc


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


@pytest.mark.parametrize("name", SERVICES)
def test_reads_of_one_resource_and_writes_with_if_match_declare_the_etag(
    name: str, tmp_path: Path
) -> None:
    doc = openapi(name, tmp_path)
    checked = 0
    for path, method, op in _operations(doc):
        params = {p["name"].lower() for p in op.get("parameters", []) if p["in"] == "header"}
        one_resource = method == "get" and path.endswith("}")
        if not (one_resource or "if-match" in params):
            continue
        success = next(s for s in op["responses"] if s.startswith("2"))
        headers = op["responses"][success].get("headers", {})
        assert "ETag" in headers, (name, method, path)
        checked += 1
    assert checked, f"{name}: no operation reads one resource"


@pytest.mark.parametrize("name", SERVICES)
def test_request_bodies_refuse_unknown_fields_and_bound_every_list_and_text(
    name: str, tmp_path: Path
) -> None:
    doc = openapi(name, tmp_path)
    schemas = doc.get("components", {}).get("schemas", {})
    bodies = set()
    for _, _, op in _operations(doc):
        content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        ref = content.get("schema", {}).get("$ref") or next(
            (s.get("$ref") for s in content.get("schema", {}).get("anyOf", []) if "$ref" in s),
            None,
        )
        if ref:
            bodies.add(ref.rsplit("/", 1)[-1])
    seen: set[str] = set()
    todo = list(bodies)
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        schema = schemas[model]
        if schema.get("type") != "object":
            continue  # an enum
        assert schema.get("additionalProperties") is False, model
        for field, prop in schema["properties"].items():
            for variant in prop.get("anyOf", [prop]):
                if "$ref" in variant:
                    todo.append(variant["$ref"].rsplit("/", 1)[-1])
                if variant.get("type") == "array":
                    assert "maxItems" in variant, (model, field)
                    item = variant["items"]
                    if "$ref" in item:
                        todo.append(item["$ref"].rsplit("/", 1)[-1])
                if variant.get("type") == "string" and "format" not in variant:
                    assert "maxLength" in variant or "enum" in variant, (model, field)
