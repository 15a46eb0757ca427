"""Composition of the coordination service (entry point ``kyosei.services: coordination``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from kyosei_platform.service import Service

from .api import router as case_routes
from .api.board import router as board_routes
from .api.community import router as community_routes
from .api.meetings import router as meeting_routes
from .api.plans import router as plan_routes
from .board.projection import Board
from .community.projection import CommunityIssueList
from .meetings.projection import MeetingList
from .plans.projection import PlanList
from .policies import POLICIES
from .projections import CaseList

router = APIRouter()
router.include_router(case_routes)
router.include_router(meeting_routes)
router.include_router(plan_routes)
router.include_router(community_routes)
router.include_router(board_routes)

service = Service(
    name="coordination",
    order=2,
    title="多機関協働",
    description=(
        "Multi-agency coordination: one open case per household, opened when intake "
        "escalates (CaseEscalated -> CaseOpened on kyosei.coordination.events; a later "
        "escalation of the household adds its consultation to the open case) or directly "
        "by a coordinator, naming its main coordinating agency and the members it "
        "concerns; it keeps "
        "the household directory from intake's household events. Meetings about a case "
        "(支援会議, 重層的支援会議, 地域ケア会議, ケース会議): what a meeting recorded is read "
        "only by its participant agencies and auditors, and never published. A case's "
        "assessment of the whole household and its support plan are versioned and read as "
        "of any date; each plan action names its responsible agency (RoleAssigned); reviews "
        "score 自立 and 孤立の解消; plan actions ask outreach (OutreachRequested) and "
        "participation support (ParticipationRequested). Members' life changes (intake's "
        "death, departure, facility stay) flag the case for review (親亡き後 when a parent "
        "dies); members' support ends, the case is closed with a reason and reopened; "
        "coordinators raise de-identified community issues (地域課題). The "
        "coordinator's board (cases by stage, overdue reviews, waiting for consent, "
        "flagged, accompanied, stalled), each agency's assigned actions and each case's "
        "timeline; outreach and participation outcomes come back onto the case."
    ),
    router=router,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    projections=[CaseList, MeetingList, PlanList, CommunityIssueList, Board],
    policies=POLICIES,
)
