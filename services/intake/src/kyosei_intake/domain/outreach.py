"""The outreach case (アウトリーチ): reaching someone who does not come.

It records every contact attempt and how the relationship stands over time. It may
run for years with no resolution (つながり続ける支援); ending it is optional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.intake import (
    ContactMethod,
    ContactResult,
    OutreachContactRecorded,
    OutreachEnded,
    OutreachEndReason,
    OutreachOrigin,
    OutreachStarted,
    RelationshipStage,
    RelationshipStageChanged,
)
from kyosei_events.model import DomainEvent
from kyosei_platform.application import invalid, wrong_state


@dataclass
class Contact:
    attempt: int
    method: ContactMethod
    result: ContactResult
    note: str | None
    contacted_at: datetime


@dataclass
class StageChange:
    stage: RelationshipStage
    note: str | None
    changed_at: datetime


@dataclass
class Outreach:
    outreach_id: str
    household_id: str | None = None
    member_id: str | None = None
    agency_id: str = ""
    origin: OutreachOrigin | None = None
    origin_ref: str | None = None
    concerns: list[Concern] = field(default_factory=list)
    reason: str | None = None
    location: str | None = None
    reporter_name: str | None = None
    reporter_contact: str | None = None
    started_at: datetime | None = None
    stage: RelationshipStage = RelationshipStage.NOT_REACHED
    contacts: list[Contact] = field(default_factory=list)
    stages: list[StageChange] = field(default_factory=list)
    ended_reason: OutreachEndReason | None = None
    ended_at: datetime | None = None
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    def evolve(self, event: DomainEvent) -> None:
        match event:
            case OutreachStarted():
                self.household_id, self.member_id = event.household_id, event.member_id
                self.agency_id, self.origin, self.origin_ref = (
                    event.agency_id,
                    event.origin,
                    event.origin_ref,
                )
                self.concerns = list(event.concerns)
                self.reason, self.location = event.reason, event.location
                self.reporter_name = event.reporter_name
                self.reporter_contact = event.reporter_contact
                self.started_at = event.started_at
            case OutreachContactRecorded():
                self.contacts.append(
                    Contact(
                        event.attempt, event.method, event.result, event.note, event.contacted_at
                    )
                )
            case RelationshipStageChanged():
                self.stage = event.stage
                self.stages.append(StageChange(event.stage, event.note, event.changed_at))
            case OutreachEnded():
                self.ended_reason, self.ended_at = event.reason, event.ended_at
        self.version += 1


def start(started: OutreachStarted, members: frozenset[str]) -> OutreachStarted:
    """Start a case; the member to reach, if named, belongs to its household."""
    if started.member_id is not None and started.household_id is None:
        raise invalid(
            "member_id",
            "member_without_household",
            "name the member only together with their household_id",
            "世帯員を指定するときは household_id も指定してください",
        )
    if started.member_id is not None and started.member_id not in members:
        raise invalid(
            "member_id",
            "member_not_found",
            f"no member {started.member_id} in household {started.household_id}",
            "この世帯にその世帯員はいません",
        )
    return started


def _active(state: Outreach, *, ending: bool = False) -> None:
    """Nothing is recorded on an ended case; the refusal says when it ended and why."""
    if state.ended_at is None:
        return
    on = state.ended_at.date().isoformat()
    reason = state.ended_reason.value if state.ended_reason else "ended"
    raise wrong_state(
        "outreach_ended",
        f"this outreach case already ended on {on} ({reason})",
        f"このアウトリーチは {on} に終了しています",
        "nothing more to do" if ending else "start a new outreach case to reach out again",
        "操作は不要です" if ending else "再開する場合は新しくアウトリーチを開始してください",
    )


def record_contact(
    state: Outreach,
    method: ContactMethod,
    result: ContactResult,
    note: str | None,
    contacted_at: datetime,
) -> OutreachContactRecorded:
    _active(state)
    return OutreachContactRecorded(
        outreach_id=state.outreach_id,
        household_id=state.household_id,
        attempt=len(state.contacts) + 1,
        method=method,
        result=result,
        note=note,
        contacted_at=contacted_at,
    )


def change_stage(
    state: Outreach, stage: RelationshipStage, note: str | None, now: datetime
) -> RelationshipStageChanged:
    _active(state)
    if stage is state.stage:
        raise wrong_state(
            "stage_unchanged",
            f"the relationship is already at stage {stage.value}",
            f"すでに「{stage.label_ja}」の段階です",
            "record a contact instead (POST /outreach/{id}/contacts), or the stage it moved to",
            "接触記録をつけるか、移った段階を指定してください",
        )
    return RelationshipStageChanged(
        outreach_id=state.outreach_id,
        household_id=state.household_id,
        stage=stage,
        previous_stage=state.stage,
        note=note,
        changed_at=now,
    )


def end(
    state: Outreach, reason: OutreachEndReason, note: str | None, now: datetime
) -> OutreachEnded:
    _active(state, ending=True)
    return OutreachEnded(
        outreach_id=state.outreach_id,
        household_id=state.household_id,
        reason=reason,
        note=note,
        ended_at=now,
    )
