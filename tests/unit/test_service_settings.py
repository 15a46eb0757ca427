"""A service's own settings: declared by the service, read from KYOSEI_<SERVICE>_*,
loaded by the runtime, and never mixed into what every service reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import APIRouter
from pydantic_settings import BaseSettings, SettingsConfigDict

from kyosei_intake.settings import IntakeSettings
from kyosei_platform.runtime import ServiceRuntime
from kyosei_platform.service import Service, discover
from kyosei_platform.settings import Settings


def platform_settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'svc'}.db",
        keys_database_url=f"sqlite+aiosqlite:///{tmp_path / 'keys'}.db",
        kafka_bootstrap=["127.0.0.1:9"],
        master_key="ab" * 32,
        auth_secret="x" * 32,
    )


def test_intake_reads_its_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert IntakeSettings().unresolved_after_days == 14
    monkeypatch.setenv("KYOSEI_UNRESOLVED_AFTER_DAYS", "3")  # the old, shared name
    assert IntakeSettings().unresolved_after_days == 14
    monkeypatch.setenv("KYOSEI_INTAKE_UNRESOLVED_AFTER_DAYS", "21")
    assert IntakeSettings().unresolved_after_days == 21
    monkeypatch.setenv("KYOSEI_INTAKE_UNRESOLVED_AFTER_DAYS", "0")
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        IntakeSettings()


def test_the_platform_settings_hold_no_service_setting() -> None:
    for name, svc in discover().items():
        if svc.settings is not None:
            shared = set(svc.settings.model_fields) & set(Settings.model_fields)
            assert not shared, f"{name} redeclares platform settings {shared}"
    assert "unresolved_after_days" not in Settings.model_fields


async def test_the_runtime_loads_the_declared_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KYOSEI_INTAKE_UNRESOLVED_AFTER_DAYS", "30")
    runtime = ServiceRuntime(discover()["intake"], platform_settings(tmp_path))
    try:
        assert runtime.service_settings(IntakeSettings).unresolved_after_days == 30

        class Other(BaseSettings):
            model_config = SettingsConfigDict(env_prefix="KYOSEI_OTHER_")

        with pytest.raises(TypeError, match="declares settings IntakeSettings, not Other"):
            runtime.service_settings(Other)
    finally:
        await runtime.stop()


async def test_tests_may_pass_settings_instead_of_the_environment(tmp_path: Path) -> None:
    given = IntakeSettings(unresolved_after_days=2)
    runtime = ServiceRuntime(discover()["intake"], platform_settings(tmp_path), given)
    try:
        assert runtime.service_settings(IntakeSettings) is given
    finally:
        await runtime.stop()


def test_a_service_settings_class_must_read_its_own_prefix() -> None:
    class Misnamed(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="KYOSEI_")

    with pytest.raises(TypeError, match="must read KYOSEI_PILOT_"):
        Service(
            name="pilot",
            title="t",
            description="d",
            router=APIRouter(),
            migrations=Path("."),
            order=99,
            settings=Misnamed,
        )
