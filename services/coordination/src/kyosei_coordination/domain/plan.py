"""A case's assessment (アセスメント), support plan (支援プラン), reviews (プラン評価) and
requests to the other pillars (参加支援・アウトリーチへの依頼): the pure rules.

Streams (see :mod:`kyosei_coordination.plans.commands`):

- ``assessment-<case_id>``: AssessmentRecorded, one per version;
- ``plan-<case_id>``: SupportPlanAdopted with one RoleAssigned per action, for each
  version, and PlanReviewed (a review is checked against the plan version in force
  when it is written, in the same stream, so neither can slip past the other);
- ``request-<request_id>``: one request, OutreachRequested or ParticipationRequested
  (published), then the store-only ActionRequestMade that links it to the plan's action
  (store-only events come after the published ones of their stream, so the chain of
  what is published has no gaps).

Who writes (:func:`may_write`): a coordinator, or staff of the case's main agency.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from kyosei_events.catalogue.coordination import (
    ActionRequestMade,
    Assessment,
    AssessmentRecorded,
    GoalOutline,
    MeetingKind,
    OutreachRequested,
    ParticipationRequested,
    Plan,
    PlanGoal,
    PlanReviewed,
    RequestKind,
    ReviewScores,
    RoleAssigned,
    SupportPlanAdopted,
)
from kyosei_events.model import DomainEvent
from kyosei_platform.application import Rejected, forbidden, invalid, wrong_state
from kyosei_platform.identity import Identity, Role

from .case import Case
from .meeting import Meeting


def may_write(actor: Identity | None, case: Case) -> None:
    """Assessment, plan, reviews and requests: a coordinator or the case's main agency
    (403 for anyone else)."""
    if actor is None or actor.role is Role.COORDINATOR:
        return
    if actor.role is Role.STAFF and actor.agency_id == case.main_agency:
        return
    raise forbidden(
        "not_case_coordinator",
        "only a coordinator or staff of the case's main coordinating agency may record "
        "its assessment, plan, reviews and requests",
        "アセスメント・プラン・評価・依頼の登録はコーディネーターまたは主担当機関の職員のみが行えます",
    )


def members_outside(field_name: str, household: Collection[str], member_ids: Sequence[str]) -> None:
    """422 naming ``field_name`` when a member is not of the case's household."""
    outside = [m for m in member_ids if m not in household]
    if outside:
        raise invalid(
            field_name,
            "member_not_in_household",
            f"not members of the case's household: {', '.join(outside)}",
            f"ケースの世帯の構成員ではありません: {', '.join(outside)}",
        )


def not_in_future(field_name: str, on: date, today: date) -> None:
    if on > today:
        raise invalid(
            field_name,
            "date_in_future",
            f"{field_name} {on.isoformat()} is in the future (today is {today.isoformat()})",
            f"{field_name}に未来の日付は指定できません",
        )


def held_multi_layered(field_name: str, meeting: Meeting, case_id: str) -> None:
    """A plan is adopted and reviewed at a held 重層的支援会議 of the same case."""
    if not (
        meeting.exists
        and meeting.case_id == case_id
        and meeting.kind is MeetingKind.MULTI_LAYERED
        and meeting.held
    ):
        raise invalid(
            field_name,
            "not_a_held_multi_layered_meeting",
            f"meeting {meeting.meeting_id} is not a held multi_layered meeting "
            f"(重層的支援会議) of case {case_id}",
            "同じケースの開催済みの重層的支援会議を指定してください",
        )


# --------------------------------------------------------------------------------------
# Assessment
# --------------------------------------------------------------------------------------


@dataclass
class AssessmentHistory:
    """Every version of a case's assessment, oldest first."""

    case_id: str
    versions: list[AssessmentRecorded] = field(default_factory=list)
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    def evolve(self, event: DomainEvent) -> None:
        if isinstance(event, AssessmentRecorded):
            self.versions.append(event)
        self.version += 1

    def as_of(self, on: date) -> AssessmentRecorded | None:
        """The newest version assessed on or before ``on``."""
        found = [v for v in self.versions if v.assessed_on <= on]
        return max(found, key=lambda v: (v.assessed_on, v.version)) if found else None


def record_assessment(
    state: AssessmentHistory,
    *,
    household_id: str | None,
    household_members: Collection[str],
    assessed_on: date,
    assessment: Assessment,
    agency_id: str,
    today: date,
    now: datetime,
) -> list[DomainEvent]:
    """A new version of the assessment of the whole household."""
    not_in_future("assessed_on", assessed_on, today)
    for i, m in enumerate(assessment.members):
        members_outside(f"assessment.members[{i}].member_id", household_members, [m.member_id])
    return [
        AssessmentRecorded(
            case_id=state.case_id,
            household_id=household_id,
            version=len(state.versions) + 1,
            assessed_on=assessed_on,
            assessment=assessment,
            recorded_by=agency_id,
            recorded_at=now,
        )
    ]


# --------------------------------------------------------------------------------------
# Support plan and reviews
# --------------------------------------------------------------------------------------


@dataclass
class PlanVersion:
    adopted: SupportPlanAdopted
    roles: list[RoleAssigned] = field(default_factory=list)

    @property
    def number(self) -> int:
        return self.adopted.version

    def goal_ids(self) -> list[str]:
        return [g.goal_id for g in self.adopted.goals]

    def action_ids(self) -> list[str]:
        return [r.action_id for r in self.roles]

    def agencies(self) -> set[str]:
        return {r.responsible_agency for r in self.roles}


@dataclass
class SupportPlan:
    """Every adopted version of a case's plan, with its role assignments and reviews.
    ``version`` is the stream's; ``current`` the newest plan version."""

    case_id: str
    versions: list[PlanVersion] = field(default_factory=list)
    reviews: list[PlanReviewed] = field(default_factory=list)
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def current(self) -> PlanVersion | None:
        return self.versions[-1] if self.versions else None

    @property
    def plan_version(self) -> int:
        """The newest plan version (0: none adopted): the plan's entity tag."""
        return self.versions[-1].number if self.versions else 0

    def evolve(self, event: DomainEvent) -> None:
        match event:
            case SupportPlanAdopted():
                self.versions.append(PlanVersion(event))
            case RoleAssigned():
                for v in self.versions:
                    if v.number == event.plan_version:
                        v.roles.append(event)
            case PlanReviewed():
                self.reviews.append(event)
        self.version += 1

    def as_of(self, on: date | None) -> PlanVersion | None:
        """The version in force on ``on`` (the newest adopted on or before it); None:
        the newest version."""
        if on is None:
            return self.current
        found = [v for v in self.versions if v.adopted.adopted_on <= on]
        return max(found, key=lambda v: (v.adopted.adopted_on, v.number)) if found else None


def plan_not_adopted(case_id: str) -> Rejected:
    return wrong_state(
        "plan_not_adopted",
        f"case {case_id} has no adopted support plan yet (a review before adoption)",
        f"ケース{case_id}の支援プランはまだ決定されていません（決定前の評価）",
        "adopt the plan first (PUT /cases/{case_id}/plan)",
        "先に支援プランを決定してください",
    )


def _unique(ids: Sequence[str], paths: Sequence[str], code: str, what: str, what_ja: str) -> None:
    seen: set[str] = set()
    for ident, path in zip(ids, paths, strict=True):
        if ident in seen:
            raise invalid(
                path, code, f"{what} {ident} appears twice", f"{what_ja}{ident}が重複しています"
            )
        seen.add(ident)


def adopt(
    state: SupportPlan,
    *,
    household_id: str | None,
    household_members: Collection[str],
    meeting_id: str | None,
    adopted_on: date,
    review_on: date,
    plan: Plan,
    agency_id: str,
    now: datetime,
) -> list[DomainEvent]:
    """A new version of the plan (the first adoption or a revision): SupportPlanAdopted
    and one RoleAssigned per action. Goals need an approach, actions a responsible
    agency; goal and action ids are unique within the version."""
    if not plan.goals:
        raise invalid(
            "goals",
            "plan_without_goals",
            "a plan needs at least one goal",
            "目標を1つ以上指定してください",
        )
    if review_on < adopted_on:
        raise invalid(
            "review_on",
            "review_before_adoption",
            f"review_on {review_on.isoformat()} is before adopted_on {adopted_on.isoformat()}",
            "評価予定日は決定日以降の日付を指定してください",
        )
    current = state.current
    if current is not None and adopted_on < current.adopted.adopted_on:
        raise invalid(
            "adopted_on",
            "adopted_before_current_version",
            f"adopted_on {adopted_on.isoformat()} is before the current version "
            f"{current.number}'s ({current.adopted.adopted_on.isoformat()})",
            "決定日は現在の版の決定日以降の日付を指定してください",
        )
    _unique(
        [g.goal_id for g in plan.goals],
        [f"goals[{i}].goal_id" for i in range(len(plan.goals))],
        "duplicate_goal",
        "goal id",
        "目標ID",
    )
    actions = [(i, j, a) for i, g in enumerate(plan.goals) for j, a in enumerate(g.actions)]
    _unique(
        [a.action_id for _, _, a in actions],
        [f"goals[{i}].actions[{j}].action_id" for i, j, _ in actions],
        "duplicate_action",
        "action id",
        "取組ID",
    )
    for i, g in enumerate(plan.goals):
        members_outside(f"goals[{i}].member_ids", household_members, g.member_ids)
    number = state.plan_version + 1
    events: list[DomainEvent] = [
        SupportPlanAdopted(
            case_id=state.case_id,
            household_id=household_id,
            version=number,
            meeting_id=meeting_id,
            adopted_on=adopted_on,
            review_on=review_on,
            goals=[_outline(g) for g in plan.goals],
            plan=plan,
            adopted_by=agency_id,
            adopted_at=now,
        )
    ]
    events += [
        RoleAssigned(
            case_id=state.case_id,
            household_id=household_id,
            plan_version=number,
            goal_id=g.goal_id,
            action_id=a.action_id,
            responsible_agency=a.responsible_agency,
            due_on=a.due_on,
            task=a.text,
            assigned_at=now,
        )
        for g in plan.goals
        for a in g.actions
    ]
    return events


def _outline(goal: PlanGoal) -> GoalOutline:
    return GoalOutline(
        goal_id=goal.goal_id,
        approaches=goal.approaches,
        responsible_agencies=list(dict.fromkeys(a.responsible_agency for a in goal.actions)),
    )


def review(
    state: SupportPlan,
    *,
    review_id: str,
    household_id: str | None,
    meeting_id: str | None,
    reviewed_on: date,
    next_review_on: date,
    scores: ReviewScores,
    agency_id: str,
    today: date,
    now: datetime,
) -> list[DomainEvent]:
    """A review of the plan version in force: every goal of it reviewed once, both axes
    scored, the next review after this one."""
    current = state.current
    if current is None:
        raise plan_not_adopted(state.case_id)
    not_in_future("reviewed_on", reviewed_on, today)
    if next_review_on <= reviewed_on:
        raise invalid(
            "next_review_on",
            "next_review_not_after_review",
            f"next_review_on {next_review_on.isoformat()} must be after reviewed_on "
            f"{reviewed_on.isoformat()}",
            "次回評価日は評価日より後の日付を指定してください",
        )
    _unique(
        [s.area.value for s in scores.self_reliance],
        [f"self_reliance[{i}].area" for i in range(len(scores.self_reliance))],
        "duplicate_area",
        "area",
        "領域",
    )
    goal_ids = current.goal_ids()
    for i, g in enumerate(scores.goals):
        if g.goal_id not in goal_ids:
            raise invalid(
                f"goals[{i}].goal_id",
                "unknown_goal",
                f"goal {g.goal_id} is not a goal of plan version {current.number}",
                f"目標{g.goal_id}は現在の支援プラン（第{current.number}版）にありません",
            )
    _unique(
        [g.goal_id for g in scores.goals],
        [f"goals[{i}].goal_id" for i in range(len(scores.goals))],
        "duplicate_goal",
        "goal id",
        "目標ID",
    )
    missing = [g for g in goal_ids if g not in {r.goal_id for r in scores.goals}]
    if missing:
        raise invalid(
            "goals",
            "goal_not_reviewed",
            f"every goal of plan version {current.number} is reviewed; missing: "
            f"{', '.join(missing)}",
            f"支援プランの全ての目標を評価してください。未評価: {', '.join(missing)}",
        )
    return [
        PlanReviewed(
            review_id=review_id,
            case_id=state.case_id,
            household_id=household_id,
            plan_version=current.number,
            meeting_id=meeting_id,
            reviewed_on=reviewed_on,
            goal_progress={g.goal_id: g.progress for g in scores.goals},
            next_review_on=next_review_on,
            review=scores,
            reviewed_by=agency_id,
            reviewed_at=now,
        )
    ]


def action_of_current(field_name: str, state: SupportPlan, action_id: str) -> None:
    """A request from a plan action names an action of the version in force."""
    current = state.current
    if current is None or action_id not in current.action_ids():
        raise invalid(
            field_name,
            "unknown_action",
            f"{action_id} is not an action of the case's current support plan",
            f"{action_id}は現在の支援プランの取組にありません",
        )


# --------------------------------------------------------------------------------------
# Requests to the other pillars
# --------------------------------------------------------------------------------------


@dataclass
class CaseRequest:
    """One request a case made to outreach or participation support."""

    request_id: str
    made: ActionRequestMade | None = None
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    def evolve(self, event: DomainEvent) -> None:
        if isinstance(event, ActionRequestMade):
            self.made = event
        self.version += 1


def request(
    plan: SupportPlan,
    *,
    household_members: Collection[str],
    asked: OutreachRequested | ParticipationRequested,
    action_id: str | None,
    member_id: str | None,
) -> list[DomainEvent]:
    """A request to another pillar (published) and the store-only ActionRequestMade that
    links it to the plan action it came from (an action of the version in force)."""
    if action_id is not None:
        action_of_current("action_id", plan, action_id)
    if member_id is not None:
        members_outside("member_id", household_members, [member_id])
    if isinstance(asked, OutreachRequested):
        kind, to_agency = RequestKind.OUTREACH, asked.outreach_agency
    else:
        kind, to_agency = RequestKind.PARTICIPATION, asked.participation_agency
    return [
        asked,
        ActionRequestMade(
            case_id=plan.case_id,
            request_id=asked.request_id,
            kind=kind,
            action_id=action_id,
            to_agency=to_agency,
            requested_at=asked.requested_at,
        ),
    ]
