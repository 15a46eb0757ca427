"""Agencies as intake knows them: the kind of window each is, and its community places
(まちの保健室, 地域の縁側, つながるステーション, …) where consultations are received."""

from __future__ import annotations

from fastapi import APIRouter, Response

from kyosei_platform.api import Command, IfMatch, Reader, tag, with_etag
from kyosei_platform.http import Runtime

from ..commands import agencies as commands
from ..domain.agency import Agency
from ..views import AgencyView, agency_view

router = APIRouter(prefix="/agencies", tags=["agencies 支援関係機関"])


def _answer(response: Response, state: Agency) -> AgencyView:
    tag(response, state.version)
    return agency_view(state)


@router.get("/{agency_id}", response_model=AgencyView, responses=with_etag())
async def get_agency(
    agency_id: str, identity: Reader, runtime: Runtime, response: Response
) -> AgencyView:
    """An agency's kind of window and its community places (no personal data)."""
    return _answer(response, await commands.load_agency(runtime.store, agency_id))


@router.put("/{agency_id}/window", response_model=AgencyView, responses=with_etag())
async def record_window(
    agency_id: str,
    body: commands.RecordWindow,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> AgencyView:
    """相談窓口の種別登録: the caller's own agency records what kind of window it is. A
    consultation it takes up from a resident's 気づき is received at this window."""
    return _answer(response, await commands.record_window(ctx, agency_id, body, if_match))


@router.post(
    "/{agency_id}/places", status_code=201, response_model=AgencyView, responses=with_etag(201)
)
async def register_place(
    agency_id: str, body: commands.RegisterPlace, ctx: Command, response: Response
) -> AgencyView:
    """地域の相談の場の登録: the caller's own agency registers a community place; a
    consultation received there (window community_place or channel drop_in) names it
    by ``place_id``."""
    state, _ = await commands.register_place(ctx, agency_id, body)
    return _answer(response, state)
