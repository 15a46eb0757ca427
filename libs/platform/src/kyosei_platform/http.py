"""The HTTP app every service runs: its routes plus health, metrics and error handling."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import structlog
import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from pydantic_settings import BaseSettings
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import errors, idempotency, openapi, tracing
from .limits import BodyLimit
from .runtime import Runtime, ServiceRuntime, get_runtime
from .service import Service
from .settings import Settings

access_log = structlog.get_logger("kyosei.http")

REQUESTS = Histogram(
    "kyosei_http_request_seconds",
    "HTTP requests by service, route and status",
    ["service", "method", "route", "status"],
)


def create_app(
    service: Service, settings: Settings, service_settings: BaseSettings | None = None
) -> FastAPI:
    runtime = ServiceRuntime(service, settings, service_settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=f"kyosei {service.name}: {service.title}",
        description=service.description,
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    errors.install(app)
    # Innermost middleware: it sees the route's answer as the caller will.
    key_ttl = timedelta(hours=settings.idempotency_key_hours)
    idempotency.install(
        app, idempotency.IdempotencyKeys(runtime.engine, key_ttl), settings.auth_secret
    )
    openapi.install(app, lambda schema: idempotency.document(schema, key_ttl))

    app.add_middleware(RefuseNul)
    # Before any middleware that reads the body (added later is outer): a body over
    # the limit is refused before anything reads it, and inside `RequestContext`, so
    # that the refusal has its request line and correlation id too.
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestContext, service=service.name)

    if runtime.tracer_provider is not None:
        tracing.instrument_app(app, runtime.tracer_provider)

    @app.get("/health/live", tags=["operations"])
    async def live() -> dict[str, str]:
        """The process is up."""
        return {"status": "live"}

    @app.get(
        "/health/ready",
        tags=["operations"],
        responses={
            503: {"description": "Not ready: the database or the key vault does not answer."}
        },
    )
    async def ready() -> JSONResponse:
        """Ready when the database and the key vault answer (else 503). Kafka's state
        (`kafka`: connected, connecting, unreachable) and the relay's (`relay`: leader,
        and the event it is stuck on, if any) are reported but not required: writes
        need only the database, and the relay catches up when Kafka is back."""
        state = await runtime.readiness()
        return JSONResponse(state.body(), status_code=200 if state.ready else 503)

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    add_routes(app, service.router)
    return app


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """The service's routes on the app, as one list: the routers ``router`` includes
    (with no prefix, tags or anything else of their own at inclusion: each route
    already carries its router's) are spread out into it. FastAPI matches a request
    against an included router's routes twice for each level of inclusion, which for
    a service's last routes cost more than the rest of the request's way through the
    app (about 0.1 to 0.2 ms of CPU per request, ``make bench``: commands). A router
    included with settings of its own stays included."""
    app.router.routes.extend(_spread(router))


def _spread(router: APIRouter) -> Iterator[BaseRoute]:
    for route in router.routes:
        inner = getattr(route, "original_router", None)  # an included router
        if isinstance(inner, APIRouter) and _plain(getattr(route, "include_context", None)):
            yield from _spread(inner)
        else:
            yield route


def _plain(context: Any) -> bool:
    """An inclusion that adds nothing to the included router's routes."""
    return (
        context is not None
        and not context.prefix
        and not context.tags
        and not context.dependencies
        and not context.responses
        and not context.callbacks
        and context.deprecated is None
        and context.include_in_schema
        and context.max_body_size is None
    )


class RefuseNul:
    """ASGI middleware: a request with NUL in its path, its query or a JSON string of its
    body answers 422 ``nul_character`` naming the field. NUL is never meaningful text,
    and PostgreSQL cannot store it: refused up front rather than on the way to the
    database. A body it read is handed on as read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        where: str | None = None
        field: str | None = None
        body: bytes | None = None
        if "\x00" in request.url.path:
            where = "the path"
        elif "\x00" in str(request.query_params) or "%00" in request.url.query:
            field = next(
                (k for k, v in request.query_params.multi_items() if "\x00" in k + v), "query"
            )
        elif request.method in ("POST", "PUT", "PATCH"):
            body = await request.body()
            if b"\\u0000" in body:
                field = _nul_field(body)
        if where is None and field is None:
            await self.app(scope, receive if body is None else _replay(body, receive), send)
            return
        named = where or field
        problems = [{"field": field, "problem": "contains NUL", "problem_ja": "NUL 文字を含みます"}]
        response = JSONResponse(
            errors.body(
                "nul_character",
                f"{named} contains a NUL character (\\u0000); remove it",
                f"{named} に NUL 文字 (\\u0000) が含まれています。取り除いてください",
                problems if field else None,
            ),
            status_code=422,
        )
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the app behind a middleware that read the whole ``body``: the
    body once, then whatever the server sends next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class RequestContext:
    """ASGI middleware, the outermost of the app's own: each request gets a correlation
    id (the caller's ``X-Correlation-ID``, else a new one), bound to every log line it
    causes and sent back as ``x-correlation-id``; once answered, it is timed in
    ``kyosei_http_request_seconds`` and logged as one ``http_request`` line."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = Headers(scope=scope).get("x-correlation-id") or str(uuid.uuid4())
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id, service=self.service)
        scope.setdefault("state", {})["correlation_id"] = correlation_id  # request.state
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-correlation-id"] = correlation_id
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            # The route's template, never the path or the query string: those carry
            # ids and search terms (names, addresses, phones). Nor the body.
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            duration = time.perf_counter() - started
            REQUESTS.labels(self.service, method, route, str(status)).observe(duration)
            access_log.info(
                "http_request",
                method=method,
                route=route,
                status=status,
                duration_ms=round(duration * 1000, 1),
            )


def server_config(
    app: FastAPI, settings: Settings, *, log_level: str | None = None
) -> uvicorn.Config:
    """How uvicorn serves ``app``: on the settings' host and port, logging through the
    handler :func:`kyosei_platform.logging.configure` installed (``log_config=None``:
    uvicorn installs no handler of its own, whose lines would be plain text) and
    without its access log (the app writes one ``http_request`` line per request,
    without the query string)."""
    return uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level=log_level or settings.log_level,
        log_config=None,
        access_log=False,
    )


def _nul_field(body: bytes) -> str | None:
    """The path (:func:`kyosei_platform.errors.field_path`) of the first string holding
    NUL in a JSON body, if any."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None  # not JSON: validation reports it

    def walk(value: object, path: str) -> str | None:
        if isinstance(value, str):
            return path or "body" if "\x00" in value else None
        if isinstance(value, dict):
            for k, v in value.items():
                found = walk(k, path) if "\x00" in k else walk(v, f"{path}.{k}" if path else k)
                if found:
                    return found
        if isinstance(value, list):
            for i, v in enumerate(value):
                if found := walk(v, f"{path}[{i}]"):
                    return found
        return None

    return walk(doc, "")


__all__ = ["Runtime", "ServiceRuntime", "create_app", "get_runtime"]
