"""Agency commands: record the kind of window an agency is, and register its community
places (まちの保健室, 地域の縁側, つながるステーション, …). Only the agency itself does."""

from __future__ import annotations

import uuid

from pydantic import Field

from kyosei_events import EventStore
from kyosei_events.catalogue.intake import PlaceKind, Window
from kyosei_platform.api import Name, RequestModel
from kyosei_platform.application import (
    Change,
    CommandContext,
    forbidden,
    now,
    retry_on_conflict,
    stream_id,
)

from ..domain import agency as domain


def stream(agency_id: str) -> str:
    return stream_id("agency", agency_id)


class RecordWindow(RequestModel):
    """What kind of window the agency is (not a community place: register those)."""

    window: Window


class RegisterPlace(RequestModel):
    """A community place of the agency where residents drop in and consult."""

    name: Name = Field(description="e.g. まちの保健室 桔梗が丘")
    kind: PlaceKind


async def load_agency(store: EventStore, agency_id: str) -> domain.Agency:
    """The agency as recorded (an agency that recorded nothing has no window and no places)."""
    events, _ = await store.load(stream(agency_id))
    state = domain.Agency(agency_id)
    for d in events:
        state.evolve(d.event)
    return state


async def agency_in(ctx: CommandContext, agency_id: str) -> domain.Agency:
    """The agency, read in the command's transaction (a policy's own, if any)."""
    return await ctx.load(stream(agency_id), lambda: domain.Agency(agency_id))


def _own(ctx: CommandContext, agency_id: str) -> None:
    if ctx.agency_id != agency_id:
        raise forbidden(
            "not_your_agency",
            f"only agency {agency_id} records its own window and places",
            "窓口の種別と地域の相談の場を登録できるのはその機関だけです",
        )


@retry_on_conflict
async def record_window(
    ctx: CommandContext, agency_id: str, cmd: RecordWindow, if_match: int | None = None
) -> domain.Agency:
    """相談窓口の種別登録."""
    _own(ctx, agency_id)
    state = await agency_in(ctx, agency_id)
    event = domain.record_window(state, cmd.window, now())
    await ctx.save(Change(state, stream(agency_id), [event], agency_id, if_match))
    return state


@retry_on_conflict
async def register_place(
    ctx: CommandContext, agency_id: str, cmd: RegisterPlace
) -> tuple[domain.Agency, str]:
    """地域の相談の場の登録: returns the agency and the new place's id."""
    _own(ctx, agency_id)
    state = await agency_in(ctx, agency_id)
    place_id = str(uuid.uuid4())
    event = domain.register_place(state, place_id, cmd.name, cmd.kind, now())
    await ctx.save(Change(state, stream(agency_id), [event], agency_id))
    return state, place_id
