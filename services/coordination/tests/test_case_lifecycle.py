"""A case's life after it opens, on the in-memory broker: members' life changes flag it
for review (親亡き後 in an 8050 household), a redelivery records nothing, a retraction
withdraws the flag and a review answers it; the support of one member ends, the case
closes and reopens under its rules; coordinators raise community issues that carry
nothing personal."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from kyosei_coordination import commands, lifecycle, views
from kyosei_coordination.commands import case_id_for
from kyosei_coordination.community import commands as community
from kyosei_coordination.community import views as community_views
from kyosei_coordination.domain.community_issue import band
from kyosei_coordination.projections import CaseList
from kyosei_events import EventStore, Metadata, NewEvent
from kyosei_events.catalogue.coordination import CommunityIssueRaised, PlanReviewed
from kyosei_events.catalogue.intake import (
    ConsultationLinkedToHousehold,
    MemberAdded,
    MemberChangeRetracted,
    MemberDeparted,
    MemberDied,
    MemberFacilityStayStarted,
)
from kyosei_events.projection import rebuild
from kyosei_platform.application import PreconditionFailed, Rejected, today
from kyosei_platform.auth import Role
from kyosei_platform.testing import PolicyBus, acting_as

from .kit import COORDINATOR, HOUKATSU, NOW, case, escalated, registered


def household_8050(household_id: str = "h-8050") -> list:
    """The mother (82, head of the household) and her son (54, withdrawn)."""
    return [
        registered(household_id),
        MemberAdded(
            household_id=household_id, member_id="m-mother", name="松戸 ハル", relationship="head"
        ),
        MemberAdded(
            household_id=household_id, member_id="m-son", name="松戸 一郎", relationship="child"
        ),
    ]


def died(member_id: str, change_id: str, on: date = date(2026, 11, 20)) -> MemberDied:
    return MemberDied(
        change_id=change_id,
        household_id="h-8050",
        member_id=member_id,
        died_on=on,
        recorded_at=NOW,
    )


def flags(view: views.CaseView) -> list[tuple[str, str]]:
    return [(f.member_id, f.reason.value) for f in view.review_flags]


def mother_in_hospital() -> MemberFacilityStayStarted:
    return MemberFacilityStayStarted(
        change_id="chg-hospital",
        household_id="h-8050",
        member_id="m-mother",
        facility="hospital",
        started_on=date(2026, 11, 10),
        recorded_at=NOW,
    )


async def types(store: EventStore, case_id: str) -> list[str]:
    return [r.event_type for r in await store.read_stream(case_id)]


async def test_the_mothers_death_in_an_8050_household_flags_parent_died_once(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household_8050(), escalated("c-1", "h-8050"))
    case_id = case_id_for("c-1")

    (event_id,) = await bus.publish("intake", died("m-mother", "chg-death"))
    view = await case(store, case_id)
    assert flags(view) == [("m-mother", "parent_died")]
    assert view.review_flags[0].reason.label_ja == "親亡き後（親の死亡）"
    assert view.review_flags[0].occurred_on == date(2026, 11, 20)

    # A redelivery, and the same change sent again as a new message: nothing more.
    await bus.redeliver("intake", event_id)
    await bus.publish("intake", died("m-mother", "chg-death"))
    assert (await types(store, case_id)).count("CaseReviewFlagged") == 1
    assert flags(await case(store, case_id)) == [("m-mother", "parent_died")]


async def test_a_retraction_withdraws_the_flag_and_other_changes_flag_with_their_reason(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household_8050(), escalated("c-1", "h-8050"))
    case_id = case_id_for("c-1")
    await bus.publish("intake", died("m-mother", "chg-wrong"))
    await bus.publish(
        "intake",
        MemberChangeRetracted(
            household_id="h-8050",
            member_id="m-mother",
            retracted_change_id="chg-wrong",
            reason="別人の記録",
            retracted_at=NOW,
        ),
    )
    assert flags(await case(store, case_id)) == []
    assert (await types(store, case_id))[-1] == "CaseReviewFlagWithdrawn"

    await bus.publish(
        "intake",
        mother_in_hospital(),
        MemberDeparted(
            change_id="chg-moved",
            household_id="h-8050",
            member_id="m-son",
            reason="moved_out",
            departed_on=date(2026, 11, 12),
            recorded_at=NOW,
        ),
        died("m-son", "chg-son-died", date(2026, 11, 14)),
    )
    # The son is nobody's parent: his death is member_died.
    assert flags(await case(store, case_id)) == [
        ("m-mother", "facility_stay"),
        ("m-son", "member_departed"),
        ("m-son", "member_died"),
    ]


async def test_a_case_about_the_son_alone_is_flagged_when_his_mother_dies(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household_8050())
    coordinator = acting_as(store, "matsudo-city", Role.COORDINATOR)
    opened = await commands.open_case_directly(
        coordinator,
        commands.OpenCaseDirectly(
            household_id="h-8050",
            main_agency=HOUKATSU,
            member_ids=["m-son"],
            concerns=["withdrawal"],
            reason="息子のひきこもり",
        ),
    )
    # The mother's stay in hospital does not concern a case about her son.
    await bus.publish(
        "intake",
        mother_in_hospital(),
    )
    assert flags(await case(store, opened.case_id)) == []
    await bus.publish("intake", died("m-mother", "chg-death"))
    assert flags(await case(store, opened.case_id)) == [("m-mother", "parent_died")]


async def test_a_review_on_or_after_the_change_answers_the_flag(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household_8050(), escalated("c-1", "h-8050"))
    case_id = case_id_for("c-1")
    await bus.publish("intake", died("m-mother", "chg-death", date(2026, 11, 20)))
    before = await case(store, case_id)

    async def reviewed(review_id: str, on: date, expected: int) -> None:
        review = PlanReviewed(
            review_id=review_id,
            case_id=case_id,
            household_id="h-8050",
            plan_version=1,
            reviewed_on=on,
            goal_progress={"g-1": "continuing"},
            next_review_on=on + timedelta(days=90),
            review={
                "self_reliance": [{"area": "money", "score": 2}],
                "connectedness": 2,
                "goals": [{"goal_id": "g-1", "progress": "continuing"}],
            },
            reviewed_by=HOUKATSU,
            reviewed_at=NOW,
        )
        await store.append(
            f"plan-{case_id}", [NewEvent(review, "h-8050", Metadata(agency_id=HOUKATSU))], expected
        )

    await reviewed("r-early", date(2026, 11, 19), 0)
    assert flags(await case(store, case_id)) == [("m-mother", "parent_died")]
    await bus.publish(
        "intake",
        MemberDeparted(
            change_id="chg-later",
            household_id="h-8050",
            member_id="m-son",
            reason="moved_out",
            departed_on=date(2026, 11, 22),
            recorded_at=NOW,
        ),
    )
    await reviewed("r-after", date(2026, 11, 20), 1)
    after = await case(store, case_id)
    # The review answers the death, not the later departure; the case's version stays.
    assert flags(after) == [("m-son", "member_departed")]
    assert after.version == before.version + 1


async def test_the_case_list_rebuilt_from_the_log_is_the_same(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household_8050(), escalated("c-1", "h-8050"))
    case_id = case_id_for("c-1")
    await bus.publish("intake", died("m-mother", "chg-death"))
    main = acting_as(store, HOUKATSU, Role.STAFF)
    await lifecycle.end_member_support(
        main,
        case_id,
        lifecycle.EndMemberSupport(
            member_ids=["m-mother"], reason="died", ended_on=date(2026, 11, 20)
        ),
    )
    await lifecycle.close_case(
        main,
        case_id,
        lifecycle.CloseCase(
            reason="handed_to_agency", handed_to="hikikomori-center", closed_on=NOW.date()
        ),
    )
    before = await case(store, case_id)
    assert before.closed is not None and before.closed.handed_to == "hikikomori-center"
    assert (len(before.review_flags), len(before.ended_members)) == (1, 1)
    maintenance = EventStore(store.engine, store.vault, name=store.name)
    assert await rebuild(maintenance, CaseList()) == 4
    assert await case(store, case_id) == before


async def test_a_merged_case_is_neither_closed_nor_reopened(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household_8050(), escalated("c-1", "h-8050"))
    await bus.publish("intake", escalated("c-2", None))
    await bus.publish(
        "intake",
        ConsultationLinkedToHousehold(consultation_id="c-2", household_id="h-8050", linked_at=NOW),
    )
    merged = case_id_for("c-2")
    assert (await case(store, merged)).status == "merged"
    coordinator = acting_as(store, "matsudo-city", Role.COORDINATOR)
    with pytest.raises(Rejected) as refused:
        await lifecycle.close_case(
            coordinator, merged, lifecycle.CloseCase(reason="goals_met", closed_on=NOW.date())
        )
    assert (refused.value.status, refused.value.code) == (409, "case_not_open")
    with pytest.raises(Rejected) as refused:
        await lifecycle.reopen_case(coordinator, merged, lifecycle.ReopenCase(reason="再相談"))
    assert (refused.value.status, refused.value.code) == (409, "case_not_closed")


async def test_one_members_support_ends_and_the_case_goes_on_for_the_other(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household_8050(), escalated("c-1", "h-8050"))
    case_id = case_id_for("c-1")
    main = acting_as(store, HOUKATSU, Role.STAFF)
    end = lifecycle.EndMemberSupport

    def mother_ends(**changes: object) -> lifecycle.EndMemberSupport:
        fields = {"member_ids": ["m-mother"], "reason": "died", "ended_on": "2026-11-20"}
        return end.model_validate({**fields, **changes})

    refusals = [
        (acting_as(store, "other-agency", Role.STAFF), mother_ends(), 403, None),
        (main, mother_ends(member_ids=["m-stranger"]), 422, "member_ids"),
        (main, mother_ends(ended_on=(today() + timedelta(days=1)).isoformat()), 422, "ended_on"),
        (main, mother_ends(reason="handed_to_agency"), 422, "handed_to"),
        (main, mother_ends(handed_to="somewhere"), 422, "handed_to"),
        (main, mother_ends(member_ids=["m-mother", "m-son"]), 422, "member_ids"),
    ]
    for ctx, command, status, field in refusals:
        with pytest.raises(Rejected) as refused:
            await lifecycle.end_member_support(ctx, case_id, command)
        assert (refused.value.status, refused.value.field) == (status, field), command
        assert refused.value.message and refused.value.message_ja
    with pytest.raises(PreconditionFailed):
        await lifecycle.end_member_support(main, case_id, mother_ends(), 7)

    await lifecycle.end_member_support(main, case_id, mother_ends(note="11月20日に逝去"), 1)
    view = await case(store, case_id)
    assert [(m.member_id, m.reason.value, m.ended_on) for m in view.ended_members] == [
        ("m-mother", "died", date(2026, 11, 20))
    ]
    assert view.status == "open" and view.version == 2

    with pytest.raises(Rejected) as refused:
        await lifecycle.end_member_support(main, case_id, mother_ends())
    assert (refused.value.status, refused.value.code) == (409, "member_support_already_ended")
    # The son is the last one left: close the case instead.
    with pytest.raises(Rejected) as refused:
        await lifecycle.end_member_support(main, case_id, mother_ends(member_ids=["m-son"]))
    assert (refused.value.status, refused.value.field) == (422, "member_ids")
    assert "close the case" in refused.value.message


async def test_closing_and_reopening_follow_the_one_open_case_per_household_rule(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household_8050(), escalated("c-1", "h-8050"))
    case_id = case_id_for("c-1")
    coordinator = acting_as(store, "matsudo-city", Role.COORDINATOR)
    close = lifecycle.CloseCase

    def closing(**changes: object) -> lifecycle.CloseCase:
        fields = {"reason": "handed_to_community", "closed_on": "2026-11-30"}
        return close.model_validate({**fields, **changes})

    for command, field in [
        (closing(reason="handed_to_prefecture"), "handed_to"),
        (closing(handed_to="chiba-pref"), "handed_to"),
        (closing(closed_on=(today() + timedelta(days=1)).isoformat()), "closed_on"),
    ]:
        with pytest.raises(Rejected) as refused:
            await lifecycle.close_case(coordinator, case_id, command)
        assert (refused.value.status, refused.value.field) == (422, field)
    with pytest.raises(Rejected) as refused:
        await lifecycle.close_case(acting_as(store, "other", Role.STAFF), case_id, closing())
    assert refused.value.status == 403
    with pytest.raises(Rejected) as refused:
        await lifecycle.reopen_case(coordinator, case_id, lifecycle.ReopenCase(reason="再相談"))
    assert (refused.value.status, refused.value.code) == (409, "case_not_closed")

    await lifecycle.close_case(coordinator, case_id, closing(note="サロンで見守り"))
    view = await case(store, case_id)
    assert view.status == "closed" and view.closed is not None
    assert (view.closed.reason.value, view.closed.closed_on, view.closed.handed_to) == (
        "handed_to_community",
        date(2026, 11, 30),
        None,
    )
    async with store.engine.connect() as conn:
        closed = await views.list_cases(
            conn, COORDINATOR, household_id="h-8050", consultation_id=None, limit=9, status="closed"
        )
    assert [c.case_id for c in closed] == [case_id]
    with pytest.raises(Rejected) as refused:
        await lifecycle.close_case(coordinator, case_id, closing())
    assert (refused.value.status, refused.value.code) == (409, "case_already_closed")
    with pytest.raises(Rejected) as refused:
        await lifecycle.end_member_support(
            coordinator,
            case_id,
            lifecycle.EndMemberSupport(member_ids=["m-mother"], reason="died", ended_on=NOW.date()),
        )
    assert (refused.value.status, refused.value.code) == (409, "case_not_open")

    # The household has no open case now: a new escalation opens a new one, and the
    # closed case cannot be reopened beside it.
    await bus.publish("intake", escalated("c-2", "h-8050"))
    assert (await case(store, case_id_for("c-2"))).status == "open"
    with pytest.raises(Rejected) as refused:
        await lifecycle.reopen_case(coordinator, case_id, lifecycle.ReopenCase(reason="再相談"))
    assert (refused.value.status, refused.value.code) == (409, "case_already_open")
    assert case_id_for("c-2") in refused.value.message

    await lifecycle.close_case(coordinator, case_id_for("c-2"), closing(reason="goals_met"))
    reopened = await lifecycle.reopen_case(
        coordinator, case_id, lifecycle.ReopenCase(reason="再相談"), 2
    )
    view = await case(store, case_id)
    assert (view.status, view.closed, view.version) == ("open", None, reopened.version)
    assert await types(store, case_id) == ["CaseOpened", "CaseClosed", "CaseReopened"]


def test_community_issue_raised_carries_no_personal_field_and_no_id_of_a_person() -> None:
    schema = CommunityIssueRaised.model_json_schema()
    text = json.dumps(schema)
    assert "x-kyosei-personal" not in text
    fields = set(schema["properties"])
    assert fields == {
        "issue_id",
        "area",
        "theme",
        "description",
        "concerns",
        "cases_seen",
        "raised_by",
        "raised_at",
    }
    assert not any(f.endswith(("household_id", "member_id", "case_id", "_ids")) for f in fields)
    assert [band(n) for n in (1, 4, 5, 9, 10, 200)] == ["1-4", "1-4", "5-9", "5-9", "10+", "10+"]


async def test_a_community_issue_is_checked_for_ids_and_personal_looking_text(
    bus: PolicyBus, store: EventStore
) -> None:
    await bus.publish("intake", *household_8050(), escalated("c-1", "h-8050"))
    case_id = case_id_for("c-1")
    coordinator = acting_as(store, "matsudo-city", Role.COORDINATOR)

    def issue(**changes: object) -> community.RaiseCommunityIssue:
        fields = {
            "area": "常盤平地区",
            "theme": "50代男性の居場所がない",
            "description": "親の介護を機に相談につながった50代の男性が、日中に行ける場所がない。",
            "concerns": ["isolation"],
            "case_ids": [case_id],
        }
        return community.RaiseCommunityIssue.model_validate({**fields, **changes})

    refusals = [
        (issue(case_ids=[case_id, "case-nope"]), "case_ids"),
        (issue(description="h-8050 の世帯で見られた"), "description"),
        (issue(description="M-SON さんのように"), "description"),
        (issue(theme=f"{case_id} から"), "theme"),
        (issue(area="c-1 の地区"), "area"),
        (issue(description="連絡先 047-123-4567 まで"), "description"),
        (issue(description="連絡先 ０４７１２３４５６７ まで"), "description"),
        (issue(description="〒270-2261 の周辺"), "description"),
        (issue(description="1944年4月1日生まれの方"), "description"),
        (issue(description="昭和19年4月1日生まれの方"), "description"),
    ]
    for command, field in refusals:
        with pytest.raises(Rejected) as refused:
            await community.raise_issue(coordinator, command)
        assert (refused.value.status, refused.value.field) == (422, field), command
        assert refused.value.message_ja
    with pytest.raises(Rejected) as refused:
        await community.raise_issue(acting_as(store, HOUKATSU, Role.STAFF), issue())
    assert refused.value.status == 403

    raised = await community.raise_issue(coordinator, issue())
    async with store.engine.connect() as conn:
        (listed,) = await community_views.list_issues(conn, area=None, limit=10)
    assert (listed.issue_id, listed.cases_seen, listed.raised_by) == (
        raised.issue_id,
        "1-4",
        "matsudo-city",
    )
    (recorded,) = await store.read_stream(f"community-issue-{raised.issue_id}")
    for ident in (case_id, "h-8050", "m-mother", "m-son", "c-1"):
        assert ident not in recorded.payload and ident != recorded.subject
