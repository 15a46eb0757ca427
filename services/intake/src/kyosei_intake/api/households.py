"""Households (世帯): register with a duplicate check, search, read the picture, add
members and record their life changes, merge duplicate records (and the people they
share), record proxies, and each person's consent (本人同意), its refusal (同意拒否) and
its withdrawal."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status
from fastapi.responses import JSONResponse

from kyosei_platform import errors
from kyosei_platform.api import Command, IfMatch, Reader, tag, with_etag
from kyosei_platform.errors import ApiError
from kyosei_platform.http import Runtime

from ..commands import households as commands
from ..queries import households as queries
from ..views import (
    ConsentView,
    DuplicateCandidate,
    HouseholdPicture,
    MemberChangeView,
    MemberView,
    PossibleDuplicate,
    ProxyView,
    RefusalView,
    SearchResult,
    consent_view,
    member_view,
    proxy_view,
    refusal_view,
)

router = APIRouter(prefix="/households", tags=["households 世帯"])


def _possible_duplicates(candidates: list[queries.Candidate]) -> JSONResponse:
    listed = [
        DuplicateCandidate(
            household_id=c.household_id,
            matched_on=sorted(c.matched_on),
            strength="strong" if c.strong else "weak",
            registered_by=c.registered_by,
        ).model_dump()
        for c in candidates
    ]
    envelope = errors.body(
        "possible_duplicate",
        f"{len(listed)} existing household(s) may be this one; check "
        "them, or send again with proceed_despite_duplicates=true",
        "同じ世帯の可能性がある登録があります。確認のうえ、別世帯なら "
        "proceed_despite_duplicates を true にして再送してください",
    )
    return JSONResponse({**envelope, "candidates": listed}, status_code=409)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=HouseholdPicture,
    responses={
        **with_etag(201),
        409: {
            "model": PossibleDuplicate,
            "description": "possible duplicates: check them, then proceed or use one",
        },
    },
)
async def register_household(
    body: commands.RegisterHousehold, ctx: Command, response: Response
) -> Any:
    """世帯登録: register a household and its members.

    Before anything is stored, existing records are checked for the same person
    (name or kana with birth date, phone, name at the same address). If any is found
    the answer is 409 ``possible_duplicate`` with the candidates; look at them (or
    ask their agency), then either use one or send again with
    ``proceed_despite_duplicates``.
    """
    registered = await commands.register_household(ctx, body)
    if registered.household_id is None:
        return _possible_duplicates(registered.candidates)
    assert ctx.actor is not None
    picture = await queries.picture(ctx.store, ctx.actor, registered.household_id)
    tag(response, picture.version)
    return picture


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
    return [
        await queries.search_result(runtime.store, identity, hid, matched)
        for hid, matched in found.items()
    ]


@router.get("/{household_id}", response_model=HouseholdPicture, responses=with_etag())
async def get_household(
    household_id: str, identity: Reader, runtime: Runtime, response: Response
) -> HouseholdPicture:
    """世帯の全体像: members (each person once, with today's state: alive or deceased,
    living in the household, in a facility, certifications), their life events by
    date, dismissed duplicate candidates, consents, proxies, refusals, and the
    consultations, referrals and outreach the caller may read (each member lists the
    consultations naming them).

    A merged record's id leads to the household it was merged into. A record is
    listed when the caller's agency is party to it, or when every person it is about
    consented to sharing with the caller's agency (``access: full`` when that is
    every member). ``ETag`` is the household's version, for If-Match on its writes.
    """
    picture = await queries.picture(runtime.store, identity, household_id)
    tag(response, picture.version)
    return picture


@router.post(
    "/{household_id}/members", status_code=201, response_model=MemberView, responses=with_etag(201)
)
async def add_member(
    household_id: str,
    body: commands.NewMember,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> MemberView:
    """世帯員追加: add a member to a household. With ``joined_reason`` (born, moved_in)
    the arrival is recorded as a life change too (MemberJoined), dated ``joined_on``."""
    state, person = await commands.add_member(ctx, household_id, body, if_match)
    tag(response, state.version)
    return member_view(person)


@router.post(
    "/{household_id}/members/{member_id}/changes",
    status_code=201,
    response_model=MemberView,
    responses=with_etag(201),
)
async def record_member_change(
    household_id: str,
    member_id: str,
    body: Annotated[commands.MemberChangeIn, Body()],
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> MemberView:
    """世帯員の変化: record a member's life change or attribute change, dated ``on``
    (default today; never in the future), and answer the member's state today.

    ``kind``: ``died`` (死亡, once per person), ``departed`` (転出・別居), ``joined``
    (back in the household), ``facility_started`` / ``facility_ended`` (施設入所・入院 /
    退所・退院), ``attribute_changed`` (要介護認定, 障害者手帳, …: ``grade`` null ends it).
    Each is its own event on intake's topic, kept in every service's household
    directory (attribute changes excepted: they are sealed personal data). Nothing
    can be recorded after a member's death or before their birth; a death recorded
    twice is refused (409 ``member_already_deceased``): retract the wrong record first.
    ``member_id`` may be any of the person's ids.
    """
    state, person = await commands.record_member_change(
        ctx, household_id, member_id, body, if_match
    )
    tag(response, state.version)
    return member_view(person)


@router.post(
    "/{household_id}/members/{member_id}/changes/{change_id}/retraction",
    response_model=MemberView,
    responses=with_etag(),
)
async def retract_member_change(
    household_id: str,
    member_id: str,
    change_id: str,
    body: commands.RetractChange,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> MemberView:
    """世帯員の変化の取消: a change recorded in error is retracted (a correction is a
    retraction and a new record). It stays in the history, marked retracted."""
    state, person = await commands.retract_member_change(
        ctx, household_id, member_id, change_id, body, if_match
    )
    tag(response, state.version)
    return member_view(person)


@router.get("/{household_id}/members/{member_id}/history", response_model=list[MemberChangeView])
async def member_history(
    household_id: str, member_id: str, identity: Reader, runtime: Runtime
) -> list[MemberChangeView]:
    """A member's history: every life change and attribute change recorded under any
    of the person's ids, by effective date, retracted ones marked. Readable as the
    household is."""
    return await queries.member_history(runtime.store, identity, household_id, member_id)


@router.post("/{household_id}/merge", response_model=HouseholdPicture, responses=with_etag())
async def merge_households(
    household_id: str, body: commands.MergeHouseholds, ctx: Command, response: Response
) -> HouseholdPicture:
    """世帯統合: merge a duplicate record into this household.

    Recorded as events on both records; nothing is rewritten. Reads and writes of
    the duplicate's id lead here from then on. The caller must have a part in both.
    Members of both records with the same name (however written) and birth date, and
    the pairs given in ``same_people``, become one person with both ids
    (MembersCombined): listed once, and consent given under either id counts for both.
    """
    survivor = await commands.merge_households(ctx, household_id, body)
    assert ctx.actor is not None
    picture = await queries.picture(ctx.store, ctx.actor, survivor.household_id)
    tag(response, picture.version)
    return picture


@router.post(
    "/{household_id}/proxies", status_code=201, response_model=ProxyView, responses=with_etag(201)
)
async def record_proxy(
    household_id: str,
    body: commands.RecordProxy,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> ProxyView:
    """代理人登録: record a family member or guardian as acting for a member, so that
    they may give or refuse consent for that member."""
    state, recorded = await commands.record_proxy(ctx, household_id, body, if_match)
    tag(response, state.version)
    return proxy_view(recorded)


@router.post(
    "/{household_id}/consents",
    status_code=201,
    response_model=ConsentView,
    responses=with_etag(201),
)
async def give_consent(
    household_id: str,
    body: commands.GiveConsent,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> ConsentView:
    """本人同意: a person's consent to sharing their records with the named agencies.

    It opens that person's records only; family or a guardian consents for a person
    only as that person's recorded proxy (``proxy_id``).
    """
    state, recorded = await commands.give_consent(ctx, household_id, body, if_match)
    tag(response, state.version)
    return consent_view(recorded)


@router.post(
    "/{household_id}/consent-refusals",
    status_code=201,
    response_model=RefusalView,
    responses=with_etag(201),
)
async def refuse_consent(
    household_id: str,
    body: commands.RefuseConsent,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> RefusalView:
    """同意拒否: record that a person (or their proxy) refused consent. Shown on the
    household; it never blocks receiving a consultation or outreach."""
    state, recorded = await commands.refuse_consent(ctx, household_id, body, if_match)
    tag(response, state.version)
    return refusal_view(recorded)


@router.post(
    "/{household_id}/consents/{consent_id}/withdrawal",
    response_model=ConsentView,
    responses=with_etag(),
)
async def withdraw_consent(
    household_id: str,
    consent_id: str,
    body: commands.WithdrawConsent,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> ConsentView:
    """同意撤回: withdraw a consent. From then on the agencies it named read only what
    they are party to."""
    state, consent = await commands.withdraw_consent(ctx, household_id, consent_id, body, if_match)
    tag(response, state.version)
    return consent_view(consent)
