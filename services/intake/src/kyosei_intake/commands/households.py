"""Household commands (世帯): register with a duplicate check, add members, merge
duplicate records, record proxies, and each person's consent, refusal and withdrawal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from pydantic import Field, field_validator

from kyosei_events import DomainEvent
from kyosei_events.catalogue.common import AgencyId, Id
from kyosei_events.catalogue.intake import (
    AgeBand,
    ConsentGiven,
    ConsentGiver,
    ConsentPurpose,
    ConsentRefused,
    HouseholdRegistered,
    MemberAdded,
    MemberAttribute,
    ProxyRecorded,
    Relationship,
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


class MergeHouseholds(RequestModel):
    duplicate_household_id: Id = Field(description="the record to merge into this one")
    reason: Text = Field(description="why they are one household")


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
    return (await open_household(ctx.store, ctx.actor, household_id)).survivor


async def _record(
    ctx: CommandContext,
    state: domain.Household,
    event: DomainEvent,
    if_match: int | None,
) -> None:
    await ctx.save(Change(state, stream(state.household_id), [event], state.household_id, if_match))


@retry_on_conflict
async def add_member(
    ctx: CommandContext, household_id: str, cmd: MemberIn, if_match: int | None = None
) -> tuple[domain.Household, domain.Member]:
    """世帯員追加."""
    state = await _survivor(ctx, household_id)
    event = domain.add_member(
        state,
        MemberAdded(
            household_id=state.household_id, member_id=str(uuid.uuid4()), **cmd.model_dump()
        ),
    )
    await _record(ctx, state, event, if_match)
    return state, state.members[event.member_id]


@retry_on_conflict
async def merge_households(
    ctx: CommandContext, household_id: str, cmd: MergeHouseholds
) -> domain.Household:
    """世帯統合: an event on each record, written together; the caller must read both."""
    survivor = await _survivor(ctx, household_id)
    duplicate = (
        survivor
        if cmd.duplicate_household_id == household_id
        else await _survivor(ctx, cmd.duplicate_household_id)
    )
    if survivor is not duplicate and survivor.household_id == duplicate.household_id:
        # Both ids lead to one record: a merge (perhaps a concurrent one) made it so.
        raise Rejected(
            "already_merged",
            f"{household_id} and {cmd.duplicate_household_id} are already one household "
            f"({survivor.household_id})",
            "すでに同じ世帯として統合されています",
        )
    on_survivor, on_duplicate = domain.merge(survivor, duplicate, cmd.reason, now())
    await ctx.save(
        Change(survivor, stream(survivor.household_id), [on_survivor], survivor.household_id),
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
