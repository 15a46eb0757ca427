"""Composition of the intake service (entry point ``kyosei.services: intake``)."""

from __future__ import annotations

from pathlib import Path

from kyosei_households import HouseholdDirectory
from kyosei_platform.service import Service

from .api import router
from .policies import POLICIES
from .projections import IntakeReadModel
from .settings import IntakeSettings

service = Service(
    name="intake",
    order=1,
    title="包括的相談支援・アウトリーチ",
    description=(
        "Every consultation enters here, at any window, about anyone (断らない相談): "
        "households and members, consultations held to an outcome, closed-loop "
        "referrals (つなぎ), consent (本人同意) and outreach (アウトリーチ). Events on "
        "kyosei.intake.events; consumes community ConcernNoticed and coordination "
        "OutreachRequested."
    ),
    router=router,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    projections=[HouseholdDirectory, IntakeReadModel],
    policies=POLICIES,
    settings=IntakeSettings,
)
