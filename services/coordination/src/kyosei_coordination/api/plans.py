"""HTTP API of a case's assessment (アセスメント), support plan (支援プラン), reviews
(プラン評価) and requests to the other pillars (アウトリーチ・参加支援への依頼).

Writes: a coordinator or staff of the case's main agency (others 403); a case that is
not open refuses them (409 case_not_open). Reads: whoever may see the case and
auditors; the plan also the agencies responsible for one of its actions. Every version
of the assessment and of the plan is kept and readable as of a date.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Response

from kyosei_platform.api import Command, IfMatch, Reader, tag, with_etag
from kyosei_platform.http import Runtime

from ..domain.plan import CaseRequest
from ..plans import commands, views

router = APIRouter(prefix="/cases/{case_id}", tags=["plans 支援プラン"])


@router.post(
    "/assessments",
    response_model=views.AssessmentView,
    status_code=201,
    responses=with_etag(201),
)
async def record_assessment(
    case_id: str,
    body: commands.RecordAssessment,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> views.AssessmentView:
    """アセスメント記録: a new dated version of the assessment of the whole household.
    Each member assessed must be of the case's household (422 naming
    assessment.members[i].member_id); assessed_on is not in the future. ETag: the
    version; a stale If-Match is 412."""
    state = await commands.record_assessment(ctx, case_id, body, if_match)
    tag(response, state.version)
    return views.assessment_view(state.versions[-1])


@router.get("/assessments", response_model=list[views.AssessmentView])
async def list_assessments(
    case_id: str, identity: Reader, runtime: Runtime
) -> list[views.AssessmentView]:
    """Every version of the case's assessment, oldest first."""
    return await views.assessments(runtime.store, identity, case_id)


@router.get("/assessment", response_model=views.AssessmentView, responses=with_etag())
async def get_assessment(
    case_id: str, identity: Reader, runtime: Runtime, response: Response, as_of: date | None = None
) -> views.AssessmentView:
    """The assessment as of ``as_of`` (default: today): the newest version assessed on or
    before it; 404 assessment_not_found when there is none."""
    view = await views.assessment_as_of(runtime.store, identity, case_id, as_of)
    tag(response, view.version)
    return view


@router.put(
    "/plan",
    response_model=views.PlanView,
    responses={**with_etag(200), **with_etag(201)},
)
async def adopt_plan(
    case_id: str,
    body: commands.AdoptPlan,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> views.PlanView:
    """支援プラン決定: a new version of the plan (201 for the first, 200 for a revision),
    with one RoleAssigned per action. Goal and action ids are kept when given and made
    when absent. Refused (422 naming the field): no goals, a goal without approaches,
    an action without responsible_agency, review_on before adopted_on, adopted_on before
    the current version's, duplicate ids, members not of the household, a meeting_id
    that is not a held multi_layered meeting of the case. ETag: the plan version; an
    If-Match that is not the newest version is 412 and nothing is recorded."""
    state = await commands.adopt_plan(ctx, case_id, body, if_match)
    current = state.current
    assert current is not None
    response.status_code = 201 if current.number == 1 else 200
    tag(response, current.number)
    return views.plan_view(current)


@router.get("/plan", response_model=views.PlanView, responses=with_etag())
async def get_plan(
    case_id: str, identity: Reader, runtime: Runtime, response: Response, as_of: date | None = None
) -> views.PlanView:
    """The plan version in force on ``as_of`` (the newest adopted on or before it;
    default: the newest version); 404 plan_not_found. ETag: its version."""
    view = await views.plan_as_of(runtime.store, identity, case_id, as_of)
    tag(response, view.version)
    return view


@router.get("/plan/versions", response_model=list[views.PlanView])
async def plan_versions(case_id: str, identity: Reader, runtime: Runtime) -> list[views.PlanView]:
    """Every version of the plan, oldest first."""
    return await views.plan_versions(runtime.store, identity, case_id)


@router.post("/reviews", response_model=views.ReviewView, status_code=201, responses=with_etag(201))
async def review_plan(
    case_id: str,
    body: commands.RecordReview,
    ctx: Command,
    response: Response,
    if_match: IfMatch = None,
) -> views.ReviewView:
    """プラン評価 of the plan version in force: every goal of it reviewed once (422
    naming goals), 自立 per area and 孤立の解消, next_review_on after reviewed_on. Before
    any plan: 409 plan_not_adopted. If-Match, when sent, is the plan version read;
    the ETag answered is the plan version reviewed."""
    state = await commands.review_plan(ctx, case_id, body, if_match)
    done = state.reviews[-1]
    tag(response, done.plan_version)
    return views.review_view(done)


@router.get("/reviews", response_model=list[views.ReviewView])
async def list_reviews(case_id: str, identity: Reader, runtime: Runtime) -> list[views.ReviewView]:
    """Every review of the case's plan, oldest first."""
    return await views.reviews(runtime.store, identity, case_id)


def _made(state: CaseRequest, response: Response) -> views.RequestView:
    made = state.made
    assert made is not None
    tag(response, 1)  # a request is recorded once and never changes
    return views.RequestView(
        request_id=made.request_id,
        case_id=made.case_id,
        kind=made.kind.value,
        action_id=made.action_id,
        to_agency=made.to_agency,
        requested_at=made.requested_at,
    )


@router.post(
    "/outreach-requests",
    response_model=views.RequestView,
    status_code=201,
    responses=with_etag(201),
)
async def request_outreach(
    case_id: str, body: commands.RequestOutreach, ctx: Command, response: Response
) -> views.RequestView:
    """アウトリーチ依頼 (OutreachRequested: intake starts an outreach case at
    outreach_agency). action_id, when given, is an action of the plan in force;
    member_id a member of the household (422 naming them)."""
    return _made(await commands.request_outreach(ctx, case_id, body), response)


@router.post(
    "/participation-requests",
    response_model=views.RequestView,
    status_code=201,
    responses=with_etag(201),
)
async def request_participation(
    case_id: str, body: commands.RequestParticipation, ctx: Command, response: Response
) -> views.RequestView:
    """参加支援依頼 (ParticipationRequested; interests, strengths, constraints, schedule
    and wishes are sealed on the topic). action_id, when given, is an action of the
    plan in force; member_id a member of the household (422 naming them)."""
    return _made(await commands.request_participation(ctx, case_id, body), response)


@router.get("/requests", response_model=list[views.RequestView])
async def list_requests(
    case_id: str, identity: Reader, runtime: Runtime
) -> list[views.RequestView]:
    """The case's requests to outreach and participation support, oldest first."""
    async with runtime.engine.connect() as conn:
        return await views.requests(conn, identity, case_id)
