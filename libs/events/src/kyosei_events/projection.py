"""Projections: read models built from the log, tracked in the same transaction.

A projection applies a batch of decoded events and the runner saves its checkpoint
in the same transaction, so a crash never leaves a read model ahead of or behind
its checkpoint. ``rebuild`` clears a read model and replays the whole log, which is
how read models are proved to be derivable from events alone; it holds the service's
appends out meanwhile, so it can run while the service serves (inline projections are
updated by every append). ``catch_up`` is for read models that only it updates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import structlog

from .records import START, DecodedEvent
from .store import EventStore, UnitOfWork

log = structlog.get_logger(__name__)


class Projection(Protocol):
    name: str

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None:
        """Apply a batch of events, in log order, to the read model."""

    async def reset(self, uow: UnitOfWork) -> None:
        """Delete everything the projection has written."""


async def catch_up(
    store: EventStore,
    projection: Projection,
    *,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Apply every event after the projection's checkpoint, at least up to the log's
    head when it starts. Returns how many.

    The log is read only below the horizon (no transaction still running that could
    commit an earlier event), so an empty batch may mean "held back", not "done": it
    waits until every event committed when it started has been applied. ``progress``
    is called with the running total after every batch."""
    cursor = await store.checkpoint(projection.name)
    head = await store.head_position()
    total = 0
    while True:
        batch = await store.read_log(cursor, batch_size)
        if not batch:
            if not await store.unread_up_to(cursor, head):
                return total
            await asyncio.sleep(0.05)  # a transaction still running holds the horizon
            continue
        decoded = [await store.decode(r) for r in batch]
        async with store.unit_of_work() as uow:
            await projection.apply(uow, decoded)
            cursor = batch[-1].cursor
            await uow.save_checkpoint(projection.name, cursor)
        total += len(batch)
        if progress is not None:
            progress(total)
        log.debug("projection_progress", projection=projection.name, events=total)


async def rebuild(
    store: EventStore,
    projection: Projection,
    *,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Clear the read model and replay the whole log into it. Returns how many events.

    One transaction that holds the service's writers out (``UnitOfWork.hold_writers_out``):
    appends update inline projections in their own transactions, so a reset and replay
    that let them in between would apply an event twice (an IntegrityError) or lose
    one (reset after the append's update, replayed before its commit). Appends wait
    until the rebuild commits, and readers see the previous read model until then (on
    PostgreSQL); a rebuild that fails leaves it as it was."""
    cursor = START
    total = 0
    async with store.unit_of_work() as uow:
        await uow.hold_writers_out()
        await projection.reset(uow)
        while batch := await uow.read_committed_log(cursor, batch_size):
            await projection.apply(uow, [await store.decode(r) for r in batch])
            cursor = batch[-1].cursor
            total += len(batch)
            if progress is not None:
                progress(total)
            log.debug("projection_rebuild_progress", projection=projection.name, events=total)
        await uow.save_checkpoint(projection.name, cursor, forward_only=False)
    return total
