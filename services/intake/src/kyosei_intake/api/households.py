"""Households (世帯): register with a duplicate check, search, read the picture,
add members, merge duplicate records, record consent (本人同意) and its withdrawal."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from kyosei_events import NewEvent
from kyosei_events.catalogue.common import AgencyId, Id
from kyosei_events.catalogue.intake import (
    AgeBand,
    ConsentGiven,
    ConsentGiver,
    ConsentPurpose,
    HouseholdRegistered,
    MemberAdded,
    MemberAttribute,
    Relationship,
)
from kyosei_platform.auth import Identity
from kyosei_platform.errors import ApiError
from kyosei_platform.http import Runtime

from .. import queries
from ..access import Access, household_access, party_to
from ..domain import household as domain
from ..projections import consultations, outreach_cases, referrals
from .common import (
    IfMatch,
    Note,
    Reader,
    Writer,
    decided,
    load,
    metadata,
    not_found,
    now,
    record,
    save,
    today,
)
from .views import (
    ConsentView,
    HouseholdPicture,
    MemberView,
    consent_view,
    consultation_row,
    member_view,
    outreach_row,
    referral_row,
)

router = APIRouter(prefix="/households", tags=["households 世帯"])


def stream(household_id: str) -> str:
    return f"household-{household_id}"


class MemberIn(BaseModel):
    """A household member (世帯員). Name, kana, birth date and attributes are sealed."""

    name: str = Field(min_length=1, max_length=200, description="氏名 (personal)")
    kana: str | None = Field(None, max_length=200, description="ふりがな (personal)")
    birth_date: date | None = Field(None, description="生年月日 (personal)")
    age_band: AgeBand | None = Field(None, description="年齢区分, when the birth date is unknown")
    relationship: Relationship = Relationship.UNKNOWN
    attributes: list[MemberAttribute] = Field(default_factory=list)
    language: str | None = Field(None, max_length=35, description="BCP 47, e.g. ja, vi, pt-BR")

    @field_validator("birth_date")
    @classmethod
    def _past(cls, v: date | None) -> date | None:
        if v is not None and v > today():
            raise ValueError("a birth date cannot be in the future")
        return v


class RegisterHousehold(BaseModel):
    address: str | None = Field(None, max_length=200, description="住所 (personal)")
    phone: str | None = Field(None, max_length=40, description="電話番号 (personal)")
    members: list[MemberIn] = Field(min_length=1, max_length=30)
    proceed_despite_duplicates: bool = Field(
        False,
        description="register even though the duplicate check found possible matches "
        "(they are recorded as dismissed)",
    )


class DuplicateCandidate(BaseModel):
    household_id: str
    matched_on: list[str]
    strength: str
    registered_by: str | None


class PossibleDuplicate(BaseModel):
    """409 answer of POST /households: existing records that may be this household."""

    error: dict[str, str]
    candidates: list[DuplicateCandidate]


class SearchResult(BaseModel):
    household_id: str
    matched_on: list[str]
    registered_by: str | None
    member_count: int
    access: str
    member_names: list[str] | None = Field(
        None, description="only when the caller may read the household"
    )


class Merge(BaseModel):
    duplicate_household_id: Id = Field(description="the record to merge into this one")
    reason: str = Field(min_length=1, max_length=20_000, description="why they are one household")


class GiveConsent(BaseModel):
    member_id: Id | None = Field(None, description="who consented, if a registered member")
    given_by: ConsentGiver = ConsentGiver.PERSON
    agencies: list[AgencyId] = Field(default_factory=list, max_length=200)
    all_agencies: bool = False
    purposes: list[ConsentPurpose] = Field(min_length=1)
    given_on: date | None = Field(None, description="default: today (JST)")

    @field_validator("given_on")
    @classmethod
    def _not_future(cls, v: date | None) -> date | None:
        if v is not None and v > today():
            raise ValueError("consent cannot be recorded for a future date")
        return v


class WithdrawConsent(BaseModel):
    withdrawn_by: ConsentGiver = ConsentGiver.PERSON
    withdrawn_on: date | None = Field(None, description="default: today (JST)")
    note: Note = None


async def _load(runtime: Runtime, household_id: str) -> domain.Household:
    return await load(
        runtime.store,
        stream(household_id),
        lambda: domain.Household(household_id),
        not_found("household", "世帯", household_id),
    )


class Loaded:
    """A household's survivor record, the records merged into it, and the caller's access."""

    def __init__(
        self, survivor: domain.Household, merged: list[domain.Household], access: Access
    ) -> None:
        self.survivor, self.merged, self.access = survivor, merged, access

    @property
    def records(self) -> list[domain.Household]:
        return [self.survivor, *self.merged]

    def consents(self) -> list[domain.Consent]:
        return [c for h in self.records for c in h.consents.values()]


async def open_household(
    runtime: Runtime, identity: Identity, household_id: str, need: Access = Access.OWN
) -> Loaded:
    """Load a household (following merges) and check the caller may read it; 404 when
    the caller may not, so that a record's existence is not told."""
    async with runtime.engine.connect() as conn:
        survivor_id = await queries.survivor_of(conn, household_id)
        if survivor_id is None:
            raise not_found("household", "世帯", household_id)
        ids = await queries.record_ids(conn, survivor_id)
        parties = await queries.parties(conn, ids)
    records = [await _load(runtime, i) for i in ids]
    loaded = Loaded(records[0], records[1:], Access.NONE)
    loaded.access = household_access(identity, parties, loaded.consents(), today())
    if loaded.access < need:
        if loaded.access is Access.NONE:
            raise not_found("household", "世帯", household_id)
        raise ApiError(
            403,
            "consent_required",
            "reading this household's whole record needs the household's consent "
            "naming your agency",
            "この世帯の記録全体を閲覧するには、貴機関を対象とする本人同意が必要です",
        )
    return loaded


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=HouseholdPicture,
    responses={
        409: {
            "model": PossibleDuplicate,
            "description": "possible duplicates: check them, then proceed or use one",
        }
    },
)
async def register_household(
    body: RegisterHousehold, identity: Writer, runtime: Runtime, request: Request
) -> Any:
    """世帯登録: register a household and its members.

    Before anything is stored, existing records are checked for the same person
    (name or kana with birth date, phone, name at the same address). If any is found
    the answer is 409 ``possible_duplicate`` with the candidates; look at them (or
    ask their agency), then either use one or send again with
    ``proceed_despite_duplicates``.
    """
    async with runtime.engine.connect() as conn:
        candidates = await queries.duplicates(
            conn,
            runtime.vault,
            [(m.name, m.kana, m.birth_date) for m in body.members],
            body.address,
            body.phone,
        )
    if candidates and not body.proceed_despite_duplicates:
        listed = [
            DuplicateCandidate(
                household_id=c.household_id,
                matched_on=sorted(c.matched_on),
                strength="strong" if c.strong else "weak",
                registered_by=c.registered_by,
            ).model_dump()
            for c in candidates
        ]
        return JSONResponse(
            {
                "error": {
                    "code": "possible_duplicate",
                    "message": f"{len(listed)} existing household(s) may be this one; check "
                    "them, or send again with proceed_despite_duplicates=true",
                    "message_ja": "同じ世帯の可能性がある登録があります。確認のうえ、別世帯なら "
                    "proceed_despite_duplicates を true にして再送してください",
                },
                "candidates": listed,
            },
            status_code=409,
        )
    household_id = str(uuid.uuid4())
    at = now()
    events = [
        HouseholdRegistered(
            household_id=household_id,
            registered_by=identity.agency_id,
            address=body.address,
            phone=body.phone,
            duplicates_dismissed=[c.household_id for c in candidates],
            registered_at=at,
        ),
        *(
            MemberAdded(household_id=household_id, member_id=str(uuid.uuid4()), **m.model_dump())
            for m in body.members
        ),
    ]
    state = domain.Household(household_id)
    await save(
        runtime.store,
        state,
        stream(household_id),
        events,
        household_id,
        metadata(request, identity),
        0,
    )
    return await picture(runtime, identity, household_id)


@router.get("/search", response_model=list[SearchResult])
async def search_households(
    identity: Reader,
    runtime: Runtime,
    name: Annotated[str | None, Query(max_length=200, description="氏名, or part of it")] = None,
    kana: Annotated[str | None, Query(max_length=200, description="ふりがな, or part")] = None,
    birth_date: date | None = None,
    address: Annotated[
        str | None, Query(min_length=2, max_length=200, description="住所, or part")
    ] = None,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> list[SearchResult]:
    """Find households by a member's name, kana or birth date, or by address or phone.

    Width, kana script, spacing and block-number notation do not matter. Everyone
    may learn that a matching record exists (to avoid duplicates); member names are
    shown only to those who may read the household.
    """
    if not any((name, kana, birth_date, address, phone)):
        raise ApiError(
            422,
            "search_needs_a_term",
            "give at least one of name, kana, birth_date, address, phone",
            "氏名・ふりがな・生年月日・住所・電話番号のいずれかを指定してください",
            field="name",
        )
    async with runtime.engine.connect() as conn:
        found = await queries.search(
            conn,
            runtime.vault,
            name=name,
            kana=kana,
            birth_date=birth_date,
            address=address,
            phone=phone,
            limit=limit,
        )
    results = []
    for hid, matched in found.items():
        try:
            loaded = await open_household(runtime, identity, hid, Access.NONE)
        except ApiError:
            continue
        names = None
        if loaded.access >= Access.OWN:
            names = [m.name or "" for h in loaded.records for m in h.members.values()]
        results.append(
            SearchResult(
                household_id=hid,
                matched_on=sorted(matched),
                registered_by=loaded.survivor.registered_by,
                member_count=sum(len(h.members) for h in loaded.records),
                access=loaded.access.name.lower(),
                member_names=names,
            )
        )
    return results


async def picture(runtime: Runtime, identity: Identity, household_id: str) -> HouseholdPicture:
    loaded = await open_household(runtime, identity, household_id)
    ids = [h.household_id for h in loaded.records]
    full = loaded.access is Access.FULL
    async with runtime.engine.connect() as conn:
        c_rows = (
            await conn.execute(
                select(consultations)
                .where(consultations.c.household_id.in_(ids))
                .order_by(consultations.c.received_at)
            )
        ).all()
        r_rows = (
            await conn.execute(
                select(referrals)
                .where(referrals.c.household_id.in_(ids))
                .order_by(referrals.c.made_at)
            )
        ).all()
        o_rows = (
            await conn.execute(
                select(outreach_cases)
                .where(outreach_cases.c.household_id.in_(ids))
                .order_by(outreach_cases.c.started_at)
            )
        ).all()
    referred: dict[str, set[str]] = {}
    for r in r_rows:
        referred.setdefault(r.consultation_id, set()).update({r.from_agency, r.to_agency})
    s = loaded.survivor
    return HouseholdPicture(
        household_id=s.household_id,
        access="full" if full else "own",
        records=ids,
        registered_by=s.registered_by,
        registered_at=s.registered_at,
        address=s.address,
        phone=s.phone,
        members=[
            member_view(m, h.household_id) for h in loaded.records for m in h.members.values()
        ],
        consents=[consent_view(c) for c in loaded.consents()],
        consultations=[
            consultation_row(r)
            for r in c_rows
            if full
            or party_to(
                identity, {r.agency_id} | referred.get(r.consultation_id, set()), r.escalated
            )
        ],
        referrals=[
            referral_row(r)
            for r in r_rows
            if full or party_to(identity, {r.from_agency, r.to_agency}, False)
        ],
        outreach=[outreach_row(r) for r in o_rows if full or r.agency_id == identity.agency_id],
        version=s.version,
    )


@router.get("/{household_id}", response_model=HouseholdPicture)
async def get_household(household_id: str, identity: Reader, runtime: Runtime) -> HouseholdPicture:
    """世帯の全体像: members, consents, consultations, referrals and outreach.

    A merged record's id leads to the household it was merged into. With consent
    naming the caller's agency (情報共有) the picture is whole (``access: full``);
    otherwise it shows the members and what the caller's agency is party to
    (``access: own``).
    """
    return await picture(runtime, identity, household_id)


@router.post("/{household_id}/members", status_code=201, response_model=MemberView)
async def add_member(
    household_id: str,
    body: MemberIn,
    identity: Writer,
    runtime: Runtime,
    request: Request,
    if_match: IfMatch = None,
) -> MemberView:
    """世帯員追加: add a member to a household."""
    loaded = await open_household(runtime, identity, household_id)
    state = loaded.survivor
    event = MemberAdded(
        household_id=state.household_id, member_id=str(uuid.uuid4()), **body.model_dump()
    )
    await record(
        runtime,
        request,
        identity,
        if_match,
        state,
        stream(state.household_id),
        state.household_id,
        lambda: domain.add_member(state, event),
    )
    return member_view(state.members[event.member_id], state.household_id)


@router.post("/{household_id}/merge", response_model=HouseholdPicture)
async def merge_households(
    household_id: str, body: Merge, identity: Writer, runtime: Runtime, request: Request
) -> HouseholdPicture:
    """世帯統合: merge a duplicate record into this household.

    Recorded as events on both records; nothing is rewritten. Reads and writes of
    the duplicate's id lead here from then on. The caller must have a part in both.
    """
    survivor = (await open_household(runtime, identity, household_id)).survivor
    if body.duplicate_household_id == household_id:
        duplicate = survivor
    else:
        duplicate = (await open_household(runtime, identity, body.duplicate_household_id)).survivor
    with decided():
        on_survivor, on_duplicate = domain.merge(survivor, duplicate, body.reason, now())
    meta = metadata(request, identity)
    async with runtime.store.unit_of_work() as uow:
        await uow.append(
            stream(survivor.household_id),
            [NewEvent(on_survivor, survivor.household_id, meta)],
            survivor.version,
        )
        await uow.append(
            stream(duplicate.household_id),
            [NewEvent(on_duplicate, duplicate.household_id, meta)],
            duplicate.version,
        )
    return await picture(runtime, identity, survivor.household_id)


@router.post("/{household_id}/consents", status_code=201, response_model=ConsentView)
async def give_consent(
    household_id: str,
    body: GiveConsent,
    identity: Writer,
    runtime: Runtime,
    request: Request,
    if_match: IfMatch = None,
) -> ConsentView:
    """本人同意: record that a member (or family, or guardian) consented to sharing."""
    state = (await open_household(runtime, identity, household_id)).survivor
    given = ConsentGiven(
        consent_id=str(uuid.uuid4()),
        household_id=state.household_id,
        member_id=body.member_id,
        given_by=body.given_by,
        agencies=sorted(set(body.agencies)),
        all_agencies=body.all_agencies,
        purposes=body.purposes,
        given_on=body.given_on or today(),
        recorded_at=now(),
    )
    await record(
        runtime,
        request,
        identity,
        if_match,
        state,
        stream(state.household_id),
        state.household_id,
        lambda: domain.give_consent(state, given),
    )
    return consent_view(state.consents[given.consent_id])


@router.post("/{household_id}/consents/{consent_id}/withdrawal", response_model=ConsentView)
async def withdraw_consent(
    household_id: str,
    consent_id: str,
    body: WithdrawConsent,
    identity: Writer,
    runtime: Runtime,
    request: Request,
    if_match: IfMatch = None,
) -> ConsentView:
    """同意撤回: withdraw a consent. From then on the agencies it named read only what
    they are party to."""
    loaded = await open_household(runtime, identity, household_id)
    state = next((h for h in loaded.records if consent_id in h.consents), loaded.survivor)
    await record(
        runtime,
        request,
        identity,
        if_match,
        state,
        stream(state.household_id),
        state.household_id,
        lambda: domain.withdraw_consent(
            state, consent_id, body.withdrawn_by, body.withdrawn_on or today(), body.note, now()
        ),
    )
    return consent_view(state.consents[consent_id])
