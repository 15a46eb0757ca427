"""Household commands (世帯): register with a duplicate check, add members, record
their life changes (death, moving out or in, birth, facility stays, certifications),
merge duplicate records and the people they share, record proxies, and each person's
consent, refusal and withdrawal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

from pydantic import Field, field_validator

from kyosei_events import DomainEvent
from kyosei_events.catalogue.common import AgencyId, Id
from kyosei_events.catalogue.intake import (
    AgeBand,
    ConsentGiven,
    ConsentGiver,
    ConsentPurpose,
    ConsentRefused,
    DepartureReason,
    FacilityKind,
    HouseholdRegistered,
    JoinReason,
    MemberAdded,
    MemberAttribute,
    MemberAttributeChanged,
    MemberChange,
    MemberChangeRetracted,
    MemberDeparted,
    MemberDied,
    MemberFacilityStayEnded,
    MemberFacilityStayStarted,
    MemberJoined,
    ProxyRecorded,
    Relationship,
    StatusAttribute,
    StatusGrade,
)
from kyosei_platform.api import Name, Note, RequestModel, ShortText, Text, UniqueList
from kyosei_platform.application import (
    Change,
    CommandContext,
    Rejected,
    now,
    retry_on_conflict,
    today,
)

from ..access import open_household
from ..domain import household as domain
from ..queries import households as queries

stream = domain.stream


class MemberIn(RequestModel):
    """A household member (世帯員). Name, kana, birth date and attributes are sealed."""

    name: Name = Field(description="氏名 (personal); not only blanks")
    kana: Name | None = Field(None, description="ふりがな (personal)")
    birth_date: date | None = Field(None, description="生年月日 (personal)")
    age_band: AgeBand | None = Field(None, description="年齢区分, when the birth date is unknown")
    relationship: Relationship = Relationship.UNKNOWN
    attributes: UniqueList[MemberAttribute] = Field(default_factory=list, max_length=30)
    language: str | None = Field(None, max_length=35, description="BCP 47, e.g. ja, vi, pt-BR")

    @field_validator("birth_date")
    @classmethod
    def _past(cls, v: date | None) -> date | None:
        if v is not None and v > today():
            raise ValueError("a birth date cannot be in the future")
        return v


class RegisterHousehold(RequestModel):
    address: ShortText | None = Field(None, description="住所 (personal)")
    phone: str | None = Field(None, max_length=40, description="電話番号 (personal)")
    members: list[MemberIn] = Field(min_length=1, max_length=30)
    proceed_despite_duplicates: bool = Field(
        False,
        description="register even though the duplicate check found possible matches "
        "(they are recorded as dismissed)",
    )


class NewMember(MemberIn):
    """世帯員追加. With ``joined_reason`` the member's arrival is recorded as a life change
    too (出生 born, 転入 moved_in), dated ``joined_on`` (default: the birth date for a
    birth, else today)."""

    joined_reason: JoinReason | None = Field(
        None, description="born or moved_in: record the arrival as a life change"
    )
    joined_on: date | None = Field(None, description="when they arrived (not in the future)")

    @field_validator("joined_on")
    @classmethod
    def _joined_past(cls, v: date | None) -> date | None:
        return _not_future(v)

    @field_validator("joined_reason")
    @classmethod
    def _new_arrival(cls, v: JoinReason | None) -> JoinReason | None:
        if v is JoinReason.RETURNED:
            raise ValueError(
                "a new member is born or moves in; 'returned' is for a member "
                "already on the household's record"
            )
        return v


class SamePerson(RequestModel):
    """Two member records that are one person: one of this household, one of the record
    merged into it."""

    member_id: Id = Field(description="the member of this household")
    duplicate_member_id: Id = Field(description="the same person in the merged record")


class MergeHouseholds(RequestModel):
    duplicate_household_id: Id = Field(description="the record to merge into this one")
    reason: Text = Field(description="why they are one household")
    same_people: list[SamePerson] = Field(
        default_factory=list,
        max_length=30,
        description="people staff judged to be the same; members with the same name and "
        "birth date are combined without being named here",
    )


class RecordProxy(RequestModel):
    """代理人登録: who may consent for a member (family, or a guardian)."""

    member_id: Id = Field(description="the member the proxy acts for")
    kind: ConsentGiver = Field(description="family or guardian")
    proxy_member_id: Id | None = Field(None, description="the proxy, if a household member")
    proxy_name: Name | None = Field(None, description="otherwise (personal)")
    basis: Note = None


class _ConsentTerms(RequestModel):
    member_id: Id | None = Field(
        None, description="the person the consent is about (required: consent is per person)"
    )
    proxy_id: Id | None = Field(None, description="with family or guardian: their proxy record")
    agencies: UniqueList[AgencyId] = Field(default_factory=list, max_length=200)
    all_agencies: bool = False
    purposes: UniqueList[ConsentPurpose] = Field(min_length=1, max_length=20)


def _not_future(v: date | None) -> date | None:
    if v is not None and v > today():
        raise ValueError("cannot be recorded for a future date")
    return v


# -- members' life changes -------------------------------------------------------------


class _Change(RequestModel):
    on: date | None = Field(
        None, description="the date it took effect (default: today, JST; never in the future)"
    )
    note: Note = None

    @field_validator("on")
    @classmethod
    def _on_past(cls, v: date | None) -> date | None:
        return _not_future(v)


class Death(_Change):
    """死亡 (MemberDied)."""

    kind: Literal["died"]


class Departure(_Change):
    """転出・別居 (MemberDeparted): no longer living in the household."""

    kind: Literal["departed"]
    reason: DepartureReason = DepartureReason.MOVED_OUT


class Arrival(_Change):
    """A member on the record comes (back) to live in the household (MemberJoined)."""

    kind: Literal["joined"]
    reason: JoinReason = JoinReason.RETURNED

    @field_validator("reason")
    @classmethod
    def _not_born(cls, v: JoinReason) -> JoinReason:
        if v is JoinReason.BORN:
            raise ValueError(
                "a birth adds a new member: POST /households/{id}/members with joined_reason born"
            )
        return v


class FacilityStayStart(_Change):
    """施設入所・入院 (MemberFacilityStayStarted)."""

    kind: Literal["facility_started"]
    facility: FacilityKind
    facility_name: Name | None = Field(None, description="(personal)")


class FacilityStayEnd(_Change):
    """退所・退院 (MemberFacilityStayEnded)."""

    kind: Literal["facility_ended"]


class AttributeChange(_Change):
    """認定・手帳等の変更 (MemberAttributeChanged): ``grade`` from ``on``; null ends it."""

    kind: Literal["attribute_changed"]
    attribute: StatusAttribute
    grade: StatusGrade | None = Field(
        description="the grade held from ``on`` (see the attribute's grades); null: no longer held"
    )


MemberChangeIn = Annotated[
    Death | Departure | Arrival | FacilityStayStart | FacilityStayEnd | AttributeChange,
    Field(discriminator="kind"),
]


class RetractChange(RequestModel):
    reason: Text = Field(description="why it was wrong")


class GiveConsent(_ConsentTerms):
    given_by: ConsentGiver = ConsentGiver.PERSON
    given_on: date | None = Field(None, description="default: today (JST)")
    _given_on = field_validator("given_on")(_not_future)


class RefuseConsent(_ConsentTerms):
    refused_by: ConsentGiver = ConsentGiver.PERSON
    refused_on: date | None = Field(None, description="default: today (JST)")
    note: Note = None
    _refused_on = field_validator("refused_on")(_not_future)


class WithdrawConsent(RequestModel):
    withdrawn_by: ConsentGiver = ConsentGiver.PERSON
    withdrawn_on: date | None = Field(None, description="default: today (JST)")
    note: Note = None


@dataclass
class Registration:
    """What registering gave: the new household, or the candidates to look at first."""

    household_id: str | None
    candidates: list[queries.Candidate]


async def register_household(ctx: CommandContext, cmd: RegisterHousehold) -> Registration:
    """世帯登録. Before anything is stored, existing records are checked for the same
    person; candidates stop the registration unless the caller proceeds anyway."""
    async with ctx.connect() as conn:
        candidates = await queries.duplicates(
            conn,
            ctx.store.vault,
            [(m.name, m.kana, m.birth_date) for m in cmd.members],
            cmd.address,
            cmd.phone,
        )
    if candidates and not cmd.proceed_despite_duplicates:
        return Registration(None, candidates)
    household_id = str(uuid.uuid4())
    events = [
        HouseholdRegistered(
            household_id=household_id,
            registered_by=ctx.agency_id,
            address=cmd.address,
            phone=cmd.phone,
            duplicates_dismissed=[c.household_id for c in candidates],
            registered_at=now(),
        ),
        *(
            MemberAdded(household_id=household_id, member_id=str(uuid.uuid4()), **m.model_dump())
            for m in cmd.members
        ),
    ]
    state = domain.Household(household_id)
    await ctx.save(Change(state, stream(household_id), events, household_id, expected=0))
    return Registration(household_id, candidates)


async def _survivor(ctx: CommandContext, household_id: str) -> domain.Household:
    opened = await open_household(ctx.store, ctx.actor, household_id)
    state = opened.survivor
    state.elsewhere = opened.directory.member_ids - set(state.members)
    return state


async def _record(
    ctx: CommandContext,
    state: domain.Household,
    event: DomainEvent,
    if_match: int | None,
) -> None:
    await ctx.save(Change(state, stream(state.household_id), [event], state.household_id, if_match))


@retry_on_conflict
async def add_member(
    ctx: CommandContext, household_id: str, cmd: NewMember, if_match: int | None = None
) -> tuple[domain.Household, domain.Person]:
    """世帯員追加, with the arrival (birth, moving in) as a life change when given."""
    opened = await open_household(ctx.store, ctx.actor, household_id)
    state = opened.survivor
    added = domain.add_member(
        state,
        MemberAdded(
            household_id=state.household_id,
            member_id=str(uuid.uuid4()),
            **cmd.model_dump(exclude={"joined_reason", "joined_on"}),
        ),
    )
    events: list[DomainEvent] = [added]
    if cmd.joined_reason is not None:
        on = cmd.joined_on or (
            cmd.birth_date if cmd.joined_reason is JoinReason.BORN and cmd.birth_date else today()
        )
        joined = MemberJoined(
            change_id=str(uuid.uuid4()),
            household_id=state.household_id,
            member_id=added.member_id,
            reason=cmd.joined_reason,
            joined_on=on,
            note=None,
            recorded_at=now(),
        )
        newcomer = domain.newcomer(added)
        domain.record_change(state, newcomer, joined, new=True)
        events.append(joined)
    await ctx.save(Change(state, stream(state.household_id), events, state.household_id, if_match))
    return state, domain.person(opened.records, added.member_id)


def _change_event(
    cmd: Death | Departure | Arrival | FacilityStayStart | FacilityStayEnd | AttributeChange,
    household_id: str,
    member_id: str,
) -> MemberChange:
    common = {
        "change_id": str(uuid.uuid4()),
        "household_id": household_id,
        "member_id": member_id,
        "note": cmd.note,
        "recorded_at": now(),
    }
    on = cmd.on or today()
    match cmd:
        case Death():
            return MemberDied(died_on=on, **common)
        case Departure():
            return MemberDeparted(reason=cmd.reason, departed_on=on, **common)
        case Arrival():
            return MemberJoined(reason=cmd.reason, joined_on=on, **common)
        case FacilityStayStart():
            return MemberFacilityStayStarted(
                facility=cmd.facility, facility_name=cmd.facility_name, started_on=on, **common
            )
        case FacilityStayEnd():
            return MemberFacilityStayEnded(ended_on=on, **common)
        case AttributeChange():
            return MemberAttributeChanged(
                attribute=cmd.attribute, grade=cmd.grade, effective_on=on, **common
            )


@retry_on_conflict
async def record_member_change(
    ctx: CommandContext,
    household_id: str,
    member_id: str,
    cmd: Death | Departure | Arrival | FacilityStayStart | FacilityStayEnd | AttributeChange,
    if_match: int | None = None,
) -> tuple[domain.Household, domain.Person]:
    """A member's life change or attribute change: one event on the household's record,
    about the person ``member_id`` names (by any of their ids)."""
    opened = await open_household(ctx.store, ctx.actor, household_id)
    state = opened.survivor
    person = domain.person(opened.records, member_id)
    event = _change_event(cmd, state.household_id, person.person_id)
    domain.record_change(state, person, event)
    await _record(ctx, state, event, if_match)
    return state, domain.person(opened.records, member_id)


@retry_on_conflict
async def retract_member_change(
    ctx: CommandContext,
    household_id: str,
    member_id: str,
    change_id: str,
    cmd: RetractChange,
    if_match: int | None = None,
) -> tuple[domain.Household, domain.Person]:
    """世帯員の変化の取消: the record stays in the history, marked retracted."""
    opened = await open_household(ctx.store, ctx.actor, household_id)
    state = opened.survivor
    person = domain.person(opened.records, member_id)
    domain.retract_change(state, person, change_id)
    event = MemberChangeRetracted(
        household_id=state.household_id,
        member_id=person.person_id,
        retracted_change_id=change_id,
        reason=cmd.reason,
        retracted_at=now(),
    )
    await _record(ctx, state, event, if_match)
    return state, domain.person(opened.records, member_id)


@retry_on_conflict
async def merge_households(
    ctx: CommandContext, household_id: str, cmd: MergeHouseholds
) -> domain.Household:
    """世帯統合: an event on each record, written together; the caller must read both.
    The people both records name are combined (MembersCombined on the survivor)."""
    mine = await open_household(ctx.store, ctx.actor, household_id)
    theirs = (
        mine
        if cmd.duplicate_household_id == household_id
        else await open_household(ctx.store, ctx.actor, cmd.duplicate_household_id)
    )
    survivor, duplicate = mine.survivor, theirs.survivor
    if survivor is not duplicate and survivor.household_id == duplicate.household_id:
        # Both ids lead to one record: a merge (perhaps a concurrent one) made it so.
        raise Rejected(
            "already_merged",
            f"{household_id} and {cmd.duplicate_household_id} are already one household "
            f"({survivor.household_id})",
            "すでに同じ世帯として統合されています",
        )
    at = now()
    on_survivor, on_duplicate = domain.merge(survivor, duplicate, cmd.reason, at)
    combined = domain.same_people(
        domain.people(mine.records),
        domain.people(theirs.records),
        [(p.member_id, p.duplicate_member_id) for p in cmd.same_people],
        household_id=survivor.household_id,
        merged_household_id=duplicate.household_id,
        now=at,
    )
    await ctx.save(
        Change(
            survivor,
            stream(survivor.household_id),
            [on_survivor, *combined],
            survivor.household_id,
        ),
        Change(duplicate, stream(duplicate.household_id), [on_duplicate], duplicate.household_id),
    )
    return survivor


@retry_on_conflict
async def record_proxy(
    ctx: CommandContext, household_id: str, cmd: RecordProxy, if_match: int | None = None
) -> tuple[domain.Household, domain.Proxy]:
    """代理人登録."""
    state = await _survivor(ctx, household_id)
    event = domain.record_proxy(
        state,
        ProxyRecorded(
            proxy_id=str(uuid.uuid4()),
            household_id=state.household_id,
            recorded_at=now(),
            **cmd.model_dump(),
        ),
    )
    await _record(ctx, state, event, if_match)
    return state, state.proxies[event.proxy_id]


def _terms(cmd: _ConsentTerms) -> dict[str, object]:
    return {
        "member_id": cmd.member_id,
        "proxy_id": cmd.proxy_id,
        "agencies": cmd.agencies,
        "all_agencies": cmd.all_agencies,
        "purposes": cmd.purposes,
    }


@retry_on_conflict
async def give_consent(
    ctx: CommandContext, household_id: str, cmd: GiveConsent, if_match: int | None = None
) -> tuple[domain.Household, domain.Consent]:
    """本人同意: a person's consent (or their recorded proxy's for them)."""
    state = await _survivor(ctx, household_id)
    event = domain.give_consent(
        state,
        ConsentGiven.model_validate(
            {
                "consent_id": str(uuid.uuid4()),
                "household_id": state.household_id,
                "given_by": cmd.given_by,
                "given_on": cmd.given_on or today(),
                "recorded_at": now(),
                **_terms(cmd),
            }
        ),
    )
    await _record(ctx, state, event, if_match)
    return state, state.consents[event.consent_id]


@retry_on_conflict
async def refuse_consent(
    ctx: CommandContext, household_id: str, cmd: RefuseConsent, if_match: int | None = None
) -> tuple[domain.Household, domain.Refusal]:
    """同意拒否: recorded and shown; it never blocks a consultation or outreach."""
    state = await _survivor(ctx, household_id)
    # Named before the event is built: a refusal is always about one person.
    domain.consent_member(state, cmd.member_id)
    event = domain.refuse_consent(
        state,
        ConsentRefused.model_validate(
            {
                "refusal_id": str(uuid.uuid4()),
                "household_id": state.household_id,
                "refused_by": cmd.refused_by,
                "refused_on": cmd.refused_on or today(),
                "note": cmd.note,
                "recorded_at": now(),
                **_terms(cmd),
            }
        ),
    )
    await _record(ctx, state, event, if_match)
    return state, state.refusals[event.refusal_id]


@retry_on_conflict
async def withdraw_consent(
    ctx: CommandContext,
    household_id: str,
    consent_id: str,
    cmd: WithdrawConsent,
    if_match: int | None = None,
) -> tuple[domain.Household, domain.Consent]:
    """同意撤回: from then on the agencies it named read only what they are party to."""
    opened = await open_household(ctx.store, ctx.actor, household_id)
    state = next((h for h in opened.records if consent_id in h.consents), opened.survivor)
    event = domain.withdraw_consent(
        state, consent_id, cmd.withdrawn_by, cmd.withdrawn_on or today(), cmd.note, now()
    )
    await _record(ctx, state, event, if_match)
    return state, state.consents[consent_id]
