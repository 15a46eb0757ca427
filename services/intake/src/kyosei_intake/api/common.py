"""What every intake route shares: loading aggregates, appending, errors, labels."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Protocol, TypeVar

from fastapi import Depends, Header, Request
from pydantic import BaseModel, Field

from kyosei_events import EventStore, Metadata, NewEvent
from kyosei_events.labels import LabelledEnum
from kyosei_events.model import DomainEvent
from kyosei_platform.auth import CurrentIdentity, Identity, Role, require
from kyosei_platform.errors import ApiError
from kyosei_platform.runtime import ServiceRuntime

from ..domain import Rejected

Note = Annotated[str | None, Field(None, max_length=20_000, description="free text (personal)")]
IfMatch = Annotated[
    int | None,
    Header(
        ge=0,
        le=2_147_483_647,
        description="the version you read; 409 if someone wrote since (optional)",
    ),
]


class LabelledValue(BaseModel):
    """An enum value with the Japanese label that users read."""

    value: str
    label_ja: str


def labelled(v: LabelledEnum) -> LabelledValue:
    return LabelledValue(value=v.value, label_ja=v.label_ja)


def labelled_opt(v: LabelledEnum | None) -> LabelledValue | None:
    return None if v is None else labelled(v)


def now() -> datetime:
    return datetime.now(UTC)


_JST = timezone(timedelta(hours=9), "JST")


def today() -> date:
    """The municipality's calendar day (JST): consent dates are Japanese dates."""
    return datetime.now(UTC).astimezone(_JST).date()


def metadata(request: Request, identity: Identity) -> Metadata:
    return Metadata(
        correlation_id=getattr(request.state, "correlation_id", None),
        agency_id=identity.agency_id,
        staff_id=identity.staff_id,
    )


def writer(identity: CurrentIdentity) -> Identity:
    """Staff and coordinators record the work; auditors and operators only read."""
    require(identity, Role.STAFF, Role.COORDINATOR)
    return identity


Writer = Annotated[Identity, Depends(writer)]


def reader(identity: CurrentIdentity) -> Identity:
    """Operators run the services; they do not read households' records."""
    require(identity, Role.STAFF, Role.COORDINATOR, Role.AUDITOR)
    return identity


Reader = Annotated[Identity, Depends(reader)]


@contextmanager
def decided() -> Iterator[None]:
    """Turn a domain rule's refusal into the 4xx it means."""
    try:
        yield
    except Rejected as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.message_ja, exc.field) from None


class Aggregate(Protocol):
    version: int

    @property
    def exists(self) -> bool: ...

    def evolve(self, event: DomainEvent) -> None: ...


A = TypeVar("A", bound=Aggregate)


async def load(store: EventStore, stream_id: str, make: Callable[[], A], not_found: ApiError) -> A:
    events, _ = await store.load(stream_id)
    state = make()
    for d in events:
        state.evolve(d.event)
    if not state.exists:
        raise not_found
    return state


async def save(
    store: EventStore,
    state: Aggregate,
    stream_id: str,
    events: Sequence[DomainEvent],
    subject: str,
    meta: Metadata,
    if_match: int | None,
) -> None:
    """Append what a command decided, at the version the caller read (If-Match) or
    the version it was decided on; a concurrent writer gets a 409."""
    expected = if_match if if_match is not None else state.version
    await store.append(stream_id, [NewEvent(e, subject, meta) for e in events], expected)
    for e in events:
        state.evolve(e)


async def record(
    runtime: ServiceRuntime,
    request: Request,
    identity: Identity,
    if_match: int | None,
    state: Aggregate,
    stream_id: str,
    subject: str,
    decide: Callable[[], DomainEvent],
) -> None:
    """Decide a command on ``state`` (a refusal becomes its 4xx) and record the event."""
    with decided():
        event = decide()
    await save(
        runtime.store, state, stream_id, [event], subject, metadata(request, identity), if_match
    )


def not_found(kind: str, kind_ja: str, ident: str) -> ApiError:
    return ApiError(
        404, f"{kind}_not_found", f"no {kind} {ident}", f"該当する{kind_ja}がありません"
    )
