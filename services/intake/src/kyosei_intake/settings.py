"""What an operator may set for intake alone, from KYOSEI_INTAKE_* variables.

Read once at start by the platform (``Service.settings``); routes get them with
``runtime.service_settings(IntakeSettings)``. Listed in deploy/README.md by
``make deploy-files``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IntakeSettings(BaseSettings):
    """Intake's own settings."""

    model_config = SettingsConfigDict(env_prefix="KYOSEI_INTAKE_", extra="ignore")

    unresolved_after_days: int = Field(
        14,
        ge=1,
        description="days a consultation may go without an outcome (handled, referred, "
        "escalated) before it is listed as unresolved",
    )
