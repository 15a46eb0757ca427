"""An agency as intake knows it: what kind of window it is, and its community places.

The kind of window is what a consultation the agency takes up from a resident's
気づき is received at (the agency did not choose a window then: the report came to
it). Community places (まちの保健室, 地域の縁側, つながるステーション, …) are windows
of the agency that runs them: a consultation received there names the place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from kyosei_events.catalogue.intake import (
    AgencyWindowRecorded,
    ConsultationPlaceRegistered,
    PlaceKind,
    Window,
)
from kyosei_events.model import DomainEvent
from kyosei_platform.application import Rejected, invalid


@dataclass
class Place:
    place_id: str
    name: str
    kind: PlaceKind
    registered_at: datetime


@dataclass
class Agency:
    agency_id: str
    window: Window | None = None
    places: dict[str, Place] = field(default_factory=dict)
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def window_for_reports(self) -> Window:
        """The window a consultation taken up from a resident's 気づき is received at:
        the agency's recorded kind, else "other agency" (as before it was recorded)."""
        return self.window or Window.OTHER_AGENCY

    def evolve(self, event: DomainEvent) -> None:
        match event:
            case AgencyWindowRecorded():
                self.window = event.window
            case ConsultationPlaceRegistered():
                self.places[event.place_id] = Place(
                    event.place_id, event.name, event.kind, event.registered_at
                )
        self.version += 1


def record_window(state: Agency, window: Window, now: datetime) -> AgencyWindowRecorded:
    if window is Window.COMMUNITY_PLACE:
        raise invalid(
            "window",
            "place_is_not_an_agency_window",
            "community places are registered as places of an agency "
            "(POST /agencies/{agency_id}/places); choose the agency's own kind of window",
            "地域の相談の場は機関の「場」として登録してください。ここでは機関自身の窓口の種別を選びます",
        )
    if state.window is window:
        raise Rejected(
            "window_unchanged",
            f"agency {state.agency_id} is already recorded as {window.value}",
            "この機関の窓口の種別はすでに同じ内容で登録されています",
        )
    return AgencyWindowRecorded(agency_id=state.agency_id, window=window, recorded_at=now)


def register_place(
    state: Agency, place_id: str, name: str, kind: PlaceKind, now: datetime
) -> ConsultationPlaceRegistered:
    name = name.strip(" \u3000\t\r\n")
    if not name:
        raise invalid("name", "blank", "the place needs a name", "場の名前を入力してください")
    if any(p.name == name for p in state.places.values()):
        raise Rejected(
            "place_already_registered",
            f"agency {state.agency_id} already has a place named {name}",
            "同じ名前の場がすでに登録されています",
        )
    return ConsultationPlaceRegistered(
        place_id=place_id, agency_id=state.agency_id, name=name, kind=kind, registered_at=now
    )
