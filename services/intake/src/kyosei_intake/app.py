"""Composition of the intake service (entry point ``kyosei.services: intake``)."""

from __future__ import annotations

from pathlib import Path

from kyosei_platform.service import Service

from .api import router
from .projections import ConsultationList

service = Service(
    name="intake",
    title="包括的相談支援・アウトリーチ",
    description=(
        "Every consultation enters here, at any window, about anyone (断らない相談). "
        "Emits ConsultationReceived (相談受付) and CaseEscalated on kyosei.intake.events."
    ),
    router=router,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    projections=[ConsultationList],
)
