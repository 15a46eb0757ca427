"""The HTTP app every service runs: its routes plus health, metrics and error handling."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

import structlog
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest

from . import errors
from .runtime import ServiceRuntime
from .service import Service
from .settings import Settings

REQUESTS = Histogram(
    "kyosei_http_request_seconds",
    "HTTP requests by service, route and status",
    ["service", "method", "route", "status"],
)


def create_app(service: Service, settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(service, settings)

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

    @app.middleware("http")
    async def context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        correlation_id = request.headers.get("x-correlation-id") or str(uuid.uuid4())
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id, service=service.name)
        request.state.correlation_id = correlation_id
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        REQUESTS.labels(
            service.name,
            request.method,
            getattr(route, "path", "unmatched"),
            str(response.status_code),
        ).observe(time.perf_counter() - started)
        response.headers["x-correlation-id"] = correlation_id
        return response

    @app.get("/health/live", tags=["operations"])
    async def live() -> dict[str, str]:
        """The process is up."""
        return {"status": "live"}

    @app.get("/health/ready", tags=["operations"])
    async def ready() -> JSONResponse:
        """Ready when the database, the key vault and Kafka answer."""
        problems = await runtime.ready()
        if problems:
            return JSONResponse({"status": "not_ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(service.router)
    return app


def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]
