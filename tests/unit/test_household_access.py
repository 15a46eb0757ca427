"""The shared access rules (kyosei_households.access), pure: an 8050 household where
the mother consents to sharing and the son refuses contact."""

from __future__ import annotations

from datetime import date

from kyosei_events.catalogue.intake import ConsentGiver, ConsentPurpose
from kyosei_households.access import (
    COORDINATION,
    Consent,
    Household,
    Member,
    may_read_household,
    may_read_record,
)
from kyosei_platform.auth import Identity, Role

MOTHER, SON = "m-mother", "m-son"
B = "jiritsu"
ON = date(2026, 11, 10)
SHARING = ConsentPurpose.INFORMATION_SHARING


def consent(member: str | None, *, agencies: tuple[str, ...] = (B,), **more: object) -> Consent:
    fields: dict[str, object] = {
        "consent_id": f"k-{member}",
        "household_id": "h-1",
        "member_id": member,
        "given_by": ConsentGiver.PERSON,
        "proxy_id": None,
        "agencies": frozenset(agencies),
        "all_agencies": False,
        "purposes": frozenset({SHARING}),
        "given_on": date(2026, 11, 1),
    }
    return Consent(**(fields | more))  # type: ignore[arg-type]


def household(*consents: Consent) -> Household:
    return Household(
        household_id="h-1",
        record_ids=("h-1",),
        registered_by="houkatsu",
        members=(Member(MOTHER, "h-1", "head"), Member(SON, "h-1", "child")),
        consents=consents,
        proxies=(),
        refusals=(),
    )


def staff(agency: str = B, role: Role = Role.STAFF) -> Identity:
    return Identity(agency, "s-1", role)


def reads(identity: Identity, persons: list[str], h: Household, **kw: object) -> bool:
    args: dict[str, object] = {"parties": set(), "persons": persons, "household": h, "on": ON}
    return may_read_record(identity, **(args | kw))  # type: ignore[arg-type]


def test_the_mothers_consent_opens_her_records_and_none_of_the_sons() -> None:
    h = household(consent(MOTHER))
    assert reads(staff(), [MOTHER], h)
    assert not reads(staff(), [SON], h)
    assert not reads(staff(), [MOTHER, SON], h), "a record about both needs both consents"
    assert not reads(staff(), [], h), "a record naming nobody concerns every member"
    assert not reads(staff("another"), [MOTHER], h), "only the agencies the consent names"


def test_every_persons_consent_opens_what_concerns_them_all() -> None:
    h = household(consent(MOTHER), consent(SON))
    assert reads(staff(), [MOTHER, SON], h)
    assert reads(staff(), [], h)


def test_consent_runs_from_its_date_until_withdrawn_and_for_its_purposes() -> None:
    withdrawn = household(consent(MOTHER, withdrawn_on=date(2026, 11, 5)))
    assert reads(staff(), [MOTHER], withdrawn, on=date(2026, 11, 4))
    assert not reads(staff(), [MOTHER], withdrawn, on=date(2026, 11, 5))
    assert not reads(staff(), [MOTHER], withdrawn, on=date(2026, 10, 31)), "before it was given"
    plan_only = household(consent(MOTHER, purposes=frozenset({ConsentPurpose.SUPPORT_PLAN})))
    assert not reads(staff(), [MOTHER], plan_only)
    assert reads(staff(), [MOTHER], plan_only, purpose=ConsentPurpose.SUPPORT_PLAN)


def test_a_consent_recorded_before_consent_was_per_person_opens_no_persons_records() -> None:
    legacy = household(consent(None))
    assert not reads(staff(), [MOTHER], legacy)
    assert not reads(staff(), [], legacy)
    assert may_read_household(staff(), legacy, set(), ON), "household-level information only"


def test_parties_auditors_coordinators_and_operators() -> None:
    h = household()
    assert reads(staff(), [SON], h, parties={B}), "party to the record"
    assert reads(staff("anyone", Role.AUDITOR), [SON], h)
    assert reads(staff("c", Role.COORDINATOR), [SON], h, parties={COORDINATION})
    assert not reads(staff("c", Role.STAFF), [SON], h, parties={COORDINATION})
    assert not reads(staff(B, Role.OPERATOR), [SON], h, parties={B}), "operators read nothing"
    assert not reads(staff(), [SON], None), "no household, no consent to open it"


def test_household_wide_information_needs_a_part_or_a_members_consent() -> None:
    assert not may_read_household(staff(), household(), set(), ON)
    assert may_read_household(staff(), household(), {B}, ON)
    assert may_read_household(staff(), household(consent(SON)), set(), ON)
    assert not may_read_household(staff(B, Role.OPERATOR), household(), {B}, ON)


def test_no_consent_ever_opens_a_record_about_someone_who_did_not_consent() -> None:
    """For random households, consents (active, withdrawn, future, for other agencies or
    purposes) and records: an agency that is not party to a record reads it only if
    every person it concerns has their own active consent naming that agency for
    情報共有 on that day."""
    import random

    rng = random.Random(7)
    agencies = ["a", "b", "c"]
    outcomes = []
    for _ in range(3000):
        people = [f"m{i}" for i in range(rng.randint(1, 4))]
        consents = tuple(
            consent(
                rng.choice([*people, None]),
                agencies=tuple(rng.sample(agencies, rng.randint(1, 3))),
                consent_id=f"k{n}",
                purposes=frozenset(rng.sample(list(ConsentPurpose), rng.randint(1, 2))),
                given_on=date(2026, 11, rng.randint(1, 20)),
                withdrawn_on=rng.choice([None, date(2026, 11, rng.randint(1, 20))]),
                all_agencies=rng.random() < 0.1,
            )
            for n in range(rng.randint(0, 5))
        )
        h = Household(
            household_id="h",
            record_ids=("h",),
            registered_by="a",
            members=tuple(Member(p, "h", "other") for p in people),
            consents=consents,
            proxies=(),
            refusals=(),
        )
        persons = rng.sample(people, rng.randint(0, len(people)))
        reader = staff(rng.choice(agencies))
        on = date(2026, 11, rng.randint(1, 25))
        opened = reads(reader, persons, h, on=on)
        concerned = set(persons) or set(people)
        consenting = {
            c.member_id
            for c in consents
            if c.member_id is not None
            and SHARING in c.purposes
            and (c.all_agencies or reader.agency_id in c.agencies)
            and c.given_on <= on
            and (c.withdrawn_on is None or on < c.withdrawn_on)
        }
        assert opened == (concerned <= consenting), (persons, consents, reader, on)
        outcomes.append(opened)
    assert 100 < sum(outcomes) < 2900, "both opened and closed records were tried"


# -- one person with two ids, after a merge of two records of the household ------------

SON_TOO = "m-son-in-the-other-record"


def merged(*consents: Consent) -> Household:
    return Household(
        household_id="h-1",
        record_ids=("h-1", "h-2"),
        registered_by="houkatsu",
        members=(
            Member(MOTHER, "h-1", "head"),
            Member(SON, "h-1", "child"),
            Member(SON_TOO, "h-2", "head", same_as=SON),
        ),
        consents=consents,
        proxies=(),
        refusals=(),
    )


def test_both_ids_of_a_combined_person_are_one_person() -> None:
    h = merged()
    assert h.person(SON_TOO) == SON and h.person(SON) == SON
    assert h.people == {MOTHER, SON} and h.member_ids == {MOTHER, SON, SON_TOO}
    assert h.ids_of(SON) == {SON, SON_TOO}


def test_a_consent_under_one_id_opens_a_record_naming_the_other() -> None:
    under_the_old_id = merged(consent(SON_TOO))
    assert reads(staff(), [SON], under_the_old_id)
    under_the_kept_id = merged(consent(SON))
    assert reads(staff(), [SON_TOO], under_the_kept_id)
    assert not reads(staff(), [MOTHER], under_the_kept_id)
    # A record naming nobody concerns every person: two people, not three ids.
    assert reads(staff(), [], merged(consent(SON_TOO), consent(MOTHER)))
