"""Members' life changes (death, moving out or in, birth, facility stays) and today's
state of each person, computed from them.

Pure functions shared by intake (its household aggregate) and the household directory
every service keeps. A person's state is the replay of their changes in the order of
their effective dates (then the order they were recorded in), leaving out retracted
ones: a change recorded late, or a correction, gives the same state as if it had been
recorded in time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from kyosei_events import DomainEvent
from kyosei_events.catalogue.intake import (
    MemberDeparted,
    MemberDied,
    MemberFacilityStayEnded,
    MemberFacilityStayStarted,
    MemberJoined,
)

# The life-change events, by the kind name the directory stores.
LIFE_EVENTS: dict[str, type[DomainEvent]] = {
    "died": MemberDied,
    "departed": MemberDeparted,
    "joined": MemberJoined,
    "facility_started": MemberFacilityStayStarted,
    "facility_ended": MemberFacilityStayEnded,
}


@dataclass(frozen=True)
class LifeChange:
    """One life change of a member, as every service knows it (ids, kinds, dates)."""

    change_id: str
    member_id: str
    kind: str  # a key of LIFE_EVENTS
    on: date
    detail: str | None  # the reason (departed, joined) or the facility kind (facility_started)
    seq: int  # order of recording, to break ties between changes of one date
    retracted: bool = False


def life_change(event: DomainEvent, seq: int) -> LifeChange | None:
    """The life change an event records (None for any other event)."""
    match event:
        case MemberDied():
            return LifeChange(event.change_id, event.member_id, "died", event.died_on, None, seq)
        case MemberDeparted():
            return LifeChange(
                event.change_id,
                event.member_id,
                "departed",
                event.departed_on,
                event.reason.value,
                seq,
            )
        case MemberJoined():
            return LifeChange(
                event.change_id,
                event.member_id,
                "joined",
                event.joined_on,
                event.reason.value,
                seq,
            )
        case MemberFacilityStayStarted():
            return LifeChange(
                event.change_id,
                event.member_id,
                "facility_started",
                event.started_on,
                event.facility.value,
                seq,
            )
        case MemberFacilityStayEnded():
            return LifeChange(
                event.change_id, event.member_id, "facility_ended", event.ended_on, None, seq
            )
    return None


@dataclass(frozen=True)
class MemberStatus:
    """A person's state on a date: alive or deceased, living in the household or not,
    in a facility or not, with the dates that led there."""

    deceased_on: date | None = None
    living_in_household: bool = True
    departed_on: date | None = None
    departure_reason: str | None = None
    joined_on: date | None = None
    joined_reason: str | None = None
    facility: str | None = None
    facility_since: date | None = None

    @property
    def deceased(self) -> bool:
        return self.deceased_on is not None


def status_of(changes: Iterable[LifeChange], on: date | None = None) -> MemberStatus:
    """A person's state after every change they went through (up to ``on``, if given)."""
    s: dict[str, object] = {}
    for c in sorted(changes, key=lambda c: (c.on, c.seq)):
        if c.retracted or (on is not None and c.on > on):
            continue
        match c.kind:
            case "died":
                s.update(deceased_on=c.on, facility=None, facility_since=None)
            case "departed":
                s.update(living_in_household=False, departed_on=c.on, departure_reason=c.detail)
            case "joined":
                s.update(living_in_household=True, joined_on=c.on, joined_reason=c.detail)
            case "facility_started":
                s.update(facility=c.detail, facility_since=c.on)
            case "facility_ended":
                s.update(facility=None, facility_since=None)
    return MemberStatus(**s)  # type: ignore[arg-type]
