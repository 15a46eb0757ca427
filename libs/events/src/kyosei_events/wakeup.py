"""Waking the relay when events are committed: both ends, in one place.

The store calls :meth:`Wakeup.committed` after every commit that appended. That calls
the in-process listeners (a relay on the same store) and, when a channel is set and the
relay publishing is not this process's, sends NOTIFY on it so that the relay of another
process (the leader among the replicas) wakes too; :meth:`Wakeup.listen` is their
end, LISTEN on the same channel (PostgreSQL only). Without either, a relay still finds
new events at its next poll: a wake-up only makes it sooner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from sqlalchemy import String, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .direct import execute

# Built once, the channel bound at execution.
_NOTIFY = select(func.pg_notify(bindparam("channel", type_=String), ""))
log = structlog.get_logger(__name__)


class Listening:
    """A LISTEN in progress, on a connection of its own; :meth:`close` ends it."""

    def __init__(self, conn: AsyncConnection, channel: str) -> None:
        self.channel = channel
        self._conn = conn

    async def close(self) -> None:
        await self._conn.close()


class Wakeup:
    """Commit signal of one store: in-process listeners, NOTIFY out, LISTEN in."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._listeners: list[Callable[[], None]] = []
        self._channel: str | None = None
        self._notify_task: asyncio.Task[None] | None = None
        self._notify_again = False
        # Set by the relay of this process while it is the one publishing: the
        # in-process listener wakes it, and a NOTIFY would only wake it a second time.
        self.publishing_here = False

    @property
    def channel(self) -> str | None:
        """The NOTIFY/LISTEN channel, if one is set."""
        return self._channel

    def use_channel(self, channel: str) -> None:
        """On PostgreSQL, NOTIFY this channel after commits, for relays in other processes."""
        self._channel = channel

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (in-process, no I/O) after every commit that appended."""
        self._listeners.append(listener)

    def committed(self) -> None:
        """Events were committed: call the listeners and, with a channel, schedule NOTIFY."""
        for listener in self._listeners:
            listener()
        if self._channel is not None and not self.publishing_here:
            self._schedule_notify()

    async def listen(self, listener: Callable[[], None]) -> Listening | None:
        """On PostgreSQL with a channel set, call ``listener`` on every NOTIFY on it
        (from any process) until the returned :class:`Listening` is closed; otherwise
        there is nothing to listen to and the answer is None."""
        channel = self._channel
        if self.engine.dialect.name != "postgresql" or channel is None:
            return None
        conn = await self.engine.connect()
        raw = await conn.get_raw_connection()
        await raw.driver_connection.add_listener(channel, lambda *_: listener())  # type: ignore[union-attr]
        return Listening(conn, channel)

    def _schedule_notify(self) -> None:
        # Coalesced and outside the writing transaction: NOTIFY serialises the commits
        # of the transactions that send it, so appends must not send it themselves.
        if self._notify_task is not None and not self._notify_task.done():
            self._notify_again = True
            return
        self._notify_task = asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        assert self._channel is not None
        while True:
            self._notify_again = False
            try:
                async with self.engine.connect() as conn:
                    # One statement, its own transaction: one round trip.
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await execute(conn, _NOTIFY, {"channel": self._channel})
            except Exception:  # a lost wake-up only delays the relay until its next poll
                log.warning("notify_failed", channel=self._channel, exc_info=True)
            if not self._notify_again:
                return
