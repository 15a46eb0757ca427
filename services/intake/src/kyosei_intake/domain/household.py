"""The household (世帯): its members, its consents, and merges of duplicate records.

Two records of one household are merged by an event on each (HouseholdsMerged on
the survivor, HouseholdMergedInto on the other); no history is rewritten, and a
merged record takes no more events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from kyosei_events.catalogue.intake import (
    AgeBand,
    ConsentGiven,
    ConsentGiver,
    ConsentPurpose,
    ConsentWithdrawn,
    HouseholdMergedInto,
    HouseholdRegistered,
    HouseholdsMerged,
    MemberAdded,
    MemberAttribute,
    Relationship,
)
from kyosei_events.model import DomainEvent

from . import Rejected, invalid


@dataclass
class Member:
    member_id: str
    name: str | None
    kana: str | None
    birth_date: date | None
    age_band: AgeBand | None
    relationship: Relationship
    attributes: list[MemberAttribute]
    language: str | None


@dataclass
class Consent:
    consent_id: str
    member_id: str | None
    given_by: ConsentGiver
    agencies: list[str]
    all_agencies: bool
    purposes: list[ConsentPurpose]
    given_on: date
    withdrawn_on: date | None = None
    withdrawn_by: ConsentGiver | None = None

    def covers(self, agency_id: str, purpose: ConsentPurpose, on: date) -> bool:
        return (
            self.withdrawn_on is None
            and self.given_on <= on
            and purpose in self.purposes
            and (self.all_agencies or agency_id in self.agencies)
        )


@dataclass
class Household:
    household_id: str
    registered_by: str = ""
    address: str | None = None
    phone: str | None = None
    registered_at: datetime | None = None
    members: dict[str, Member] = field(default_factory=dict)
    consents: dict[str, Consent] = field(default_factory=dict)
    merged_into: str | None = None
    merged_from: list[str] = field(default_factory=list)
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    def evolve(self, event: DomainEvent) -> None:
        match event:
            case HouseholdRegistered():
                self.registered_by = event.registered_by
                self.address, self.phone = event.address, event.phone
                self.registered_at = event.registered_at
            case MemberAdded():
                self.members[event.member_id] = Member(
                    event.member_id,
                    event.name,
                    event.kana,
                    event.birth_date,
                    event.age_band,
                    event.relationship,
                    list(event.attributes or []),
                    event.language,
                )
            case HouseholdsMerged():
                self.merged_from.append(event.merged_household_id)
            case HouseholdMergedInto():
                self.merged_into = event.into_household_id
            case ConsentGiven():
                self.consents[event.consent_id] = Consent(
                    event.consent_id,
                    event.member_id,
                    event.given_by,
                    list(event.agencies),
                    event.all_agencies,
                    list(event.purposes),
                    event.given_on,
                )
            case ConsentWithdrawn():
                c = self.consents[event.consent_id]
                c.withdrawn_on, c.withdrawn_by = event.withdrawn_on, event.withdrawn_by
        self.version += 1


def _open(state: Household) -> None:
    if state.merged_into is not None:
        raise Rejected(
            "household_merged",
            f"this household record was merged into {state.merged_into}; use that one",
            f"この世帯は {state.merged_into} に統合されています。統合先を使ってください",
        )


def add_member(state: Household, member: MemberAdded) -> MemberAdded:
    _open(state)
    if member.member_id in state.members:
        raise Rejected("member_exists", "this member is already registered", "登録済みの世帯員です")
    return member


def merge(
    survivor: Household, duplicate: Household, reason: str, now: datetime
) -> tuple[DomainEvent, DomainEvent]:
    """Merge ``duplicate`` into ``survivor``: one event on each record."""
    if survivor.household_id == duplicate.household_id:
        raise invalid(
            "duplicate_household_id",
            "cannot_merge_with_itself",
            "a household cannot be merged with itself",
            "同じ世帯どうしは統合できません",
        )
    _open(survivor)
    _open(duplicate)
    return (
        HouseholdsMerged(
            household_id=survivor.household_id,
            merged_household_id=duplicate.household_id,
            reason=reason,
            merged_at=now,
        ),
        HouseholdMergedInto(
            household_id=duplicate.household_id,
            into_household_id=survivor.household_id,
            merged_at=now,
        ),
    )


def give_consent(state: Household, given: ConsentGiven) -> ConsentGiven:
    _open(state)
    if given.member_id is not None and given.member_id not in state.members:
        raise invalid(
            "member_id",
            "member_not_found",
            f"no member {given.member_id} in this household",
            "この世帯にその世帯員はいません",
        )
    if not given.all_agencies and not given.agencies:
        raise invalid(
            "agencies",
            "no_agencies",
            "name the agencies the consent covers, or set all_agencies",
            "同意の対象機関を指定するか、all_agencies を true にしてください",
        )
    if given.consent_id in state.consents:
        raise Rejected("consent_exists", "this consent is already recorded", "登録済みの同意です")
    return given


def withdraw_consent(
    state: Household,
    consent_id: str,
    withdrawn_by: ConsentGiver,
    withdrawn_on: date,
    note: str | None,
    now: datetime,
) -> ConsentWithdrawn:
    consent = state.consents.get(consent_id)
    if consent is None:
        raise Rejected(
            "consent_not_found", f"no consent {consent_id}", "該当する同意がありません", status=404
        )
    if consent.withdrawn_on is not None:
        raise Rejected(
            "consent_already_withdrawn",
            f"this consent was withdrawn on {consent.withdrawn_on}",
            "この同意はすでに撤回されています",
        )
    if withdrawn_on < consent.given_on:
        raise invalid(
            "withdrawn_on",
            "withdrawn_before_given",
            "a consent cannot be withdrawn before it was given",
            "同意日より前の日付で撤回することはできません",
        )
    return ConsentWithdrawn(
        consent_id=consent_id,
        household_id=state.household_id,
        withdrawn_by=withdrawn_by,
        withdrawn_on=withdrawn_on,
        note=note,
        recorded_at=now,
    )
