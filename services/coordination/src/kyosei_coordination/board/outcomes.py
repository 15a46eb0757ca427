"""What other pillars send back onto a case (依頼の結果): an outreach started for the
case (intake OutreachStarted with origin ``coordination``), that outreach's end, a
participation match naming the case. Each is a RequestOutcomeReceived on the case's own
stream; a redelivered source event records nothing (``source_event_id``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from kyosei_events.catalogue.coordination import OutcomeKind, RequestOutcomeReceived
from kyosei_events.model import DomainEvent
from kyosei_platform.application import Change, CommandContext, now

from ..commands import stream, subject_of
from ..domain.case import Case


@dataclass
class CaseOutcomes(Case):
    """The case, and the source events whose outcome it already received."""

    sources: set[str] = field(default_factory=set)

    def evolve(self, event: DomainEvent) -> None:
        if isinstance(event, RequestOutcomeReceived):
            self.sources.add(event.source_event_id)
        super().evolve(event)


def receive(
    state: CaseOutcomes,
    *,
    kind: OutcomeKind,
    ref_id: str,
    agency_id: str,
    source_event_id: str,
    at: datetime,
) -> list[DomainEvent]:
    """The outcome, once: nothing for a case that does not exist or a source event
    already received."""
    if not state.exists or source_event_id in state.sources:
        return []
    return [
        RequestOutcomeReceived(
            case_id=state.case_id,
            kind=kind,
            ref_id=ref_id,
            agency_id=agency_id,
            source_event_id=source_event_id,
            occurred_at=at,
        )
    ]


async def receive_outcome(
    ctx: CommandContext,
    case_id: str,
    *,
    kind: OutcomeKind,
    ref_id: str,
    agency_id: str,
    source_event_id: str,
) -> list[DomainEvent]:
    """Record the outcome on the case (on the case it was merged into, if it was)."""
    state = await ctx.load(stream(case_id), lambda: CaseOutcomes(case_id))
    if state.merged_into is not None:
        case_id = state.merged_into
        state = await ctx.load(stream(case_id), lambda: CaseOutcomes(case_id))
    events = receive(
        state,
        kind=kind,
        ref_id=ref_id,
        agency_id=agency_id,
        source_event_id=source_event_id,
        at=now(),
    )
    if events:
        await ctx.save(Change(state, stream(case_id), events, subject_of(state)))
    return events
