"""Intake decisions, pure: no database, no broker."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kyosei_events.catalogue.intake import (
    CaseEscalated,
    ConsentGiven,
    ConsentGiver,
    ConsentRefused,
    ConsultationReceived,
    ContactMethod,
    ContactResult,
    DeclineReason,
    HouseholdRegistered,
    MemberAdded,
    OutreachEndReason,
    OutreachOrigin,
    OutreachStarted,
    ProxyRecorded,
    RelationshipStage,
)
from kyosei_events.model import DomainEvent
from kyosei_intake.domain import consultation as consultations
from kyosei_intake.domain import household as households
from kyosei_intake.domain import outreach as outreach
from kyosei_platform.application import Rejected

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def received(**changes: object) -> ConsultationReceived:
    base: dict[str, object] = {
        "consultation_id": "c-1",
        "household_id": "h-1",
        "agency_id": "madoguchi",
        "window": "welfare_general",
        "channel": "visit",
        "concerns": ["hoarding"],
        "summary": "隣人から、ごみ屋敷の住人が訪問を拒んでいると",
        "received_at": NOW,
    }
    return ConsultationReceived.model_validate(base | changes)


def consultation(*events: DomainEvent) -> consultations.Consultation:
    state = consultations.Consultation("c-1")
    for e in events:
        state.evolve(e)
    return state


def test_a_plain_consultation_is_recorded_with_its_outcome_pending() -> None:
    events = consultations.receive(received(), None, NOW)
    assert [type(e) for e in events] == [ConsultationReceived]
    assert consultation(*events).outcome is consultations.Outcome.PENDING


def test_a_complex_consultation_is_escalated_in_the_same_step() -> None:
    events = consultations.receive(
        received(complex=True, concerns=["care", "withdrawal"]), "8050", NOW
    )
    assert [type(e) for e in events] == [ConsultationReceived, CaseEscalated]
    escalated = events[1]
    assert isinstance(escalated, CaseEscalated)
    assert escalated.reason == "8050" and escalated.concerns == ["care", "withdrawal"]
    assert consultation(*events).outcome is consultations.Outcome.ESCALATED


def test_any_concern_is_accepted_but_other_must_say_what() -> None:
    for concern in ("domestic_violence", "foreign_national", "hoarding", "employment"):
        assert consultations.receive(received(concerns=[concern]), None, NOW)
    with pytest.raises(Rejected) as refused:
        consultations.receive(received(concerns=["other"]), None, NOW)
    assert refused.value.status == 422 and refused.value.field == "other_concern"
    assert consultations.receive(
        received(concerns=["other"], other_concern="近所の騒音"), None, NOW
    )


def test_escalating_twice_is_refused() -> None:
    state = consultation(*consultations.receive(received(), None, NOW))
    state.evolve(consultations.escalate(state, "複合課題", NOW))
    assert state.escalated and state.version == 2
    with pytest.raises(Rejected, match="already escalated"):
        consultations.escalate(state, "again", NOW)


def test_an_outcome_is_decided_once() -> None:
    state = consultation(received())
    state.evolve(consultations.handle(state, "自機関で対応", NOW))
    assert state.outcome is consultations.Outcome.HANDLED
    with pytest.raises(Rejected) as again:
        consultations.refer(state, "r-1", "other", None, None, NOW)
    assert again.value.code == "outcome_already_decided"
    # Complexity found later can still be escalated.
    state.evolve(consultations.escalate(state, "後から複合課題が判明", NOW))
    assert state.outcome is consultations.Outcome.ESCALATED


def test_a_declined_referral_comes_back_to_the_sender() -> None:
    state = consultation(received())
    state.evolve(consultations.refer(state, "r-1", "houkatsu", None, "ご本人の同意あり", NOW))
    assert state.outcome is consultations.Outcome.REFERRED
    with pytest.raises(Rejected) as wrong_agency:
        consultations.accept(state, "r-1", "madoguchi", NOW)
    assert wrong_agency.value.status == 403
    with pytest.raises(Rejected) as no_reason:
        consultations.decline(state, "r-1", "houkatsu", DeclineReason.OTHER, None, NOW)
    assert no_reason.value.field == "note"
    state.evolve(
        consultations.decline(state, "r-1", "houkatsu", DeclineReason.NOT_ELIGIBLE, None, NOW)
    )
    assert state.outcome is consultations.Outcome.PENDING and state.returned
    # The sender decides again: a new referral, accepted and completed.
    state.evolve(consultations.refer(state, "r-2", "jiritsu", None, None, NOW))
    assert not state.returned
    with pytest.raises(Rejected, match="accept it first"):
        consultations.complete(state, "r-2", "jiritsu", None, NOW)
    state.evolve(consultations.accept(state, "r-2", "jiritsu", NOW))
    state.evolve(consultations.complete(state, "r-2", "jiritsu", "家計相談につながった", NOW))
    assert [r.status.value for r in state.referrals.values()] == ["declined", "completed"]
    assert state.parties() == {"madoguchi", "houkatsu", "jiritsu"}


def test_a_referral_to_oneself_is_refused() -> None:
    state = consultation(received())
    with pytest.raises(Rejected) as refused:
        consultations.refer(state, "r-1", "madoguchi", None, None, NOW)
    assert refused.value.field == "to_agency"


def test_linking_a_household_once() -> None:
    state = consultation(received(household_id=None))
    state.evolve(consultations.link_household(state, "h-9", NOW))
    assert state.household_id == "h-9"
    with pytest.raises(Rejected, match="merge"):
        consultations.link_household(state, "h-10", NOW)


def household(*events: DomainEvent) -> households.Household:
    state = households.Household("h-1")
    for e in events:
        state.evolve(e)
    return state


REGISTERED = HouseholdRegistered(household_id="h-1", registered_by="a", registered_at=NOW)
MOTHER = MemberAdded(
    household_id="h-1",
    member_id="m-1",
    name="山田 ハナ",
    birth_date=date(1944, 5, 1),
    relationship="head",
    attributes=["needs_care", "dementia_suspected"],
)


def consent(**changes: object) -> ConsentGiven:
    base: dict[str, object] = {
        "consent_id": "k-1",
        "household_id": "h-1",
        "member_id": "m-1",
        "given_by": "person",
        "agencies": ["houkatsu"],
        "purposes": ["information_sharing"],
        "given_on": date(2026, 11, 1),
        "recorded_at": NOW,
    }
    return ConsentGiven.model_validate(base | changes)


def test_consent_covers_named_agencies_and_purposes_until_withdrawn() -> None:
    state = household(REGISTERED, MOTHER)
    state.evolve(households.give_consent(state, consent()))
    c = state.consents["k-1"]
    sharing = consent().purposes[0]
    assert c.covers("houkatsu", sharing, date(2026, 11, 2))
    assert not c.covers("houkatsu", sharing, date(2026, 10, 31)), "not before it was given"
    assert not c.covers("stranger", sharing, date(2026, 11, 2))
    state.evolve(
        households.withdraw_consent(state, "k-1", c.given_by, date(2026, 11, 20), None, NOW)
    )
    assert not c.covers("houkatsu", sharing, date(2026, 11, 21))
    with pytest.raises(Rejected, match=r"already withdrawn \(on 2026-11-20\); nothing more"):
        households.withdraw_consent(state, "k-1", c.given_by, date(2026, 11, 21), None, NOW)


def test_consent_must_name_agencies_and_a_real_member() -> None:
    state = household(REGISTERED, MOTHER)
    with pytest.raises(Rejected) as none:
        households.give_consent(state, consent(agencies=[]))
    assert none.value.field == "agencies"
    with pytest.raises(Rejected) as who:
        households.give_consent(state, consent(member_id="m-404"))
    assert who.value.field == "member_id"
    assert households.give_consent(state, consent(agencies=[], all_agencies=True))
    with pytest.raises(Rejected) as nobody:
        households.give_consent(state, consent(member_id=None))
    assert nobody.value.code == "member_required", "consent belongs to a person"


SON = MOTHER.model_copy(
    update={"member_id": "m-2", "name": "山田 一郎", "relationship": "child", "attributes": []}
)


def proxy(**changes: object) -> ProxyRecorded:
    base: dict[str, object] = {
        "proxy_id": "p-1",
        "household_id": "h-1",
        "member_id": "m-1",
        "kind": "family",
        "proxy_member_id": "m-2",
        "recorded_at": NOW,
    }
    return ProxyRecorded.model_validate(base | changes)


def test_family_consents_for_a_person_only_as_their_recorded_proxy() -> None:
    state = household(REGISTERED, MOTHER, SON)
    by_son = consent(given_by="family", proxy_id="p-1")
    with pytest.raises(Rejected) as unrecorded:
        households.give_consent(state, by_son)
    assert unrecorded.value.code == "not_a_recorded_proxy"
    state.evolve(households.record_proxy(state, proxy()))
    assert households.give_consent(state, by_son).proxy_id == "p-1"
    # The son is the mother's proxy, not his own: he cannot consent "as family" for
    # himself, and a guardian needs a guardian's record.
    with pytest.raises(Rejected):
        households.give_consent(state, consent(member_id="m-2", given_by="family", proxy_id="p-1"))
    with pytest.raises(Rejected):
        households.give_consent(state, consent(given_by="guardian", proxy_id="p-1"))
    with pytest.raises(Rejected) as stray:
        households.give_consent(state, consent(proxy_id="p-1"))
    assert stray.value.field == "proxy_id", "a person consenting for themself names no proxy"


def test_a_proxy_is_family_or_a_guardian_and_is_named() -> None:
    state = household(REGISTERED, MOTHER, SON)
    with pytest.raises(Rejected) as person:
        households.record_proxy(state, proxy(kind="person"))
    assert person.value.field == "kind"
    with pytest.raises(Rejected) as unnamed:
        households.record_proxy(state, proxy(proxy_member_id=None))
    assert unnamed.value.field == "proxy_name"
    with pytest.raises(Rejected) as own:
        households.record_proxy(state, proxy(proxy_member_id="m-1"))
    assert own.value.code == "own_proxy"
    guardian = proxy(kind="guardian", proxy_member_id=None, proxy_name="成年後見人 佐藤")
    assert households.record_proxy(state, guardian).kind is ConsentGiver.GUARDIAN


def test_a_refusal_is_recorded_like_consent_and_shown() -> None:
    state = household(REGISTERED, MOTHER, SON)
    refused = ConsentRefused(
        refusal_id="r-1",
        household_id="h-1",
        member_id="m-2",
        refused_by=ConsentGiver.PERSON,
        agencies=["jiritsu"],
        purposes=["information_sharing"],
        refused_on=date(2026, 11, 2),
        note="会いたくない",
        recorded_at=NOW,
    )
    state.evolve(households.refuse_consent(state, refused))
    assert state.refusals["r-1"].member_id == "m-2"
    with pytest.raises(Rejected):
        households.refuse_consent(
            state, refused.model_copy(update={"refused_by": ConsentGiver.FAMILY})
        )


def test_a_consultation_names_members_of_its_household_only() -> None:
    members = frozenset({"m-1", "m-2"})
    (ok,) = consultations.receive(received(member_ids=["m-2"]), None, NOW, members)
    assert consultation(ok).member_ids == ["m-2"]
    with pytest.raises(Rejected) as stranger:
        consultations.receive(received(member_ids=["m-9"]), None, NOW, members)
    assert stranger.value.field == "member_ids"
    with pytest.raises(Rejected):
        consultations.receive(received(household_id=None, member_ids=["m-1"]), None, NOW)


def test_a_merged_record_takes_no_more_events() -> None:
    survivor, duplicate = household(REGISTERED), households.Household("h-2")
    duplicate.evolve(REGISTERED.model_copy(update={"household_id": "h-2"}))
    on_survivor, on_duplicate = households.merge(survivor, duplicate, "同一世帯", NOW)
    survivor.evolve(on_survivor)
    duplicate.evolve(on_duplicate)
    assert survivor.merged_from == ["h-2"] and duplicate.merged_into == "h-1"
    with pytest.raises(Rejected, match="merged into h-1"):
        households.add_member(duplicate, MOTHER.model_copy(update={"member_id": "m-2"}))
    with pytest.raises(Rejected):
        households.merge(survivor, survivor, "x", NOW)


def test_outreach_counts_attempts_and_tracks_the_relationship() -> None:
    state = outreach.Outreach("o-1")
    state.evolve(
        OutreachStarted(
            outreach_id="o-1",
            agency_id="outreach-team",
            origin=OutreachOrigin.COMMUNITY,
            concerns=["hoarding", "isolation"],
            reason="近所の方から、庭にごみが積まれていると",
            started_at=NOW,
        )
    )
    for result in (ContactResult.NOT_AT_HOME, ContactResult.REFUSED, ContactResult.TALKED_AT_DOOR):
        state.evolve(outreach.record_contact(state, ContactMethod.HOME_VISIT, result, None, NOW))
    assert [c.attempt for c in state.contacts] == [1, 2, 3]
    state.evolve(outreach.change_stage(state, RelationshipStage.FIRST_CONTACT, None, NOW))
    with pytest.raises(Rejected, match="already at stage"):
        outreach.change_stage(state, RelationshipStage.FIRST_CONTACT, None, NOW)
    state.evolve(outreach.end(state, outreach.OutreachEndReason.CONNECTED_TO_SUPPORT, None, NOW))
    with pytest.raises(Rejected, match="ended"):
        outreach.record_contact(state, ContactMethod.PHONE, ContactResult.MET, None, NOW)


def refusal(decide: object, *args: object) -> Rejected:
    """The refusal ``decide(*args)`` raises: a 409 that says what is, then what to do."""
    assert callable(decide)
    with pytest.raises(Rejected) as refused:
        decide(*args)
    r = refused.value
    assert r.status == 409 and "; " in r.message and "。" in r.message_ja, r.message
    return r


def test_each_referral_refusal_says_where_it_stands_and_what_to_do() -> None:
    state = consultation(received())
    state.evolve(consultations.refer(state, "r-1", "houkatsu", None, None, NOW))
    early = refusal(consultations.complete, state, "r-1", "houkatsu", None, NOW)
    assert early.code == "referral_not_accepted" and "accept it first" in early.message
    state.evolve(consultations.accept(state, "r-1", "houkatsu", NOW))
    again = refusal(consultations.accept, state, "r-1", "houkatsu", NOW)
    assert again.code == "referral_already_accepted" and "complete it when" in again.message
    state.evolve(consultations.complete(state, "r-1", "houkatsu", None, NOW))
    for decide, args in (
        (consultations.complete, (state, "r-1", "houkatsu", None, NOW)),
        (consultations.accept, (state, "r-1", "houkatsu", NOW)),
        (consultations.decline, (state, "r-1", "houkatsu", DeclineReason.NOT_ELIGIBLE, None, NOW)),
    ):
        done = refusal(decide, *args)
        assert done.code == "referral_already_completed", done.code
        assert done.message.startswith("this referral is already completed"), done.message
        assert "accept" not in done.message and "nothing more to do" in done.message
        assert "完了しています" in done.message_ja

    declined = consultation(received())
    declined.evolve(consultations.refer(declined, "r-2", "houkatsu", None, None, NOW))
    declined.evolve(
        consultations.decline(declined, "r-2", "houkatsu", DeclineReason.NOT_ELIGIBLE, None, NOW)
    )
    for decide, args in (
        (consultations.accept, (declined, "r-2", "houkatsu", NOW)),
        (consultations.complete, (declined, "r-2", "houkatsu", None, NOW)),
    ):
        back = refusal(decide, *args)
        assert back.code == "referral_already_declined" and "sending agency" in back.message
    twice = refusal(
        consultations.decline, declined, "r-2", "houkatsu", DeclineReason.NOT_ELIGIBLE, None, NOW
    )
    assert "nothing more to do" in twice.message


def test_a_decided_outcome_is_named_in_the_refusal() -> None:
    referred = consultation(received())
    referred.evolve(consultations.refer(referred, "r-1", "houkatsu", None, None, NOW))
    r = refusal(consultations.handle, referred, None, NOW)
    assert "already referred to houkatsu" in r.message and "declines" in r.message
    escalated = consultation(*consultations.receive(received(complex=True), "複合", NOW))
    r = refusal(consultations.handle, escalated, None, NOW)
    assert "already escalated" in r.message and "coordination case" in r.message
    again = refusal(consultations.escalate, escalated, "again", NOW)
    assert again.code == "already_escalated" and "nothing more to do" in again.message


def test_an_ended_outreach_case_says_when_it_ended() -> None:
    case = outreach.Outreach("o-1")
    case.evolve(
        OutreachStarted(
            outreach_id="o-1",
            agency_id="houkatsu",
            origin=OutreachOrigin.STAFF,
            concerns=["withdrawal"],
            reason="見守り",
            started_at=NOW,
        )
    )
    case.evolve(outreach.end(case, OutreachEndReason.CONNECTED_TO_SUPPORT, None, NOW))
    ended = refusal(outreach.end, case, OutreachEndReason.CONNECTED_TO_SUPPORT, None, NOW)
    assert "already ended on 2026-11-24" in ended.message and "nothing more" in ended.message
    contact = refusal(
        outreach.record_contact,
        case,
        ContactMethod.HOME_VISIT,
        ContactResult.NOT_AT_HOME,
        None,
        NOW,
    )
    assert "start a new outreach case" in contact.message
