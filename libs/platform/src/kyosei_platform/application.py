"""The application layer's toolkit: what every service's commands are written with.

A command is one function ``async def do_x(ctx: CommandContext, …) -> State``: it
loads the aggregate, asks the pure domain to decide (events, or a :class:`Rejected`
refusal), and saves what was decided. Routes and event policies call the same
function; they differ only in the context they hand it:

- from HTTP (:func:`kyosei_platform.api.command_context`): the caller's identity, the
  request's correlation id, and the store (each save its own transaction);
- from a policy (:meth:`CommandContext.for_policy`): no caller (the system acts for the
  agency the event names), metadata caused by the consumed event, and the policy's
  unit of work, so the command's appends commit with the processed-message mark.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events import (
    ConcurrencyError,
    DomainEvent,
    EventStore,
    Metadata,
    NewEvent,
    UnitOfWork,
    Unprocessable,
)

from .identity import Identity

JST = timezone(timedelta(hours=9), "JST")


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    """The municipality's calendar day (JST): consent and review dates are Japanese dates."""
    return datetime.now(UTC).astimezone(JST).date()


# PostgreSQL's serialization failure and deadlock: the database rolled the transaction
# back so that another could go on; the same write may succeed when sent again.
WRITE_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
SAVE_ATTEMPTS = 3
# A command that lost a race to another writer (no If-Match) is run again this many
# times in all, each time on what is stored then.
COMMAND_ATTEMPTS = 10


def is_write_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps: SQLAlchemy's ``orig``, the explicit or
    implicit cause) is a serialization failure or a deadlock."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if state in WRITE_CONFLICT_SQLSTATES:
            return True
        orig = getattr(current, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None]
        todo += [current.__cause__, current.__context__]
    return False


def stream_id(kind: str, ident: str) -> str:
    """The one way a stream is named: ``<kind>-<id>`` (``household-…``, ``case-…``)."""
    return f"{kind}-{ident}"


class Rejected(Unprocessable):
    """A command that the domain's rules do not allow (HTTP: a 4xx; policy: a dead letter
    at once, with this refusal as its reason: retrying cannot change the answer).

    ``status`` is 409 for a rule about the current state, 422 for a wrong field, 404
    for something that does not exist, 403 for a caller who may not do it.
    """

    def __init__(
        self,
        code: str,
        message: str,
        message_ja: str,
        *,
        status: int = 409,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.message_ja = code, message, message_ja
        self.status, self.field = status, field


def invalid(field: str, code: str, message: str, message_ja: str) -> Rejected:
    """A command whose ``field`` is wrong (HTTP 422 naming the field)."""
    return Rejected(code, message, message_ja, status=422, field=field)


def wrong_state(code: str, state: str, state_ja: str, advice: str, advice_ja: str) -> Rejected:
    """A command the record's current state does not allow (HTTP 409). The message
    says what is the case, then what to do: "this referral is already completed;
    nothing more to do", never advice that fits another state."""
    return Rejected(code, f"{state}; {advice}", f"{state_ja}。{advice_ja}")


def not_found(kind: str, kind_ja: str, ident: str) -> Rejected:
    """Nothing of that kind with that id, or nothing the caller may see (404 either way,
    so that a record's existence is not told)."""
    return Rejected(
        f"{kind}_not_found", f"no {kind} {ident}", f"該当する{kind_ja}がありません", status=404
    )


def forbidden(code: str, message: str, message_ja: str) -> Rejected:
    return Rejected(code, message, message_ja, status=403)


class PreconditionFailed(Exception):
    """The version the caller said it read (HTTP ``If-Match``) is no longer the
    stream's: someone wrote since. Nothing was recorded (HTTP 412)."""

    def __init__(self, stream_id: str, sent: int, current: int) -> None:
        self.stream_id, self.sent, self.current = stream_id, sent, current
        super().__init__(
            f'{stream_id} is now at version {current} (ETag "{current}"), not the one '
            "you read: read it again, then decide again"
        )


P = ParamSpec("P")
R = TypeVar("R")


def retry_on_conflict(
    command: Callable[Concatenate[CommandContext, P], Awaitable[R]],
) -> Callable[Concatenate[CommandContext, P], Awaitable[R]]:
    """Run ``command`` again when another writer changed its streams between its load
    and its append (and the caller did not send If-Match): it loads again, decides
    again on what is stored now and appends again, up to :data:`COMMAND_ATTEMPTS`
    times with a random pause in a doubling window. A refusal the new state calls for (e.g. it is
    already done) is the answer then. In a policy the consumer retries its whole unit
    of work instead, so the command runs once."""

    @functools.wraps(command)
    async def run(ctx: CommandContext, /, *args: P.args, **kwargs: P.kwargs) -> R:
        attempt = 1
        while True:
            try:
                return await command(ctx, *args, **kwargs)
            except Exception as exc:
                conflict = isinstance(exc, ConcurrencyError) or is_write_conflict(exc)
                if ctx.uow is not None or not conflict or attempt >= COMMAND_ATTEMPTS:
                    raise
            # Full jitter on a doubling window (10 ms, 20 ms, ... up to 0.5 s): writers
            # that collided spread out instead of colliding again in step.
            await asyncio.sleep(random.uniform(0.0, min(0.5, 0.01 * 2 ** (attempt - 1))))
            attempt += 1

    return run


class Aggregate(Protocol):
    """State folded from a stream's events; ``version`` is the last one applied."""

    version: int

    @property
    def exists(self) -> bool: ...

    def evolve(self, event: DomainEvent) -> None: ...


A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class Change:
    """What one command decided for one stream.

    It is appended at ``if_match`` (the version the caller says it read: a mismatch
    is :class:`PreconditionFailed`), else at ``expected`` (0: a new stream), else at
    the version the state was loaded at (a mismatch is a ConcurrencyError, which
    :func:`retry_on_conflict` answers by running the command again)."""

    state: Aggregate
    stream: str
    events: Sequence[DomainEvent]
    subject: str
    if_match: int | None = None
    expected: int | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class CommandContext:
    """Who acts, why, and where a command's events go."""

    store: EventStore
    metadata: Metadata
    actor: Identity | None = None  # None: the system, in a policy
    uow: UnitOfWork | None = None

    @classmethod
    def for_policy(cls, store: EventStore, uow: UnitOfWork, metadata: Metadata) -> CommandContext:
        return cls(store=store, metadata=metadata, actor=None, uow=uow)

    @property
    def agency_id(self) -> str:
        """The acting agency: the caller's, or in a policy the one the event names."""
        agency = self.actor.agency_id if self.actor else self.metadata.agency_id
        if agency is None:
            raise ValueError("a command needs an acting agency")
        return agency

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for read-model questions (in a policy: its own transaction, so
        it sees what this transaction wrote)."""
        if self.uow is not None:
            yield self.uow.conn
            return
        async with self.store.engine.connect() as conn:
            yield conn

    async def load(self, stream: str, make: Callable[[], A]) -> A:
        """The aggregate folded from ``stream`` (``exists`` is False when it is new)."""
        source = self.uow if self.uow is not None else self.store
        events, _ = await source.load(stream)
        state = make()
        for d in events:
            state.evolve(d.event)
        return state

    async def get(self, stream: str, make: Callable[[], A], missing: Rejected) -> A:
        """Like :meth:`load`, but ``missing`` is raised when the stream has no events."""
        state = await self.load(stream, make)
        if not state.exists:
            raise missing
        return state

    async def exists(self, stream: str) -> bool:
        if self.uow is not None:
            return await self.uow.stream_version(stream) > 0
        return bool(await self.store.read_stream(stream))

    async def save(self, *changes: Change) -> None:
        """Append what was decided, every change in one transaction, each at the
        version its state was read (or the If-Match the caller sent: a mismatch is
        :class:`PreconditionFailed`, HTTP 412); otherwise a concurrent writer gets a
        ConcurrencyError (see :func:`retry_on_conflict`). The states are evolved with
        their events.

        A transaction the database rolled back as a deadlock or serialization failure
        is sent again, at the same versions, up to :data:`SAVE_ATTEMPTS` times: what was
        decided still holds unless someone wrote meanwhile, and then the versions no
        longer match. In a policy the consumer's unit of work is retried whole."""
        try:
            if self.uow is not None:
                await self._append(self.uow, changes)
            else:
                for attempt in range(1, SAVE_ATTEMPTS + 1):
                    try:
                        await self._commit(changes)
                        break
                    except Exception as exc:
                        if attempt == SAVE_ATTEMPTS or not is_write_conflict(exc):
                            raise
                    await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
        except ConcurrencyError as exc:
            sent = next((c.if_match for c in changes if c.stream == exc.stream_id), None)
            if sent is None:
                raise
            current = exc.actual if exc.actual is not None else await self._version(exc.stream_id)
            raise PreconditionFailed(exc.stream_id, sent, current) from None
        for c in changes:
            for e in c.events:
                c.state.evolve(e)

    async def _commit(self, changes: Sequence[Change]) -> None:
        if len(changes) == 1 and len(changes[0].events) == 1:
            c = changes[0]
            await self.store.append(c.stream, self._new(c), self._expected(c))
        else:
            async with self.store.unit_of_work() as uow:
                await self._append(uow, changes)

    async def _append(self, uow: UnitOfWork, changes: Sequence[Change]) -> None:
        # Streams in one global order, so that two commands writing the same two
        # streams (opposite merges) cannot deadlock each other.
        for c in sorted(changes, key=lambda c: c.stream):
            await uow.append(c.stream, self._new(c), self._expected(c))

    def _new(self, change: Change) -> list[NewEvent]:
        return [NewEvent(e, change.subject, self.metadata) for e in change.events]

    async def _version(self, stream: str) -> int:
        if self.uow is not None:
            return await self.uow.stream_version(stream)
        recorded = await self.store.read_stream(stream)
        return recorded[-1].version if recorded else 0

    @staticmethod
    def _expected(change: Change) -> int:
        for version in (change.if_match, change.expected):
            if version is not None:
                return version
        return change.state.version
