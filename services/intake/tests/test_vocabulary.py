"""The wider vocabulary and the outcomes that keep a person in view, as commands: places
of agencies, "brought by" channels, unmet-need types, 情報提供・助言, 伴走継続, アウトリーチへ,
and the window of a consultation taken up from a resident's 気づき."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from kyosei_events import EventStore
from kyosei_events.catalogue.common import Concern, UnmetNeed
from kyosei_events.catalogue.community import ConcernNoticed
from kyosei_events.catalogue.intake import Channel, OutreachOrigin, PlaceKind, Window
from kyosei_intake.commands import agencies, consultations, outreach
from kyosei_intake.domain.consultation import Outcome
from kyosei_intake.policies import derived_id
from kyosei_platform.application import CommandContext, Rejected, today
from kyosei_platform.testing import PolicyBus

AgencyContext = Callable[[str], CommandContext]


def received(**changes: object) -> consultations.ReceiveConsultation:
    base: dict[str, object] = {
        "window": "social_welfare_council",
        "channel": "visit",
        "concerns": ["eighty_fifty"],
        "summary": "母82歳、息子54歳がひきこもり",
    }
    return consultations.ReceiveConsultation.model_validate(base | changes)


async def test_a_consultation_at_a_community_place_names_a_place_of_its_agency(
    as_agency: AgencyContext,
) -> None:
    csw = as_agency("shakyo")
    state, place_id = await agencies.register_place(
        csw,
        "shakyo",
        agencies.RegisterPlace(name="地域の縁側 辻堂", kind=PlaceKind.COMMUNITY_VERANDA),
    )
    assert state.places[place_id].kind is PlaceKind.COMMUNITY_VERANDA
    with pytest.raises(Rejected) as no_place:
        await consultations.receive_consultation(csw, received(window="community_place"))
    assert (no_place.value.status, no_place.value.field) == (422, "place_id")
    _, elsewhere = await agencies.register_place(
        as_agency("houkatsu"),
        "houkatsu",
        agencies.RegisterPlace(name="まちの保健室", kind=PlaceKind.NEIGHBOURHOOD_HEALTH_ROOM),
    )
    with pytest.raises(Rejected) as not_ours:
        await consultations.receive_consultation(
            csw, received(channel="drop_in", place_id=elsewhere)
        )
    assert (not_ours.value.code, not_ours.value.field) == ("place_not_found", "place_id")
    at_place = await consultations.receive_consultation(
        csw, received(window="community_place", channel="drop_in", place_id=place_id)
    )
    assert at_place.place_id == place_id and at_place.window is Window.COMMUNITY_PLACE


async def test_places_and_windows_are_recorded_by_the_agency_itself(
    as_agency: AgencyContext,
) -> None:
    with pytest.raises(Rejected) as other:
        await agencies.record_window(
            as_agency("houkatsu"), "shakyo", agencies.RecordWindow(window=Window.HEALTH_CENTER)
        )
    assert other.value.status == 403
    with pytest.raises(Rejected) as place:
        await agencies.record_window(
            as_agency("shakyo"), "shakyo", agencies.RecordWindow(window=Window.COMMUNITY_PLACE)
        )
    assert (place.value.status, place.value.field) == (422, "window")
    csw = as_agency("shakyo")
    await agencies.register_place(
        csw, "shakyo", agencies.RegisterPlace(name="つながるステーション", kind=PlaceKind.OTHER)
    )
    with pytest.raises(Rejected, match="already has a place"):
        await agencies.register_place(
            csw, "shakyo", agencies.RegisterPlace(name="つながるステーション", kind=PlaceKind.OTHER)
        )
    with pytest.raises(ValidationError) as blank:
        agencies.RegisterPlace(name="\u3000 ", kind=PlaceKind.OTHER)
    assert blank.value.errors()[0]["loc"] == ("name",)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channel": "brought_by_agency"}, "brought_by_agency"),
        ({"channel": "visit", "brought_by_agency": "houkatsu"}, "brought_by_agency"),
        ({"channel": "phone", "brought_by": "長女"}, "brought_by"),
    ],
)
async def test_who_brought_it_goes_with_a_brought_by_channel(
    as_agency: AgencyContext, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(Rejected) as refused:
        await consultations.receive_consultation(as_agency("shakyo"), received(**changes))
    assert (refused.value.status, refused.value.field) == (422, field)


async def test_brought_by_another_agency_names_it(as_agency: AgencyContext) -> None:
    state = await consultations.receive_consultation(
        as_agency("shakyo"),
        received(channel="brought_by_agency", brought_by_agency="hokensho", brought_by="保健師"),
    )
    assert state.channel is Channel.BROUGHT_BY_AGENCY
    assert (state.brought_by_agency, state.brought_by) == ("hokensho", "保健師")


async def test_unmet_needs_at_receipt_and_later(as_agency: AgencyContext) -> None:
    csw = as_agency("shakyo")
    state = await consultations.receive_consultation(
        csw, received(unmet_needs=["cannot_seek_help", "cannot_seek_help"])
    )
    assert state.unmet_needs == [UnmetNeed.CANNOT_SEEK_HELP]
    cid = state.consultation_id
    later = await consultations.record_unmet_needs(
        csw,
        cid,
        consultations.RecordUnmetNeeds.model_validate(
            {"unmet_needs": ["complex_household", "between_programmes"]}
        ),
    )
    assert later.unmet_needs == [UnmetNeed.COMPLEX_HOUSEHOLD, UnmetNeed.BETWEEN_PROGRAMMES]
    with pytest.raises(Rejected, match="already recorded"):
        await consultations.record_unmet_needs(
            csw,
            cid,
            consultations.RecordUnmetNeeds.model_validate(
                {"unmet_needs": ["complex_household", "between_programmes"]}
            ),
        )


async def test_accompaniment_stays_open_and_is_reviewed(as_agency: AgencyContext) -> None:
    csw = as_agency("shakyo")
    cid = (await consultations.receive_consultation(csw, received())).consultation_id
    with pytest.raises(Rejected, match="only an accompaniment"):
        await consultations.review_accompaniment(
            csw, cid, consultations.ReviewAccompaniment(next_review_on=today())
        )
    state = await consultations.continue_accompaniment(
        csw, cid, consultations.ContinueAccompaniment(review_on=today())
    )
    assert state.outcome is Outcome.ACCOMPANYING and state.review_on == today()
    with pytest.raises(Rejected) as past:
        await consultations.review_accompaniment(
            csw,
            cid,
            consultations.ReviewAccompaniment(next_review_on=today() - timedelta(days=1)),
        )
    assert past.value.field == "next_review_on"
    later = today() + timedelta(days=90)
    state = await consultations.review_accompaniment(
        csw, cid, consultations.ReviewAccompaniment(next_review_on=later)
    )
    assert state.review_on == later and state.outcome is Outcome.ACCOMPANYING
    with pytest.raises(Rejected, match="already in continuing accompaniment"):
        await consultations.provide_information(csw, cid, None)


async def test_information_given_closes_it(as_agency: AgencyContext) -> None:
    csw = as_agency("shakyo")
    cid = (await consultations.receive_consultation(csw, received())).consultation_id
    with pytest.raises(Rejected) as other:
        await consultations.provide_information(as_agency("houkatsu"), cid, None)
    assert other.value.status in (403, 404)
    state = await consultations.provide_information(csw, cid, "制度を案内")
    assert state.outcome is Outcome.INFORMATION_GIVEN and state.information_note == "制度を案内"


async def test_a_consultation_that_goes_to_outreach_is_linked_both_ways(
    as_agency: AgencyContext, store: EventStore
) -> None:
    csw = as_agency("shakyo")
    cid = (
        await consultations.receive_consultation(
            csw, received(concerns=["self_neglect"], summary="近所の方が心配している")
        )
    ).consultation_id
    state, case = await outreach.move_to_outreach(csw, cid, outreach.MoveToOutreach())
    assert state.outcome is Outcome.OUTREACH and state.outreach_id == case.outreach_id
    again = await outreach.open_outreach(store, None, case.outreach_id)
    assert (again.origin, again.origin_ref) == (OutreachOrigin.CONSULTATION, cid)
    assert again.concerns == [Concern.SELF_NEGLECT] and again.reason == "近所の方が心配している"
    with pytest.raises(Rejected, match="outreach case was already started"):
        await outreach.move_to_outreach(csw, cid, outreach.MoveToOutreach())


async def test_a_residents_concern_is_received_at_the_agencys_own_kind_of_window(
    bus: PolicyBus, store: EventStore, as_agency: AgencyContext
) -> None:
    def noticed(concern_id: str) -> ConcernNoticed:
        return ConcernNoticed.model_validate(
            {
                "concern_id": concern_id,
                "noticed_by": "neighbour",
                "reporter_link": "anonymous",
                "concerns": ["young_carer"],
                "description": "中学生が祖母の介護で休みがち",
                "person_asked_for_help": True,
                "forward_to": "hokenc",
                "noticed_at": datetime(2026, 11, 25, tzinfo=UTC),
            }
        )

    await bus.publish("community", noticed("n-before"))
    before = await consultations.open_consultation(
        store, None, derived_id("consultation", "n-before")
    )
    assert before.window is Window.OTHER_AGENCY, "no kind recorded yet"
    await agencies.record_window(
        as_agency("hokenc"), "hokenc", agencies.RecordWindow(window=Window.HEALTH_CENTER)
    )
    await bus.publish("community", noticed("n-after"))
    after = await consultations.open_consultation(
        store, None, derived_id("consultation", "n-after")
    )
    assert after.window is Window.HEALTH_CENTER
    assert after.concerns == [Concern.YOUNG_CARER]
