"""A service's routes reach the app as one list (kyosei_platform.http.add_routes): the
routers it includes plainly are spread out, one included with settings of its own stays
included, and every route answers as it did."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from kyosei_coordination.app import service as coordination
from kyosei_intake.app import service as intake
from kyosei_platform.http import add_routes


def _service_router() -> APIRouter:
    cases = APIRouter(prefix="/cases", tags=["cases"])

    @cases.get("/{case_id}")
    async def one_case(case_id: str) -> dict[str, str]:
        return {"case": case_id}

    deep = APIRouter(prefix="/{case_id}/notes")  # under /cases: the inclusion adds it

    @deep.get("")
    async def notes(case_id: str) -> dict[str, str]:
        return {"notes_of": case_id}

    cases.include_router(deep)
    versioned = APIRouter()

    @versioned.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "v1"}

    router = APIRouter()
    router.include_router(cases)
    router.include_router(versioned, prefix="/v1")  # a prefix of its own: kept included
    return router


async def test_included_routers_are_spread_and_still_answer() -> None:
    app = FastAPI()
    add_routes(app, _service_router())
    kept = [r for r in app.router.routes if hasattr(r, "original_router")]
    assert len(kept) == 2  # the notes (under /cases) and /v1: inclusions that add a prefix
    spread = [r.path for r in app.router.routes if isinstance(r, APIRoute)]
    assert spread == ["/cases/{case_id}"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/cases/c1")).json() == {"case": "c1"}
        assert (await c.get("/cases/c1/notes")).json() == {"notes_of": "c1"}
        assert (await c.get("/v1/ping")).json() == {"pong": "v1"}
        assert (await c.get("/nowhere")).status_code == 404
    # The published document is the same as with FastAPI's own inclusion.
    included = FastAPI()
    included.include_router(_service_router())
    assert app.openapi()["paths"] == included.openapi()["paths"]


def test_every_route_of_the_services_is_spread() -> None:
    for service in (intake, coordination):
        app = FastAPI()
        add_routes(app, service.router)
        left = [r for r in app.router.routes if hasattr(r, "original_router")]
        assert left == [], service.name
        paths = {r.path for r in app.router.routes if isinstance(r, APIRoute)}
        included = FastAPI()
        included.include_router(service.router)
        assert app.openapi() == included.openapi(), service.name
        assert len(paths) > 10
