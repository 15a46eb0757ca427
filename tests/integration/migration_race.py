"""Worker of tests/integration/test_migration_race.py: one process migrating one
service round after round, each round starting together with the other service's
process (a barrier), as two services' first start on a fresh database does.

Intake has more revisions than coordination, so left alone the two reach the shared
key vault at different moments and collide only now and then (2 of 40 in the field).
The worker lines them up there too: both enter the key-vault step together (the
real code, with whatever lock it takes), so each round is a collision."""

from __future__ import annotations

from typing import Any

from kyosei_platform import migrate
from kyosei_platform.migrate import upgrade
from kyosei_platform.service import discover
from kyosei_platform.settings import Settings


def migrate_rounds(service: str, url: str, prefixes: list[str], barrier: Any, results: Any) -> None:
    svc = discover()[service]
    ensure_key_vault = migrate._ensure_key_vault

    async def together(settings: Settings) -> None:
        barrier.wait(timeout=120)
        await ensure_key_vault(settings)

    migrate._ensure_key_vault = together  # type: ignore[assignment]  # lines them up
    for prefix in prefixes:
        settings = Settings(
            database_url=url,
            db_schema=f"{prefix}_{service}",
            keys_database_url=url,
            keys_db_schema=f"{prefix}_keys",
            kafka_bootstrap=["127.0.0.1:9"],
            master_key="ab" * 32,
            auth_secret="x" * 32,
        )
        barrier.wait(timeout=120)
        try:
            upgrade(svc, settings)
        except Exception as exc:
            results.put((prefix, service, f"{type(exc).__name__}: {exc}"[:500]))
        else:
            results.put((prefix, service, None))
