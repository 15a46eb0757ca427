"""Kafka security from settings: the service's broker (and the plain clients of the
operator commands) are built with TLS and SASL/SCRAM as configured, and the SASL
password is a secret, kept in the Kubernetes Secret."""

from __future__ import annotations

import ssl
from typing import Any

import certifi
import pytest
from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from kyosei_platform import deploy
from kyosei_platform.bus import kafka_client_options, kafka_security
from kyosei_platform.runtime import ServiceRuntime
from kyosei_platform.service import get
from kyosei_platform.settings import Settings


def settings(**kw: Any) -> Settings:
    return Settings(
        database_url="sqlite+aiosqlite:///unused.db",
        keys_database_url="sqlite+aiosqlite:///unused-keys.db",
        kafka_bootstrap=["kafka-0.example:9096", "kafka-1.example:9096"],
        master_key="00" * 32,
        auth_secret="s" * 32,
        **kw,
    )


def security_of(runtime: ServiceRuntime) -> dict[str, Any]:
    options: dict[str, Any] = runtime.broker._connection_kwargs  # type: ignore[attr-defined]
    return {k: v for k, v in options.items() if k.startswith(("security", "sasl_", "ssl"))}


def test_plaintext_by_default() -> None:
    assert settings().kafka_security_protocol == "PLAINTEXT"
    assert kafka_security(settings()) is None
    assert kafka_client_options(settings()) == {
        "bootstrap_servers": ["kafka-0.example:9096", "kafka-1.example:9096"]
    }


async def test_the_service_broker_uses_sasl_scram_over_tls_with_the_ca() -> None:
    config = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="kyosei-intake",
        kafka_sasl_password="pa55word",
        kafka_ssl_cafile=certifi.where(),
    )
    security = kafka_security(config)
    assert isinstance(security, SASLScram256)
    assert (security.username, security.password, security.use_ssl) == (
        "kyosei-intake",
        "pa55word",
        True,
    )
    assert security.ssl_context is not None
    assert security.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert security.ssl_context.get_ca_certs()  # the CA file was loaded

    runtime = ServiceRuntime(get("coordination"), config)
    try:
        sent = security_of(runtime)
        assert sent["security_protocol"] == "SASL_SSL"
        assert sent["sasl_mechanism"] == "SCRAM-SHA-256"
        assert (sent["sasl_plain_username"], sent["sasl_plain_password"]) == (
            "kyosei-intake",
            "pa55word",
        )
        assert isinstance(sent["ssl_context"], ssl.SSLContext)
    finally:
        await runtime.stop()
    # The operator commands' plain clients get the same.
    options = kafka_client_options(config)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"


def test_scram_512_without_tls_and_tls_without_sasl() -> None:
    sasl = kafka_security(
        settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_username="u",
            kafka_sasl_password="p",
        )
    )
    assert isinstance(sasl, SASLScram512)  # the default mechanism
    assert not sasl.use_ssl and sasl.ssl_context is None
    tls = kafka_security(settings(kafka_security_protocol="SSL"))
    assert type(tls) is BaseSecurity and tls.use_ssl and tls.ssl_context is not None
    assert kafka_client_options(settings(kafka_security_protocol="SSL"))["security_protocol"] == (
        "SSL"
    )


def test_sasl_needs_a_user_and_password_and_the_password_stays_secret() -> None:
    with pytest.raises(ValueError, match="KYOSEI_KAFKA_SASL_USERNAME"):
        settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="u")
    with pytest.raises(ValueError):
        settings(kafka_security_protocol="TLS")
    config = settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="u", kafka_sasl_password="p"
    )
    assert "p'" not in repr(config) and "**********" in repr(config)
    assert "KYOSEI_KAFKA_SASL_PASSWORD" in deploy.secret_settings()
    assert "KYOSEI_KAFKA_SASL_USERNAME" not in deploy.secret_settings()
    assert "KYOSEI_KAFKA_SASL_PASSWORD" in deploy.secret_example()
