"""The OpenAPI document of a service: its routes, and for every operation each error
status it can answer, with the one error envelope (:class:`kyosei_platform.errors.Error`)
as the schema.

The statuses are read from the route itself, so that a new route (or a new service)
is documented without declaring them by hand:

- 401 and 403: the route depends on the caller's identity, on a role (``Reader``,
  ``Writer``, ``Command``);
- 404: the path names something by id;
- 400, 413 and 415: the route reads a body (unreadable JSON, over the size limit, not
  JSON);
- 409: the route writes (``Command``: someone wrote meanwhile, a rule about the
  current state, the same ``Idempotency-Key`` still running);
- 412: the route takes the ``If-Match`` header;
- 422: every operation (a field, query parameter or header that is not valid).

A status the route declares itself (``responses=``) keeps its own schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from .api import command_context, reader, writer
from .auth import authenticate
from .errors import Error

ERROR_REF = "#/components/schemas/Error"

DESCRIPTIONS = {
    400: "The body cannot be read: not valid JSON (the message names the line and column) "
    "or not UTF-8.",
    401: "No valid access token (`Authorization: Bearer <token>`).",
    403: "The caller's role, or agency, may not do this.",
    404: "Nothing with that id that the caller may see.",
    409: "A conflict with the current state: someone wrote the same record meanwhile, "
    "a rule about its state, or a request with the same `Idempotency-Key` still running.",
    412: "`If-Match` no longer matches the record: read it again, then retry.",
    413: "The body is over the size limit.",
    415: "The body is not JSON (`Content-Type: application/json`).",
    422: "A field, query parameter or header is not valid: `fields` names each.",
}

ERRORS_SECTION = """

## Errors

Every error answer, of every operation, has one body, the `Error` schema:
`{"error": {"code", "message", "message_ja", "fields": [{"field", "problem",
"problem_ja"}]}}`. `code` is for programs; `message` and `message_ja` say what to do;
`fields` names each field at fault (empty when none is).

A field is named one way wherever it is (body, query, path or header): no location
prefix, names joined by dots, list indices in brackets (`members[0].name`,
`concerns[2]`), and a header by its HTTP name (`If-Match`, `Idempotency-Key`).
Each operation lists the error statuses it can answer.
"""


def _calls(dependant: Dependant) -> Iterable[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _headers(dependant: Dependant) -> Iterable[str]:
    for param in dependant.header_params:
        yield (param.alias or param.name).lower()
    for sub in dependant.dependencies:
        yield from _headers(sub)


def api_routes(routes: Iterable[Any]) -> Iterable[Any]:
    """Every FastAPI route of ``routes`` as served, included routers' too (with their
    prefix in ``path_format``), that the document shows."""
    for route in routing.iter_route_contexts(list(routes)):
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            yield route


def error_statuses(route: Any) -> set[int]:
    """The error statuses ``route`` can answer, read from its parameters and dependencies."""

    calls = set(_calls(route.dependant))
    statuses = {422}
    if authenticate in calls:
        statuses.add(401)
    if calls & {reader, writer, command_context}:
        statuses.add(403)
    if route.dependant.path_params:
        statuses.add(404)
    if route.body_field is not None:
        statuses |= {400, 413, 415}
    if command_context in calls:
        statuses.add(409)
    if "if-match" in set(_headers(route.dependant)):
        statuses.add(412)
    return statuses


def declare_errors(schema: dict[str, Any], routes: Iterable[Any]) -> None:
    """Add each operation's error statuses to ``schema``, with the envelope."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(Error.model_json_schema(ref_template="#/components/schemas/{model}")["$defs"])
    error = Error.model_json_schema(ref_template="#/components/schemas/{model}")
    error.pop("$defs", None)
    components["Error"] = error
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    envelope = {"application/json": {"schema": {"$ref": ERROR_REF}}}
    for route in api_routes(routes):
        operations = schema["paths"].get(route.path_format, {})
        for method in route.methods:
            operation = operations.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(error_statuses(route)):
                own = route.responses.get(status) or route.responses.get(str(status))
                if own and status != 422:
                    responses[str(status)].setdefault("description", DESCRIPTIONS[status])
                    continue
                responses[str(status)] = {
                    "description": DESCRIPTIONS[status],
                    "content": envelope,
                }
            operation["responses"] = dict(sorted(responses.items()))


def install(app: FastAPI, *extensions: Callable[[dict[str, Any]], None]) -> None:
    """``app``'s OpenAPI document: its routes, every error declared, then ``extensions``
    (each changes the document in place)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=(app.description or "") + ERRORS_SECTION,
            routes=app.routes,
        )
        declare_errors(schema, app.routes)
        for extend in extensions:
            extend(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
