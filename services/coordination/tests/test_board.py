"""The coordinator's board, an agency's actions and a case's timeline, built from
coordination's events (appended here to its store as its commands would), read over its
HTTP routes (ASGI: the real auth and error envelope); and the outcomes other pillars
send back onto a case (policies on the in-memory broker)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from kyosei_coordination.board.outcomes import CaseOutcomes, receive
from kyosei_coordination.board.projection import (
    assigned_actions,
    board_cases,
    outreach_links,
    timeline_entries,
)
from kyosei_coordination.projections import metadata as coordination_tables
from kyosei_events import DomainEvent, EventStore, Metadata, NewEvent
from kyosei_events.catalogue.coordination import (
    CaseClosed,
    CaseMergedInto,
    CaseOpened,
    CaseReopened,
    CaseReviewFlagged,
    CaseReviewFlagWithdrawn,
    GoalOutline,
    MeetingRecorded,
    MeetingScheduled,
    MemberSupportEnded,
    OutcomeKind,
    OutreachRequested,
    ParticipationRequested,
    PlanReviewed,
    RequestOutcomeReceived,
    RoleAssigned,
    SupportMeetingHeld,
    SupportPlanAdopted,
)
from kyosei_events.catalogue.intake import (
    OutreachEnded,
    OutreachStarted,
)
from kyosei_events.catalogue.participation import ParticipationMatched
from kyosei_platform.auth import Role
from kyosei_platform.testing import PolicyBus

from .kit import CITY, NOW, Coordination, body, coordination

HOUKATSU = "houkatsu-1"
WELFARE = "welfare-1"
PRIVATE = "PRIVATE-TEXT"  # in every personal field: it must be nowhere on the read side


@dataclass
class Board(Coordination):
    """Coordination with its events appended to its store as its commands would."""

    async def append(self, stream: str, *events: DomainEvent, agency: str = CITY) -> None:
        await self.store.append(
            stream, [NewEvent(e, "h-1", Metadata(agency_id=agency)) for e in events]
        )

    async def case(
        self, case_id: str, household_id: str | None = None, *, at: datetime = NOW
    ) -> str:
        await self.append(
            case_id,
            CaseOpened(
                case_id=case_id,
                household_id=household_id,
                consultation_id=f"k-{case_id}",
                escalated_by=HOUKATSU,
                main_agency=HOUKATSU,
                concerns=["care"],
                reason=f"{PRIVATE} 開始理由",
                opened_at=at,
            ),
        )
        return case_id


def plan(
    case_id: str,
    version: int,
    goals: dict[str, list[str]],
    *,
    review_on: date,
    actions: list[tuple[str, str, str, date | None]] = (),  # type: ignore[assignment]
) -> list[DomainEvent]:
    """SupportPlanAdopted with ``goals`` (goal id -> approaches) and a RoleAssigned per
    action (goal id, action id, agency, due date), every text personal."""
    adopted = SupportPlanAdopted(
        case_id=case_id,
        version=version,
        adopted_on=NOW.date(),
        review_on=review_on,
        goals=[
            GoalOutline(
                goal_id=g,
                approaches=a,
                responsible_agencies=sorted({ag for gg, _, ag, _ in actions if gg == g}),
            )
            for g, a in goals.items()
        ],
        plan={
            "person_wishes": f"{PRIVATE} 本人の希望",
            "goals": [
                {
                    "goal_id": g,
                    "text": f"{PRIVATE} 目標",
                    "approaches": a,
                    "actions": [
                        {"action_id": act, "text": f"{PRIVATE} 行動", "responsible_agency": ag}
                        for gg, act, ag, _ in actions
                        if gg == g
                    ],
                }
                for g, a in goals.items()
            ],
        },
        adopted_by=CITY,
        adopted_at=NOW,
    )
    roles = [
        RoleAssigned(
            case_id=case_id,
            plan_version=version,
            goal_id=g,
            action_id=act,
            responsible_agency=ag,
            due_on=due,
            task=f"task {act} v{version}",
            assigned_at=NOW,
        )
        for g, act, ag, due in actions
    ]
    return [adopted, *roles]


def reviewed(case_id: str, on: date, next_on: date, goal: str = "g1") -> PlanReviewed:
    return PlanReviewed(
        review_id=f"r-{case_id}-{on}",
        case_id=case_id,
        plan_version=1,
        reviewed_on=on,
        goal_progress={goal: "continuing"},
        next_review_on=next_on,
        review={
            "self_reliance": [{"area": "food", "score": 3}],
            "connectedness": 2,
            "connections": [{"kind": "place", "label": f"{PRIVATE} 居場所"}],
            "goals": [{"goal_id": goal, "progress": "continuing", "note": f"{PRIVATE} 所見"}],
            "summary": f"{PRIVATE} 総括",
        },
        reviewed_by=CITY,
        reviewed_at=NOW,
    )


def support_meeting_held(case_id: str) -> SupportMeetingHeld:
    """A 支援会議 held for the case without consent."""
    return SupportMeetingHeld(
        meeting_id="m-1",
        case_id=case_id,
        kind="confidential",
        held_on=NOW.date(),
        convening_agency=CITY,
        participant_agencies=[CITY, HOUKATSU],
        consent_obtained=False,
    )


def ids(cards: list[dict[str, Any]]) -> list[str]:
    return [c["case_id"] for c in cards]


LATER = NOW.date() + timedelta(days=120)  # a board day long after every event


async def test_accompanying_is_never_stalled_and_an_overdue_review_is_counted(
    tmp_path: Path,
) -> None:
    async with coordination(tmp_path, Board) as c:
        quiet = await c.case("case-quiet")  # no plan, nothing for 120 days
        solving = await c.case("case-solving")  # problem solving only
        await c.append(
            solving, *plan(solving, 1, {"g1": ["problem_solving"]}, review_on=date(2027, 1, 1))
        )
        along = await c.case("case-along")  # つながり続ける伴走 and problem solving
        await c.append(
            along,
            *plan(
                along,
                1,
                {"g1": ["staying_connected"], "g2": ["problem_solving"]},
                review_on=date(2027, 1, 1),
            ),
        )
        recent = await c.case("case-recent", at=datetime(2027, 3, 20, tzinfo=UTC))
        city = c.client(CITY, Role.COORDINATOR)
        board = body(await city.get("/board", params={"today": LATER.isoformat()}), 200)
        assert board["as_of"] == LATER.isoformat()
        assert ids(board["accompanying"]) == [along]
        assert ids(board["stalled"]) == [quiet, solving]  # never the accompanied one
        assert recent not in ids(board["stalled"])
        (card,) = [c for c in board["stages"]["planned"] if c["case_id"] == along]
        assert [a["value"] for a in card["approaches"]] == ["problem_solving", "staying_connected"]
        assert card["next_review_on"] == "2027-01-01" and card["plan_version"] == 1
        overdue = {c["case_id"]: c["review_overdue_days"] for c in board["overdue_reviews"]}
        assert overdue == {solving: (LATER - date(2027, 1, 1)).days, along: overdue[along]}
        assert overdue[along] == (LATER - date(2027, 1, 1)).days > 0
        assert set(ids(board["stages"]["assessment"])) == {quiet, recent}
        # The next review is the latest review's: no longer overdue.
        await c.append(along, reviewed(along, date(2027, 3, 1), date(2027, 6, 1)))
        board = body(await city.get("/board", params={"today": LATER.isoformat()}), 200)
        assert ids(board["overdue_reviews"]) == [solving]
        assert ids(board["accompanying"]) == [along]
        (card,) = board["accompanying"]
        assert card["next_review_on"] == "2027-06-01" and card["review_overdue_days"] == 0
        # Before the review date nothing is overdue.
        early = body(await city.get("/board", params={"today": "2026-12-01"}), 200)
        assert early["overdue_reviews"] == [] and early["stalled"] == []


async def test_flags_are_cleared_by_a_later_review_or_withdrawn(tmp_path: Path) -> None:
    async with coordination(tmp_path, Board) as c:
        case_id = await c.case("case-f")
        await c.append(case_id, *plan(case_id, 1, {"g1": ["staying_connected"]}, review_on=LATER))

        def flag(change: str, on: date) -> CaseReviewFlagged:
            return CaseReviewFlagged(
                case_id=case_id,
                member_id="mother",
                change_id=change,
                reason="parent_died",
                occurred_on=on,
                flagged_at=NOW,
            )

        await c.append(case_id, flag("ch-1", date(2026, 12, 1)), flag("ch-2", date(2026, 12, 20)))
        city = c.client(CITY, Role.COORDINATOR)
        (card,) = body(await city.get("/board"), 200)["flagged"]
        assert [f["occurred_on"] for f in card["flags"]] == ["2026-12-01", "2026-12-20"]
        assert card["flags"][0]["reason"]["label_ja"] == "親亡き後（親の死亡）"
        assert card["flags"][0]["member_id"] == "mother"
        # A review on 12-10 clears the flag of 12-01, not the later one.
        await c.append(case_id, reviewed(case_id, date(2026, 12, 10), LATER))
        (card,) = body(await city.get("/board"), 200)["flagged"]
        assert [f["occurred_on"] for f in card["flags"]] == ["2026-12-20"]
        await c.append(
            case_id, CaseReviewFlagWithdrawn(case_id=case_id, change_id="ch-2", withdrawn_at=NOW)
        )
        assert body(await city.get("/board"), 200)["flagged"] == []
        timeline = body(await city.get(f"/cases/{case_id}/timeline"), 200)
        assert timeline[-1]["type"] == "CaseReviewFlagWithdrawn"
        assert timeline[-1]["detail"] == {"reason": "parent_died"}


async def test_closed_and_reopened_cases_merged_cases_and_who_sees_the_board(
    tmp_path: Path,
) -> None:
    async with coordination(tmp_path, Board) as c:
        case_id = await c.case("case-c")
        await c.append(
            case_id, *plan(case_id, 1, {"g1": ["problem_solving"]}, review_on=NOW.date())
        )
        await c.append(
            case_id,
            CaseReviewFlagged(
                case_id=case_id,
                member_id="son",
                change_id="ch",
                reason="member_departed",
                occurred_on=NOW.date(),
                flagged_at=NOW,
            ),
            CaseClosed(
                case_id=case_id,
                reason="moved_away",
                note=f"{PRIVATE} 転居先",
                closed_on=NOW.date(),
                closed_by=CITY,
                closed_at=NOW,
            ),
        )
        merged = await c.case("case-m", "h-2")
        await c.append(
            merged,
            CaseMergedInto(case_id=merged, into_case_id=case_id, household_id="h-2", merged_at=NOW),
        )
        other = await c.case("case-other")
        city = c.client(CITY, Role.COORDINATOR)
        board = body(await city.get("/board", params={"today": LATER.isoformat()}), 200)
        assert ids(board["stages"]["closed"]) == [case_id]
        lists = ("overdue_reviews", "flagged", "stalled", "accompanying", "waiting_for_consent")
        assert all(case_id not in ids(board[k]) for k in lists)
        assert merged not in json.dumps(board)
        assert ids(board["stalled"]) == [other]
        await c.append(
            case_id,
            CaseReopened(
                case_id=case_id, reason=f"{PRIVATE} 再開理由", reopened_by=CITY, reopened_at=NOW
            ),
        )
        board = body(await city.get("/board", params={"today": LATER.isoformat()}), 200)
        assert board["stages"]["closed"] == []
        assert case_id in ids(board["stages"]["planned"])
        assert case_id in ids(board["flagged"]) and case_id in ids(board["overdue_reviews"])
        # Staff: the cases their agency sees; operators: none.
        assert ids(body(await c.client(HOUKATSU).get("/board"), 200)["stages"]["planned"]) == [
            case_id
        ]
        stranger = body(await c.client("clinic").get("/board"), 200)
        assert all(v == [] for v in stranger["stages"].values()) and stranger["stalled"] == []
        refused = body(await c.client("ops", Role.OPERATOR).get("/board"), 403)
        assert refused["error"]["code"] == "forbidden_role"


async def test_a_support_meeting_waits_for_every_concerned_member_s_consent(
    tmp_path: Path,
) -> None:
    async with coordination(tmp_path, Board) as c:
        await c.household("h-1", "mother", "son", by=HOUKATSU)
        case_id = await c.case("case-w", "h-1")
        await c.append(
            case_id,
            support_meeting_held(case_id),
        )
        city = c.client(CITY, Role.COORDINATOR)
        board = body(await city.get("/board"), 200)
        assert ids(board["waiting_for_consent"]) == [case_id]
        assert ids(board["stages"]["support_meeting"]) == [case_id]
        await c.consent("h-1", "mother", [CITY], ["multi_layered_meeting"], HOUKATSU)
        board = body(await city.get("/board"), 200)
        assert ids(board["waiting_for_consent"]) == [case_id]  # the son has not consented
        await c.consent("h-1", "son", [CITY], ["multi_layered_meeting"], HOUKATSU)
        board = body(await city.get("/board"), 200)
        assert board["waiting_for_consent"] == []
        assert ids(board["stages"]["assessment"]) == [case_id]


async def test_an_agency_reads_the_actions_of_the_current_plan_version(tmp_path: Path) -> None:
    async with coordination(tmp_path, Board) as c:
        case_id = await c.case("case-a")
        v1 = [
            ("g1", "a1", HOUKATSU, date(2026, 12, 1)),
            ("g1", "a2", HOUKATSU, None),
            ("g2", "a3", WELFARE, date(2027, 2, 1)),
        ]
        goals = {"g1": ["staying_connected"], "g2": ["problem_solving"]}
        await c.append(case_id, *plan(case_id, 1, goals, review_on=LATER, actions=v1))
        houkatsu = c.client(HOUKATSU)
        mine = body(await houkatsu.get("/actions"), 200)
        assert [(a["action_id"], a["plan_version"]) for a in mine] == [("a1", 1), ("a2", 1)]
        assert mine[0]["task"] == "task a1 v1" and mine[0]["goal_id"] == "g1"
        # The revision drops a2: it is no longer listed.
        v2 = [v1[0], v1[2]]
        await c.append(case_id, *plan(case_id, 2, goals, review_on=LATER, actions=v2))
        mine = body(await houkatsu.get("/actions", params={"today": "2026-12-15"}), 200)
        assert [(a["action_id"], a["plan_version"], a["task"]) for a in mine] == [
            ("a1", 2, "task a1 v2")
        ]
        assert mine[0]["overdue"] is True and mine[0]["responsible_agency"] == HOUKATSU
        refused = body(await houkatsu.get("/actions", params={"agency_id": WELFARE}), 403)
        assert refused["error"]["code"] == "other_agency_actions"
        assert refused["error"]["message_ja"]
        city = c.client(CITY, Role.COORDINATOR)
        every = body(await city.get("/actions", params={"today": "2026-12-15"}), 200)
        assert [a["action_id"] for a in every] == ["a1", "a3"]
        theirs = body(await city.get("/actions", params={"agency_id": WELFARE}), 200)
        assert [a["action_id"] for a in theirs] == ["a3"]
        overdue = body(
            await city.get("/actions", params={"overdue_only": "true", "today": "2026-12-15"}),
            200,
        )
        assert [a["action_id"] for a in overdue] == ["a1"]
        auditor = c.client("audit", Role.AUDITOR)
        assert len(body(await auditor.get("/actions", params={"case_id": case_id}), 200)) == 2
        # A closed case's actions are no longer anyone's to do.
        await c.append(
            case_id,
            CaseClosed(
                case_id=case_id,
                reason="goals_met",
                closed_on=NOW.date(),
                closed_by=CITY,
                closed_at=NOW,
            ),
        )
        assert body(await city.get("/actions"), 200) == []


async def test_the_timeline_shows_every_step_and_nothing_personal(tmp_path: Path) -> None:
    async with coordination(tmp_path, Board) as c:
        case_id = await c.case("case-t", "h-1")
        await c.append(
            "meeting-m-1",
            MeetingScheduled(
                meeting_id="m-1",
                case_id=case_id,
                kind="confidential",
                convening_agency=CITY,
                participant_agencies=[CITY, HOUKATSU],
                scheduled_for=NOW,
                scheduled_at=NOW,
            ),
            support_meeting_held(case_id),
            MeetingRecorded(
                meeting_id="m-1",
                case_id=case_id,
                minutes={
                    "attendees": [{"agency_id": CITY, "name": f"{PRIVATE} 出席者"}],
                    "items": [
                        {"item_id": "i", "section": "information", "text": f"{PRIVATE} 共有"}
                    ],
                },
                recorded_at=NOW,
            ),
        )
        goals = {"g1": ["staying_connected"]}
        actions = [("g1", "a1", HOUKATSU, date(2026, 12, 1))]
        await c.append(case_id, *plan(case_id, 1, goals, review_on=LATER, actions=actions))
        await c.append(
            case_id,
            ParticipationRequested(
                request_id="p-1",
                case_id=case_id,
                member_id="son",
                action_id="a1",
                participation_agency="shakyo",
                interests=f"{PRIVATE} 興味",
                strengths=f"{PRIVATE} 強み",
                constraints=f"{PRIVATE} 制約",
                schedule=f"{PRIVATE} 日程",
                wishes=f"{PRIVATE} 希望",
                area="北部",
                requested_by=CITY,
                requested_at=NOW,
            ),
            OutreachRequested(
                request_id="o-1",
                case_id=case_id,
                outreach_agency=HOUKATSU,
                concerns=["withdrawal"],
                reason=f"{PRIVATE} 依頼理由",
                requested_at=NOW,
            ),
            RequestOutcomeReceived(
                case_id=case_id,
                kind="participation_matched",
                ref_id="match-1",
                agency_id="cafe",
                source_event_id="src-1",
                occurred_at=NOW,
            ),
            reviewed(case_id, date(2026, 12, 10), LATER),
            MemberSupportEnded(
                case_id=case_id,
                member_ids=["mother"],
                reason="died",
                note=f"{PRIVATE} 経過",
                ended_on=date(2026, 12, 20),
                ended_by=CITY,
                ended_at=NOW,
            ),
            CaseClosed(
                case_id=case_id,
                reason="handed_to_community",
                note=f"{PRIVATE} 引継ぎ",
                closed_on=date(2027, 1, 10),
                closed_by=CITY,
                closed_at=NOW,
            ),
            CaseReopened(
                case_id=case_id, reason=f"{PRIVATE} 再開", reopened_by=CITY, reopened_at=NOW
            ),
        )
        houkatsu = c.client(HOUKATSU)
        timeline = body(await houkatsu.get(f"/cases/{case_id}/timeline"), 200)
        assert [e["type"] for e in timeline] == [
            "CaseOpened",
            "MeetingScheduled",
            "SupportMeetingHeld",
            "SupportPlanAdopted",
            "RoleAssigned",
            "ParticipationRequested",
            "OutreachRequested",
            "RequestOutcomeReceived",
            "PlanReviewed",
            "MemberSupportEnded",
            "CaseClosed",
            "CaseReopened",
        ]
        by_type = {e["type"]: e for e in timeline}
        held = by_type["SupportMeetingHeld"]
        assert held["ref_id"] == "m-1" and held["label_ja"] == "支援会議開催"
        assert held["detail"]["participant_agencies"] == [CITY, HOUKATSU]
        assert by_type["SupportPlanAdopted"]["detail"]["review_on"] == LATER.isoformat()
        assert by_type["RoleAssigned"]["agency_id"] == HOUKATSU
        assert by_type["RoleAssigned"]["detail"]["due_on"] == "2026-12-01"
        assert by_type["PlanReviewed"]["detail"]["goal_progress"] == {"g1": "continuing"}
        assert by_type["ParticipationRequested"]["agency_id"] == "shakyo"
        assert by_type["RequestOutcomeReceived"]["detail"] == {"kind": "participation_matched"}
        assert by_type["MemberSupportEnded"]["detail"]["member_ids"] == ["mother"]
        assert by_type["CaseClosed"]["detail"]["reason"] == "handed_to_community"
        # Nothing personal, nothing a meeting recorded: not in the answer, not in a table.
        assert PRIVATE not in json.dumps(timeline, ensure_ascii=False)
        async with c.store.engine.connect() as conn:
            for table in (board_cases, timeline_entries, assigned_actions, outreach_links):
                rows = [tuple(r) for r in await conn.execute(select(table))]
                assert PRIVATE not in repr(rows), table.name
        assert len(timeline) and "出席者" not in json.dumps(timeline, ensure_ascii=False)
        # Who may not see the case is not told it exists; auditors read it.
        assert (await c.client("clinic").get(f"/cases/{case_id}/timeline")).status_code == 404
        auditor = c.client("audit", Role.AUDITOR)
        assert len(body(await auditor.get(f"/cases/{case_id}/timeline"), 200)) == len(timeline)


async def test_outcomes_of_outreach_and_participation_reach_the_case_once(
    store: EventStore, bus: PolicyBus
) -> None:
    await store.append(
        "case-o",
        [
            NewEvent(
                CaseOpened(
                    case_id="case-o",
                    consultation_id="k-o",
                    escalated_by=HOUKATSU,
                    concerns=["withdrawal"],
                    opened_at=NOW,
                ),
                "h-1",
            )
        ],
    )

    def started(origin: str, ref: str | None, outreach_id: str) -> OutreachStarted:
        return OutreachStarted(
            outreach_id=outreach_id,
            agency_id=HOUKATSU,
            origin=origin,
            origin_ref=ref,
            concerns=["withdrawal"],
            reason=f"{PRIVATE} 訪問理由",
            location=f"{PRIVATE} 住所",
            started_at=NOW,
        )

    (first,) = await bus.publish("intake", started("coordination", "case-o", "out-1"))
    await bus.redeliver("intake", first)  # at-least-once: nothing more recorded
    await bus.publish(
        "intake",
        started("staff", None, "out-2"),  # not a coordination request
        started("coordination", "case-unknown", "out-3"),  # no such case
        OutreachEnded(outreach_id="out-2", reason="other", ended_at=NOW),  # not the case's
        OutreachEnded(outreach_id="out-1", reason="connected_to_support", ended_at=NOW),
    )
    (matched,) = await bus.publish(
        "participation",
        ParticipationMatched(
            match_id="match-1",
            household_id="h-1",
            case_id="case-o",
            opportunity_id="opp-1",
            opportunity_kind="place",
            host_agency_id="cafe",
            link_worker_agency_id="shakyo",
            matched_on=NOW.date(),
            fit_notes=f"{PRIVATE} 相性",
        ),
    )
    await bus.redeliver("participation", matched)
    await bus.publish(
        "participation",
        ParticipationMatched(
            match_id="match-2",
            household_id="h-1",
            opportunity_id="opp-1",
            opportunity_kind="place",
            host_agency_id="cafe",
            link_worker_agency_id="shakyo",
            matched_on=NOW.date(),
            fit_notes="no case",
        ),
    )
    events, _ = await store.load("case-o")
    outcomes = [d.event for d in events if isinstance(d.event, RequestOutcomeReceived)]
    assert [(o.kind.value, o.ref_id, o.agency_id) for o in outcomes] == [
        ("outreach_started", "out-1", HOUKATSU),
        ("outreach_ended", "out-1", HOUKATSU),
        ("participation_matched", "match-1", "cafe"),
    ]
    assert len({o.source_event_id for o in outcomes}) == 3
    assert not await store.read_stream("case-unknown")
    assert bus.dead_letter_reasons() == []


def test_an_outcome_already_received_from_a_source_event_records_nothing() -> None:
    state = CaseOutcomes("case-x")
    kw: dict[str, Any] = {
        "kind": OutcomeKind.OUTREACH_STARTED,
        "ref_id": "out-1",
        "agency_id": HOUKATSU,
        "source_event_id": "src-1",
        "at": NOW,
    }
    assert receive(state, **kw) == []  # no such case
    state.evolve(
        CaseOpened(case_id="case-x", escalated_by=HOUKATSU, concerns=["care"], opened_at=NOW)
    )
    (first,) = receive(state, **kw)
    state.evolve(first)
    assert receive(state, **kw) == []
    assert len(receive(state, **{**kw, "source_event_id": "src-2"})) == 1


async def test_an_outcome_moves_the_case_s_etag(store: EventStore, bus: PolicyBus) -> None:
    await store.append(
        "case-e",
        [
            NewEvent(
                CaseOpened(
                    case_id="case-e", escalated_by=HOUKATSU, concerns=["care"], opened_at=NOW
                ),
                "h-1",
            )
        ],
    )
    await bus.publish(
        "participation",
        ParticipationMatched(
            match_id="match-e",
            household_id="h-1",
            case_id="case-e",
            opportunity_id="opp-1",
            opportunity_kind="place",
            host_agency_id="cafe",
            link_worker_agency_id="shakyo",
            matched_on=NOW.date(),
            fit_notes="notes",
        ),
    )
    async with store.engine.connect() as conn:
        (version,) = (
            await conn.execute(select(coordination_tables.tables["cases"].c.version))
        ).one()
    assert version == 2 == len(await store.read_stream("case-e"))
