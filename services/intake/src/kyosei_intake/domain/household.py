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
    ConsentRefused,
    ConsentWithdrawn,
    HouseholdMergedInto,
    HouseholdRegistered,
    HouseholdsMerged,
    MemberAdded,
    MemberAttribute,
    ProxyRecorded,
    Relationship,
)
from kyosei_events.model import DomainEvent
from kyosei_platform.application import Rejected, invalid, stream_id, wrong_state


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


def stream(household_id: str) -> str:
    """The stream of one household record."""
    return stream_id("household", household_id)


@dataclass
class Proxy:
    """Someone recorded as acting for a member in matters of consent (代理人)."""

    proxy_id: str
    member_id: str
    kind: ConsentGiver
    proxy_member_id: str | None
    proxy_name: str | None
    basis: str | None


@dataclass
class Refusal:
    """同意拒否: who refused, about whom, what was asked, when."""

    refusal_id: str
    member_id: str
    refused_by: ConsentGiver
    proxy_id: str | None
    agencies: list[str]
    all_agencies: bool
    purposes: list[ConsentPurpose]
    refused_on: date
    note: str | None


@dataclass
class Consent:
    consent_id: str
    member_id: str | None
    given_by: ConsentGiver
    proxy_id: str | None
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
    proxies: dict[str, Proxy] = field(default_factory=dict)
    refusals: dict[str, Refusal] = field(default_factory=dict)
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
                    event.proxy_id,
                    list(event.agencies),
                    event.all_agencies,
                    list(event.purposes),
                    event.given_on,
                )
            case ProxyRecorded():
                self.proxies[event.proxy_id] = Proxy(
                    event.proxy_id,
                    event.member_id,
                    event.kind,
                    event.proxy_member_id,
                    event.proxy_name,
                    event.basis,
                )
            case ConsentRefused():
                self.refusals[event.refusal_id] = Refusal(
                    event.refusal_id,
                    event.member_id,
                    event.refused_by,
                    event.proxy_id,
                    list(event.agencies),
                    event.all_agencies,
                    list(event.purposes),
                    event.refused_on,
                    event.note,
                )
            case ConsentWithdrawn():
                c = self.consents[event.consent_id]
                c.withdrawn_on, c.withdrawn_by = event.withdrawn_on, event.withdrawn_by
        self.version += 1


def _open(state: Household) -> None:
    if state.merged_into is not None:
        raise wrong_state(
            "household_merged",
            f"this household record was merged into {state.merged_into}",
            f"この世帯は {state.merged_into} に統合されています",
            "record it on that household instead",
            "統合先の世帯に記録してください",
        )


def add_member(state: Household, member: MemberAdded) -> MemberAdded:
    _open(state)
    if member.member_id in state.members:
        raise wrong_state(
            "member_exists",
            f"member {member.member_id} is already registered in this household",
            "この世帯員はすでに登録されています",
            "nothing more to do",
            "操作は不要です",
        )
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


def _member(state: Household, member_id: str | None, field: str = "member_id") -> str:
    if member_id is None:
        raise invalid(
            field,
            "member_required",
            "consent belongs to a person: name the member it is about",
            "同意は本人ごとです。対象の世帯員を指定してください",
        )
    if member_id not in state.members:
        raise invalid(
            field,
            "member_not_found",
            f"no member {member_id} in this household",
            "この世帯にその世帯員はいません",
        )
    return member_id


def _acting_for(state: Household, member_id: str, by: ConsentGiver, proxy_id: str | None) -> None:
    """The person decides for themself; family or a guardian only as their recorded proxy."""
    if by is ConsentGiver.PERSON:
        if proxy_id is not None:
            raise invalid(
                "proxy_id",
                "proxy_for_person",
                "a person consenting for themself needs no proxy_id",
                "本人による同意には proxy_id は不要です",
            )
        return
    proxy = state.proxies.get(proxy_id or "")
    if proxy is None or proxy.member_id != member_id or proxy.kind is not by:
        raise invalid(
            "proxy_id",
            "not_a_recorded_proxy",
            f"{by.value} may act for member {member_id} only when recorded as that "
            "member's proxy (POST /households/{id}/proxies); give that proxy_id",
            "家族・後見人が本人に代わって同意できるのは、その本人の代理人として登録されて"
            "いる場合だけです",
        )


def _names_agencies(agencies: list[str], all_agencies: bool) -> None:
    if not all_agencies and not agencies:
        raise invalid(
            "agencies",
            "no_agencies",
            "name the agencies the consent covers, or set all_agencies",
            "同意の対象機関を指定するか、all_agencies を true にしてください",
        )


def record_proxy(state: Household, proxy: ProxyRecorded) -> ProxyRecorded:
    _open(state)
    _member(state, proxy.member_id)
    if proxy.kind is ConsentGiver.PERSON:
        raise invalid(
            "kind",
            "person_is_not_a_proxy",
            "a proxy is family or a guardian, not the person",
            "代理人は家族または後見人です",
        )
    if proxy.proxy_member_id is not None:
        _member(state, proxy.proxy_member_id, "proxy_member_id")
        if proxy.proxy_member_id == proxy.member_id:
            raise invalid(
                "proxy_member_id",
                "own_proxy",
                "a member cannot be their own proxy",
                "本人を本人の代理人にはできません",
            )
    elif not proxy.proxy_name:
        raise invalid(
            "proxy_name",
            "proxy_unnamed",
            "name the proxy: proxy_member_id for a household member, else proxy_name",
            "代理人を指定してください (世帯員なら proxy_member_id、それ以外は proxy_name)",
        )
    return proxy


def give_consent(state: Household, given: ConsentGiven) -> ConsentGiven:
    _open(state)
    member_id = _member(state, given.member_id)
    _acting_for(state, member_id, given.given_by, given.proxy_id)
    _names_agencies(given.agencies, given.all_agencies)
    if given.consent_id in state.consents:
        raise wrong_state(
            "consent_exists",
            f"consent {given.consent_id} is already recorded",
            "この同意はすでに登録されています",
            "nothing more to do",
            "操作は不要です",
        )
    return given


def refuse_consent(state: Household, refused: ConsentRefused) -> ConsentRefused:
    """同意拒否 is recorded like consent, and like consent only by the person or their
    recorded proxy. It blocks nothing but sharing."""
    _open(state)
    member_id = _member(state, refused.member_id)
    _acting_for(state, member_id, refused.refused_by, refused.proxy_id)
    _names_agencies(refused.agencies, refused.all_agencies)
    return refused


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
        raise wrong_state(
            "consent_already_withdrawn",
            f"this consent is already withdrawn (on {consent.withdrawn_on})",
            f"この同意はすでに撤回されています ({consent.withdrawn_on})",
            "nothing more to do; to share again, record a new consent",
            "操作は不要です。再び共有するには新しく同意を登録してください",
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
