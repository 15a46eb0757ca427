"""The HTTP contract every service keeps: each operation's OpenAPI entry declares each
error status it can answer, with the one error envelope (`Error`) as the schema; and
the errors a caller meets, the framework's own included (unknown route, wrong method,
unreadable body, body too large, wrong content type, no token, wrong role), have that
envelope and a status the operation declares, with field paths written one way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI

from kyosei_platform.auth import Role
from kyosei_platform.http import create_app
from kyosei_platform.service import discover
from kyosei_platform.settings import Settings
from tests.e2e.harness import System, json_of, running_system

SERVICES = sorted(discover())
ERROR = {"$ref": "#/components/schemas/Error"}
CONSULTATION = {
    "window": "welfare_general",
    "channel": "visit",
    "concerns": ["isolation"],
    "summary": "話し相手がいない",
}


def app_of(name: str, tmp_path: Path) -> FastAPI:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / name}.db",
        keys_database_url=f"sqlite+aiosqlite:///{tmp_path / 'keys'}.db",
        kafka_bootstrap=["127.0.0.1:9"],
        master_key="11" * 32,
        auth_secret="contract-secret-" + "x" * 16,
    )
    return create_app(discover()[name], settings)


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def schema_of(op: dict[str, Any], status: int) -> dict[str, Any]:
    return op["responses"][str(status)]["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


def is_envelope(doc: dict[str, Any], schema: dict[str, Any]) -> bool:
    """``Error``, or a named schema that is the envelope with more (``PossibleDuplicate``)."""
    if schema == ERROR:
        return True
    name = schema.get("$ref", "").rsplit("/", 1)[-1]
    own = doc["components"]["schemas"].get(name, {})
    envelope = doc["components"]["schemas"]["Error"]
    return bool(
        own.get("properties", {}).get("error") == envelope["properties"]["error"]
        and "error" in own.get("required", [])
    )


@pytest.mark.parametrize("name", SERVICES)
def test_every_operation_declares_its_error_statuses(name: str, tmp_path: Path) -> None:
    doc = app_of(name, tmp_path).openapi()
    assert "HTTPValidationError" not in str(doc), "FastAPI's own 422 schema is replaced"
    assert "members[0].name" in doc["info"]["description"], "the field path format"
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    detail = doc["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message", "message_ja", "fields"}
    checked = 0
    for method, path, op in operations(doc):
        declared = {int(s) for s in op["responses"] if s.isdigit() and int(s) >= 400}
        params = op.get("parameters", [])
        where = f"{method} {path}"
        expected = {422}
        if not path.startswith("/health"):
            expected |= {401, 403}
        if any(p["in"] == "path" for p in params):
            expected.add(404)
        if "requestBody" in op:
            expected |= {400, 413, 415}
        if method == "POST":
            expected.add(409)  # a write: someone wrote meanwhile; Idempotency-Key in use
        if any(p["in"] == "header" and p["name"].lower() == "if-match" for p in params):
            expected.add(412)
        assert expected <= declared, f"{where} does not declare {sorted(expected - declared)}"
        for status in declared - {503}:
            assert is_envelope(doc, schema_of(op, status)), f"{where} {status}"
        checked += 1
    assert checked >= 3  # the health checks and the service's own routes


def check(
    doc: dict[str, Any], response: httpx.Response, status: int, op: str | None
) -> dict[str, Any]:
    """``response`` has ``status``, which ``op`` (``"POST /path/{id}"``) declares, and a
    body valid against the declared schema (the envelope, where no route matched)."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    schema = ERROR
    if op is not None:
        method, path = op.split(" ", 1)
        declared = doc["paths"][path][method.lower()]["responses"]
        assert str(status) in declared, f"{op} does not declare {status}"
        schema = schema_of(doc["paths"][path][method.lower()], status)
    body = response.json()
    jsonschema.validate(body, {**schema, "components": doc["components"]})
    jsonschema.validate(body, {**ERROR, "components": doc["components"]})
    err: dict[str, Any] = body["error"]
    assert err["message"] and err["message_ja"]
    return err


def fields(err: dict[str, Any]) -> list[str]:
    return [f["field"] for f in err["fields"]]


async def test_errors_a_caller_meets_have_the_envelope(
    tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    async with running_system(
        "sqlite", tmp_path, "", kafka_bootstrap, max_request_bytes=20_000
    ) as system:
        await _intake(system)
        await _coordination(system)


async def _intake(system: System) -> None:
    staff = system.client("intake", "agency-a", "staff-a", Role.STAFF)
    doc = json_of(await staff.get("/openapi.json"), 200)

    # The framework's own: unknown route, wrong method (Allow kept).
    err = check(doc, await staff.get("/no-such-route"), 404, None)
    assert err["code"] == "route_not_found"
    wrong = await staff.delete("/households/search")
    assert check(doc, wrong, 405, None)["code"] == "method_not_allowed"
    assert wrong.headers["allow"] == "GET"

    # Unreadable bodies: invalid JSON names the line and column, not a field.
    json_type = {"content-type": "application/json"}
    broken = await staff.post(
        "/consultations", content=b'{\n  "window": 1,\n  x}', headers=json_type
    )
    err = check(doc, broken, 400, "POST /consultations")
    assert err["code"] == "invalid_json"
    assert "line 3, column 3" in err["message"] and "3 行 3 文字目" in err["message_ja"]
    assert err["fields"] == []
    latin = await staff.post(
        "/consultations", content='{"summary": "é"}'.encode("latin-1"), headers=json_type
    )
    assert check(doc, latin, 400, "POST /consultations")["code"] == "unreadable_body"
    text = await staff.post(
        "/consultations", content=b"summary=x", headers={"content-type": "text/plain"}
    )
    assert check(doc, text, 415, "POST /consultations")["code"] == "unsupported_media_type"
    huge = await staff.post("/consultations", json={**CONSULTATION, "summary": "あ" * 10_000})
    assert check(doc, huge, 413, "POST /consultations")["code"] == "request_too_large"

    # Authentication and roles.
    anonymous = httpx.AsyncClient(base_url=system.services["intake"].url)
    system.clients.append(anonymous)
    assert check(doc, await anonymous.get("/inbox"), 401, "GET /inbox")["code"] == "unauthenticated"
    forged = await anonymous.get("/inbox", headers={"Authorization": "Bearer not-a-token"})
    assert check(doc, forged, 401, "GET /inbox")["code"] == "token_invalid"
    auditor = system.client("intake", "agency-a", "auditor-a", Role.AUDITOR)
    refused = await auditor.post("/consultations", json=CONSULTATION)
    assert check(doc, refused, 403, "POST /consultations")["code"] == "forbidden_role"

    # Field paths, one way: list indices in brackets, nested names dotted, headers by
    # their HTTP name, query parameters by name.
    bad = await staff.post("/consultations", json={**CONSULTATION, "concerns": ["care", "nope"]})
    assert fields(check(doc, bad, 422, "POST /consultations")) == ["concerns[1]"]
    nameless = await staff.post("/households", json={"members": [{"name": "甲"}, {"kana": "おつ"}]})
    assert fields(check(doc, nameless, 422, "POST /households")) == ["members[1].name"]
    limit = await staff.get("/consultations", params={"limit": "many"})
    assert fields(check(doc, limit, 422, "GET /consultations")) == ["limit"]
    nul = await staff.get("/consultations", params={"household_id": "a\x00b"})
    assert fields(check(doc, nul, 422, "GET /consultations")) == ["household_id"]
    nul_body = await staff.post(
        "/households", json={"members": [{"name": "甲"}, {"name": "乙", "kana": "お\x00つ"}]}
    )
    assert fields(check(doc, nul_body, 422, "POST /households")) == ["members[1].kana"]
    key = await staff.post("/consultations", json=CONSULTATION, headers={"Idempotency-Key": "a b"})
    assert fields(check(doc, key, 422, "POST /consultations")) == ["Idempotency-Key"]

    # Records: unknown ids, If-Match, a domain rule's conflict.
    received = json_of(await staff.post("/consultations", json=CONSULTATION), 201)
    cid = received["consultation_id"]
    missing = await staff.get("/consultations/no-such-consultation")
    assert check(doc, missing, 404, "GET /consultations/{consultation_id}")["code"] == (
        "consultation_not_found"
    )
    handled = "POST /consultations/{consultation_id}/handled"
    not_a_version = await staff.post(
        f"/consultations/{cid}/handled", headers={"If-Match": "x" * 300}
    )
    assert fields(check(doc, not_a_version, 422, handled)) == ["If-Match"]
    stale = await staff.post(f"/consultations/{cid}/handled", headers={"If-Match": "0"})
    assert stale.status_code in (409, 412)
    check(doc, stale, stale.status_code, handled)
    json_of(await staff.post(f"/consultations/{cid}/handled"), 200)
    again = await staff.post(f"/consultations/{cid}/handled")
    assert check(doc, again, 409, handled)["code"] == "outcome_already_decided"


async def _coordination(system: System) -> None:
    coordinator = system.client("coordination", "agency-a", "coord-a", Role.COORDINATOR)
    doc = json_of(await coordinator.get("/openapi.json"), 200)
    check(doc, await coordinator.get("/cases/no-such-case"), 404, "GET /cases/{case_id}")
    limit = await coordinator.get("/cases", params={"limit": 0})
    assert fields(check(doc, limit, 422, "GET /cases")) == ["limit"]
    operator = system.client("coordination", "agency-a", "op-a", Role.OPERATOR)
    check(doc, await operator.get("/cases"), 403, "GET /cases")
    anonymous = httpx.AsyncClient(base_url=system.services["coordination"].url)
    system.clients.append(anonymous)
    check(doc, await anonymous.get("/cases"), 401, "GET /cases")
    assert fields(check(doc, await coordinator.post("/cases"), 422, "POST /cases")) == ["body"]
    unknown = await coordinator.post(
        "/cases",
        json={
            "household_id": "no-such-household",
            "main_agency": "agency-a",
            "concerns": ["care"],
            "reason": "8050",
        },
    )
    assert fields(check(doc, unknown, 422, "POST /cases")) == ["household_id"]
    check(doc, await coordinator.delete("/cases"), 405, None)
