"""Tracing is optional: off by default, and enabled without the packages of
kyosei-platform[otel] it refuses to start with a message that says what to install."""

from __future__ import annotations

import sys

import pytest

from kyosei_platform import tracing
from kyosei_platform.settings import Settings


def test_off_by_default() -> None:
    settings = Settings(
        database_url="sqlite+aiosqlite://",
        keys_database_url="sqlite+aiosqlite://",
        kafka_bootstrap=["127.0.0.1:9"],
        master_key="33" * 32,
        auth_secret="s" * 32,
    )
    assert settings.otel_enabled is False


@pytest.mark.parametrize(
    "missing", ["opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter"]
)
def test_enabled_without_the_packages_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # import fails
    with pytest.raises(tracing.TracingUnavailable, match=r"kyosei-platform\[otel\]"):
        tracing.tracer_provider("intake")
