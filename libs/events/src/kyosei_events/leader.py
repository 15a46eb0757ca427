"""Leadership of the outbox relay: one relay per service publishes at a time.

Every replica of a service runs a relay on the same checkpoint. On PostgreSQL the one
that holds a session-level advisory lock, ``pg_try_advisory_lock(hashtext(key))`` with
key ``kyosei-relay:<schema>:<name>``, on a connection of its own is the leader; the
others try again every poll interval. The lock is released when the leader stops, or
by the server when the leader's session dies (process killed, connection lost), and
another relay takes over at its next try. SQLite is one process (the embedded default):
there the relay always leads.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = structlog.get_logger(__name__)

# How long a check of the lock's session may take before the lead is given up.
CHECK_TIMEOUT = 5.0


def lock_key(engine: AsyncEngine, name: str) -> str:
    """``kyosei-relay:<schema>:<name>``: one lock per service schema and relay name."""
    translate = engine.get_execution_options().get("schema_translate_map") or {}
    schema = translate.get(None) or "public"
    return f"kyosei-relay:{schema}:{name}"


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock held on a dedicated connection."""

    def __init__(self, engine: AsyncEngine, key: str) -> None:
        self.engine = engine
        self.key = key
        self.backend_pid: int | None = None
        self._conn: AsyncConnection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    async def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this holds it."""
        if self._conn is not None:
            return True
        conn = await self.engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            got, pid = (
                await conn.execute(
                    text("select pg_try_advisory_lock(hashtext(:key)), pg_backend_pid()"),
                    {"key": self.key},
                )
            ).one()
        except BaseException:
            await _discard(conn)
            raise
        if not got:
            await conn.close()
            return False
        self._conn, self.backend_pid = conn, int(pid)
        return True

    async def check(self) -> bool:
        """Whether the lock's session is still alive (and so the lock still held);
        when it is not, the lock is given up."""
        if self._conn is None:
            return False
        try:
            # asyncio.timeout keeps a cancellation (wait_for on 3.11 can drop it).
            async with asyncio.timeout(CHECK_TIMEOUT):
                await self._conn.execute(text("select 1"))
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("relay_lock_lost", key=self.key, error=repr(exc))
            await self._lost()
            return False

    async def release(self) -> None:
        conn, self._conn, self.backend_pid = self._conn, None, None
        if conn is None:
            return
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await conn.execute(
                    text("select pg_advisory_unlock(hashtext(:key))"), {"key": self.key}
                )
            await conn.close()
        except Exception:
            # The session is gone or stuck: dropping it releases the lock on the server.
            await _discard(conn)

    async def _lost(self) -> None:
        conn, self._conn, self.backend_pid = self._conn, None, None
        if conn is not None:
            await _discard(conn)


async def _discard(conn: AsyncConnection) -> None:
    """Close a connection that must not go back to the pool as it is."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()
