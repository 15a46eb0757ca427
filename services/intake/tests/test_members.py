"""Each person in the household, through intake's commands on a real (SQLite) store:
members' life changes, people combined when two records of one household merge, and
the duplicate candidates dismissed at registration.

The 8050 household of DOMAIN.md: the mother (82) and her son (54), withdrawn for
twenty years. Her death is the date coordinators must see (親亡き後).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from kyosei_events import EventStore
from kyosei_events.catalogue.intake import StatusAttribute, StatusGrade
from kyosei_intake.access import open_household
from kyosei_intake.commands import households
from kyosei_intake.queries.households import member_history, picture
from kyosei_platform.application import CommandContext, Rejected, today
from kyosei_platform.auth import Identity, Role

from .test_commands import HOUKATSU, JIRITSU, consult, register_8050

Agencies = Callable[[str], CommandContext]
CHANGE = TypeAdapter(households.MemberChangeIn)
HOUKATSU_STAFF = Identity(HOUKATSU, "h-1", Role.STAFF)


def change(**body: object) -> households.Death:
    return CHANGE.validate_python(body)  # type: ignore[return-value]


async def test_a_death_is_recorded_once_and_nothing_after_it(
    store: EventStore, as_agency: Agencies
) -> None:
    hid, mother, son = await register_8050(store, as_agency)
    ctx = as_agency(HOUKATSU)
    died_on = today() - timedelta(days=3)
    _, entered = await households.record_member_change(
        ctx,
        hid,
        mother,
        change(kind="facility_started", facility="hospital", on=str(died_on - timedelta(days=20))),
    )
    assert entered.status().facility == "hospital"
    _, dead = await households.record_member_change(
        ctx, hid, mother, change(kind="died", on=str(died_on), note="入院先で逝去")
    )
    assert dead.status().deceased_on == died_on and dead.status().facility is None

    with pytest.raises(Rejected) as twice:
        await households.record_member_change(ctx, hid, mother, change(kind="died"))
    assert twice.value.code == "member_already_deceased"
    assert str(died_on) in twice.value.message and twice.value.status == 409
    with pytest.raises(Rejected) as after:
        await households.record_member_change(
            ctx, hid, mother, change(kind="departed", reason="moved_out")
        )
    assert after.value.code == "after_death" and after.value.status == 422

    # A date in the future is refused before anything is stored.
    with pytest.raises(ValidationError, match="future"):
        change(kind="died", on=str(today() + timedelta(days=1)))

    # The wrong date is corrected by a retraction and a new record: both stay.
    first = next(c for c in dead.changes if c.event.event_type == "MemberDied")
    await households.retract_member_change(
        ctx, hid, mother, first.event.change_id, households.RetractChange(reason="日付の誤り")
    )
    _, fixed = await households.record_member_change(
        ctx, hid, mother, change(kind="died", on=str(died_on - timedelta(days=1)))
    )
    assert fixed.status().deceased_on == died_on - timedelta(days=1)
    history = await member_history(store, HOUKATSU_STAFF, hid, mother)
    assert [(h.kind.value, h.retracted) for h in history] == [
        ("MemberFacilityStayStarted", False),
        ("MemberDied", False),
        ("MemberDied", True),
    ]
    assert history[2].retraction_reason == "日付の誤り" and history[2].note == "入院先で逝去"

    seen = await picture(store, HOUKATSU_STAFF, hid)
    her = next(m for m in seen.members if m.member_id == mother)
    assert not her.status.alive and her.status.deceased_on == died_on - timedelta(days=1)
    assert [(e.member_id, e.kind.value, e.on) for e in seen.life_events] == [
        (mother, "MemberFacilityStayStarted", died_on - timedelta(days=20)),
        (mother, "MemberDied", died_on - timedelta(days=1)),
    ]
    assert next(m for m in seen.members if m.member_id == son).status.alive


async def test_moves_births_and_certifications(store: EventStore, as_agency: Agencies) -> None:
    hid, mother, son = await register_8050(store, as_agency)
    ctx = as_agency(HOUKATSU)
    _, moved = await households.record_member_change(
        ctx, hid, son, change(kind="departed", reason="moved_out", on="2026-01-10")
    )
    assert not moved.status().living_in_household
    with pytest.raises(Rejected) as again:
        await households.record_member_change(ctx, hid, son, change(kind="departed"))
    assert again.value.code == "member_not_living_in_household"
    _, back = await households.record_member_change(
        ctx, hid, son, change(kind="joined", on="2026-03-01")
    )
    assert back.status().living_in_household and back.status().joined_reason == "returned"

    _, baby = await households.add_member(
        ctx,
        hid,
        households.NewMember(
            name="松戸 ひかり",
            birth_date=today() - timedelta(days=2),
            relationship="grandchild",
            joined_reason="born",
        ),
    )
    assert baby.status().joined_on == today() - timedelta(days=2)
    with pytest.raises(ValidationError):
        households.NewMember(name="x", joined_reason="returned")

    _, care3 = await households.record_member_change(
        ctx,
        hid,
        mother,
        change(kind="attribute_changed", attribute="care_need_level", grade="care_3"),
    )
    assert [(c.attribute, c.grade) for c in care3.certifications()] == [
        (StatusAttribute.CARE_NEED_LEVEL, StatusGrade.CARE_3)
    ]
    with pytest.raises(Rejected) as wrong:
        await households.record_member_change(
            ctx,
            hid,
            mother,
            change(kind="attribute_changed", attribute="care_need_level", grade="grade_2"),
        )
    assert wrong.value.code == "grade_not_of_attribute" and wrong.value.status == 422
    with pytest.raises(Rejected) as before_birth:
        await households.record_member_change(
            ctx, hid, son, change(kind="facility_started", facility="hospital", on="1970-01-01")
        )
    assert before_birth.value.code == "before_birth"
    with pytest.raises(Rejected) as unknown:
        await households.record_member_change(ctx, hid, "nobody", change(kind="died"))
    assert unknown.value.status == 404


async def register_son_again(
    as_agency: Agencies, name: str = "松戸一郎", agency: str = JIRITSU
) -> str:
    registered = await households.register_household(
        as_agency(agency),
        households.RegisterHousehold(
            members=[households.MemberIn(name=name, birth_date=date(1972, 6, 15))],
            proceed_despite_duplicates=True,
        ),
    )
    assert registered.household_id is not None
    return registered.household_id


async def test_a_merge_combines_the_son_and_his_consent_counts_under_both_ids(
    store: EventStore, as_agency: Agencies
) -> None:
    hid, mother, son = await register_8050(store, as_agency)
    other = await register_son_again(as_agency)
    (son_too,) = (await open_household(store, None, other)).survivor.members
    # 自立相談 recorded his consent on its own record, before anyone saw the duplicate.
    await households.give_consent(
        as_agency(JIRITSU),
        other,
        households.GiveConsent(
            member_id=son_too, agencies=[HOUKATSU, "shakyo"], purposes=["information_sharing"]
        ),
    )
    about_him = await consult(as_agency, hid, [son], "息子は20年ひきこもり")

    # The registration dismissed the 8050 record as a candidate: visible on both.
    dismissed = (await picture(store, HOUKATSU_STAFF, hid)).dismissed_duplicates
    assert [(d.household_id, d.other_household_id, d.dismissed_by) for d in dismissed] == [
        (other, hid, JIRITSU)
    ]

    await households.merge_households(
        as_agency(HOUKATSU),
        hid,
        households.MergeHouseholds(duplicate_household_id=other, reason="同じ世帯"),
    )
    seen = await picture(store, HOUKATSU_STAFF, other)
    assert seen.household_id == hid
    assert sorted(m.member_id for m in seen.members) == sorted([mother, son])
    him = next(m for m in seen.members if m.member_id == son)
    assert him.member_ids == [son, son_too] and him.consultation_ids == [about_him]

    # The consent given under his other id opens the consultation naming this one.
    shakyo = Identity("shakyo", "s-1", Role.STAFF)
    opened = await picture(store, shakyo, hid)
    assert opened.opened_by_consent == [son] and opened.access == "own"
    assert [c.consultation_id for c in opened.consultations] == [about_him]

    # Consent may name either id after the merge; with the mother's, every person's
    # records are open: two people, not three ids.
    await households.give_consent(
        as_agency(HOUKATSU),
        hid,
        households.GiveConsent(member_id=son_too, agencies=["shakyo"], purposes=["referral"]),
    )
    await households.give_consent(
        as_agency(HOUKATSU),
        hid,
        households.GiveConsent(
            member_id=mother, agencies=["shakyo"], purposes=["information_sharing"]
        ),
    )
    assert (await picture(store, shakyo, hid)).access == "full"

    # A life change recorded under either id is the same person's.
    await households.record_member_change(
        as_agency(HOUKATSU), hid, son_too, change(kind="departed", on="2026-02-01")
    )
    after = await picture(store, HOUKATSU_STAFF, hid)
    assert not next(m for m in after.members if m.member_id == son).status.living_in_household


async def test_staff_pair_people_the_names_do_not_match(
    store: EventStore, as_agency: Agencies
) -> None:
    hid, _, son = await register_8050(store, as_agency)
    other = await register_son_again(as_agency, name="マツド イチロウ", agency=HOUKATSU)
    (son_too,) = (await open_household(store, None, other)).survivor.members
    with pytest.raises(Rejected) as wrong:
        await households.merge_households(
            as_agency(HOUKATSU),
            hid,
            households.MergeHouseholds(
                duplicate_household_id=other,
                reason="同じ世帯",
                same_people=[{"member_id": son_too, "duplicate_member_id": son}],
            ),
        )
    assert wrong.value.status == 422
    await households.merge_households(
        as_agency(HOUKATSU),
        hid,
        households.MergeHouseholds(
            duplicate_household_id=other,
            reason="同じ世帯",
            same_people=[{"member_id": son, "duplicate_member_id": son_too}],
        ),
    )
    seen = await picture(store, HOUKATSU_STAFF, hid)
    assert len(seen.members) == 2
    assert next(m for m in seen.members if m.member_id == son).member_ids == [son, son_too]
