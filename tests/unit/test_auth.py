"""The one auth check: signed identity, clear 401s."""

from __future__ import annotations

import time

import jwt
import pytest

from kyosei_platform.auth import Role, issue_token, verify_token
from kyosei_platform.errors import ApiError

SECRET = "a-test-secret-of-at-least-32-bytes"


def test_round_trip_carries_agency_staff_and_role() -> None:
    identity = verify_token(SECRET, issue_token(SECRET, "nabari-hokenshitsu", "st-7", Role.AUDITOR))
    assert (identity.agency_id, identity.staff_id, identity.role) == (
        "nabari-hokenshitsu",
        "st-7",
        Role.AUDITOR,
    )


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (issue_token("another-secret-of-thirty-two-bytes!", "a", "s", Role.STAFF), "token_invalid"),
        (issue_token(SECRET, "a", "s", Role.STAFF, ttl=-10), "token_expired"),
        (
            jwt.encode(
                {"sub": "s", "agency": "a", "role": "mayor", "exp": int(time.time()) + 86_400},
                SECRET,
                algorithm="HS256",
            ),
            "token_claims",
        ),
        ("not-a-token", "token_invalid"),
    ],
)
def test_bad_tokens_are_401_with_a_reason(token: str, code: str) -> None:
    with pytest.raises(ApiError) as info:
        verify_token(SECRET, token)
    assert info.value.status == 401
    assert info.value.code == code
    assert info.value.message_ja


def test_settings_read_the_environment_as_operators_write_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kyosei_platform.settings import Settings

    for k, v in {
        "KYOSEI_DATABASE_URL": "postgresql+asyncpg://k@db/kyosei",
        "KYOSEI_DB_SCHEMA": "intake",
        "KYOSEI_KEYS_DATABASE_URL": "postgresql+asyncpg://k@db/kyosei",
        "KYOSEI_KAFKA_BOOTSTRAP": "kafka-0:9092, kafka-1:9092",
        "KYOSEI_MASTER_KEY": "0f" * 32,
        "KYOSEI_AUTH_SECRET": SECRET,
    }.items():
        monkeypatch.setenv(k, v)
    s = Settings()  # type: ignore[call-arg]
    assert s.kafka_bootstrap == ["kafka-0:9092", "kafka-1:9092"]
    assert s.db_schema == "intake" and s.http_port == 8000
    monkeypatch.setenv("KYOSEI_MASTER_KEY", "too-short")
    with pytest.raises(ValueError, match="64 hex characters"):
        Settings()  # type: ignore[call-arg]


def test_a_token_verified_before_is_refused_once_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime, timedelta

    import jwt.api_jwt

    from kyosei_platform import auth

    token = issue_token(SECRET, "a", "s-expiring", Role.STAFF, ttl=60)
    assert verify_token(SECRET, token).staff_id == "s-expiring"  # verified, and remembered
    later = time.time() + 61

    class Later(datetime):
        @classmethod
        def now(cls, tz: object = None) -> Later:
            return cls.fromtimestamp(later, UTC)

    monkeypatch.setattr(auth.time, "time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", Later)
    assert datetime.now(UTC) < Later.now(UTC) - timedelta(seconds=60)
    with pytest.raises(ApiError) as info:
        verify_token(SECRET, token)
    assert info.value.code == "token_expired"
