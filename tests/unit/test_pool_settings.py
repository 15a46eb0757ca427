"""Connection pool sizes are settings: the service's database and the key vault each
have theirs, and the deploy README documents every setting from the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.pool import QueuePool

from kyosei_events.database import create_engine
from kyosei_platform import deploy
from kyosei_platform.runtime import ServiceRuntime
from kyosei_platform.service import discover
from kyosei_platform.settings import Settings

PG = "postgresql+asyncpg://kyosei@db.invalid:5432/kyosei"
README = Path(__file__).resolve().parents[2] / "deploy" / "README.md"


def pool_of(engine: object) -> tuple[int, int]:
    pool = engine.pool  # type: ignore[attr-defined]
    assert isinstance(pool, QueuePool)
    return pool.size(), pool._max_overflow


def test_create_engine_takes_pool_size_and_overflow() -> None:
    assert pool_of(create_engine(PG, pool_size=3, max_overflow=7)) == (3, 7)
    assert pool_of(create_engine(PG, schema="intake", pool_size=4, max_overflow=0)) == (4, 0)


def test_the_runtime_sizes_both_pools_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "DATABASE_URL": PG,
        "KEYS_DATABASE_URL": PG,
        "KAFKA_BOOTSTRAP": "kafka:9092",
        "MASTER_KEY": "44" * 32,
        "AUTH_SECRET": "s" * 32,
        "DB_POOL_SIZE": "12",
        "DB_MAX_OVERFLOW": "3",
        "KEYS_DB_POOL_SIZE": "2",
        "KEYS_DB_MAX_OVERFLOW": "1",
        "KEY_CACHE_SIZE": "500",
        "HEAD_CACHE_SIZE": "700",
    }.items():
        monkeypatch.setenv(f"KYOSEI_{name}", value)
    runtime = ServiceRuntime(discover()["coordination"], Settings())  # type: ignore[call-arg]
    assert pool_of(runtime.engine) == (12, 3)
    assert pool_of(runtime.keys_engine) == (2, 1)
    assert runtime.vault.cache_size == 500
    assert runtime.store.writer.head_cache_size == 700


def test_pool_defaults_are_documented() -> None:
    fields = Settings.model_fields
    assert (fields["db_pool_size"].default, fields["db_max_overflow"].default) == (10, 10)
    assert (fields["keys_db_pool_size"].default, fields["keys_db_max_overflow"].default) == (10, 10)
    readme = README.read_text(encoding="utf-8")
    for name in ("DB_POOL_SIZE", "DB_MAX_OVERFLOW", "KEYS_DB_POOL_SIZE", "KEYS_DB_MAX_OVERFLOW"):
        assert f"`KYOSEI_{name}`" in readme


def test_every_platform_setting_is_documented_from_the_code() -> None:
    table = deploy.platform_settings_table()
    for field, info in Settings.model_fields.items():
        row = next(r for r in table.splitlines() if f"`KYOSEI_{field.upper()}`" in r)
        assert info.description and info.description.split(";")[0] in row.replace("\\|", "|")
    assert table in README.read_text(encoding="utf-8")
