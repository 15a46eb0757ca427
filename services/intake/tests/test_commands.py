"""Intake's commands on a real (SQLite) store: what routes and policies both call.

The 8050 household: the mother (82) consents to sharing with 自立相談 (jiritsu); the
son (54), withdrawn for twenty years, refuses. Her consent opens her records to
jiritsu and none of his; his refusal blocks neither a consultation nor outreach.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from kyosei_events import EventStore
from kyosei_events.catalogue.intake import Channel, ConsentGiver, ConsentPurpose, Window
from kyosei_intake.access import open_household
from kyosei_intake.commands import consultations, households, outreach
from kyosei_intake.queries.households import picture
from kyosei_platform.application import CommandContext, Rejected
from kyosei_platform.auth import Identity, Role

Agencies = Callable[[str], CommandContext]  # the as_agency fixture

HOUKATSU, JIRITSU = "houkatsu", "jiritsu"
SHARING = ConsentPurpose.INFORMATION_SHARING


async def register_8050(store: EventStore, as_agency: Agencies) -> tuple[str, str, str]:
    registered = await households.register_household(
        as_agency(HOUKATSU),
        households.RegisterHousehold(
            address="松戸市本町1-2-3",
            members=[
                households.MemberIn(name="松戸 ハル", birth_date=date(1944, 4, 1)),
                households.MemberIn(name="松戸 一郎", birth_date=date(1972, 6, 15)),
            ],
        ),
    )
    assert registered.household_id is not None and not registered.candidates
    state = (await open_household(store, None, registered.household_id)).survivor
    mother, son = (m.member_id for m in state.members.values())
    return registered.household_id, mother, son


async def consult(as_agency: Agencies, hid: str, about: list[str], summary: str) -> str:
    received = await consultations.receive_consultation(
        as_agency(HOUKATSU),
        consultations.ReceiveConsultation(
            household_id=hid,
            member_ids=about,
            window=Window.COMMUNITY_GENERAL_SUPPORT_CENTER,
            channel=Channel.HOME_VISIT,
            concerns=["care"],
            summary=summary,
        ),
    )
    return received.consultation_id


def jiritsu() -> Identity:
    return Identity(JIRITSU, "j-1", Role.STAFF)


async def test_the_mothers_consent_opens_her_consultations_and_none_of_her_sons(
    store: EventStore, as_agency: Agencies
) -> None:
    hid, mother, son = await register_8050(store, as_agency)
    hers = await consult(as_agency, hid, [mother], "母に物忘れ、介護保険の申請")
    his = await consult(as_agency, hid, [son], "息子は20年ひきこもり")
    both = await consult(as_agency, hid, [], "母と息子の二人暮らし、年金のみ")

    # Before any consent, jiritsu has no part: the household is not even found.
    with pytest.raises(Rejected) as hidden:
        await picture(store, jiritsu(), hid)
    assert hidden.value.status == 404

    await households.give_consent(
        as_agency(HOUKATSU),
        hid,
        households.GiveConsent(member_id=mother, agencies=[JIRITSU], purposes=[SHARING]),
    )
    seen = await picture(store, jiritsu(), hid)
    assert [c.consultation_id for c in seen.consultations] == [hers]
    assert seen.opened_by_consent == [mother] and seen.access == "own"
    assert await consultations.open_consultation(store, jiritsu(), hers)
    for closed in (his, both):
        with pytest.raises(Rejected) as no:
            await consultations.open_consultation(store, jiritsu(), closed)
        assert no.value.status == 404


async def test_a_refusal_is_shown_and_blocks_neither_consultation_nor_outreach(
    store: EventStore, as_agency: Agencies
) -> None:
    hid, _, son = await register_8050(store, as_agency)
    _, refusal = await households.refuse_consent(
        as_agency(HOUKATSU),
        hid,
        households.RefuseConsent(
            member_id=son, agencies=[JIRITSU], purposes=[SHARING], note="会いたくない"
        ),
    )
    assert refusal.refused_by is ConsentGiver.PERSON
    houkatsu = Identity(HOUKATSU, "h-1", Role.STAFF)
    shown = await picture(store, houkatsu, hid)
    assert [(r.member_id, r.note) for r in shown.refusals] == [(son, "会いたくない")]

    assert await consult(as_agency, hid, [son], "本人は拒否、母が心配")
    started = await outreach.start_outreach(
        as_agency(HOUKATSU),
        outreach.StartOutreach(
            household_id=hid, member_id=son, concerns=["withdrawal"], reason="見守りを続ける"
        ),
    )
    assert started.member_id == son


async def test_a_guardian_consents_for_a_person_once_recorded_as_their_proxy(
    store: EventStore, as_agency: Agencies
) -> None:
    hid, mother, _ = await register_8050(store, as_agency)
    with pytest.raises(Rejected) as unrecorded:
        await households.give_consent(
            as_agency(HOUKATSU),
            hid,
            households.GiveConsent(
                member_id=mother, given_by="guardian", agencies=[JIRITSU], purposes=[SHARING]
            ),
        )
    assert unrecorded.value.code == "not_a_recorded_proxy"
    _, proxy = await households.record_proxy(
        as_agency(HOUKATSU),
        hid,
        households.RecordProxy(
            member_id=mother,
            kind="guardian",
            proxy_name="成年後見人 佐藤",
            basis="家庭裁判所の審判",
        ),
    )
    _, consent = await households.give_consent(
        as_agency(HOUKATSU),
        hid,
        households.GiveConsent(
            member_id=mother,
            given_by="guardian",
            proxy_id=proxy.proxy_id,
            agencies=[JIRITSU],
            purposes=[SHARING],
        ),
    )
    assert consent.proxy_id == proxy.proxy_id
    assert (await picture(store, jiritsu(), hid)).opened_by_consent == [mother]


async def test_other_needs_its_words_whoever_records_it(as_agency: Agencies) -> None:
    with pytest.raises(Rejected) as missing:
        await consultations.receive_consultation(
            as_agency(HOUKATSU),
            consultations.ReceiveConsultation(
                window=Window.WELFARE_GENERAL,
                channel=Channel.PHONE,
                concerns=["other"],
                summary="匿名の電話",
            ),
        )
    assert missing.value.field == "other_concern"
