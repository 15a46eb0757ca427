"""Composition of the coordination service (entry point ``kyosei.services: coordination``)."""

from __future__ import annotations

from pathlib import Path

from kyosei_platform.service import Service

from .api import router
from .policies import POLICIES
from .projections import CaseList

service = Service(
    name="coordination",
    order=2,
    title="多機関協働",
    description=(
        "Multi-agency coordination: opens a case for every consultation escalated by "
        "intake (CaseEscalated -> CaseOpened on kyosei.coordination.events), and keeps "
        "the household directory from intake's household events."
    ),
    router=router,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    projections=[CaseList],
    policies=POLICIES,
)
