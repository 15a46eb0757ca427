"""What coordination's own tests share: its ASGI app over a local store with clients
holding real tokens, the outbox relay's bytes, the household directory written as
intake's events would, cases opened through the command, and the intake events and
views the policy tests use. Imported relatively (``from .kit import …``): the test
folder is not a package, pytest's importlib mode names it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from kyosei_coordination import views
from kyosei_coordination.app import service
from kyosei_coordination.commands import OpenCase, case_id_for, open_case
from kyosei_coordination.projections import metadata as coordination_tables
from kyosei_events import EventStore, OutboxRelay
from kyosei_events.catalogue.intake import (
    CaseEscalated,
    ConsentGiven,
    HouseholdRegistered,
    MemberAdded,
)
from kyosei_households.directory import metadata as directory_tables
from kyosei_households.directory import record
from kyosei_platform.auth import Identity, Role, issue_token
from kyosei_platform.testing import acting_as, local_store, service_app

SECRET = "coordination-tests-secret-0123456789abcdef"
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CITY = "matsudo-city"  # the coordinating municipal office (多機関協働)
HOUKATSU = "houkatsu"  # escalates cases, their main agency
COORDINATOR = Identity(CITY, "coord-1", Role.COORDINATOR)
BOTH_PURPOSES = ("information_sharing", "multi_layered_meeting")


class CapturingBroker:
    """Stands in for Kafka under the real outbox relay: keeps every message it is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, str, bytes | None, dict[str, str]]] = []

    async def publish(
        self, message: bytes, topic: str, *, key: Any = None, headers: Any = None, **_: Any
    ) -> asyncio.Future[None]:
        self.sent.append((message, topic, key, dict(headers or {})))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def wire_bytes(self) -> bytes:
        """Everything that went out: values, keys and headers."""
        parts = []
        for value, _, key, headers in self.sent:
            parts += [value, key or b"", repr(headers).encode()]
        return b"\n".join(parts)


@dataclass
class Coordination:
    """Coordination's routes over a local store, with its household directory."""

    store: EventStore
    app: FastAPI
    broker: CapturingBroker = field(default_factory=CapturingBroker)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, agency: str, role: Role = Role.STAFF) -> httpx.AsyncClient:
        token = issue_token(SECRET, agency, f"{agency}-{role.value}", role)
        c = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://coordination",
            headers={"Authorization": f"Bearer {token}"},
        )
        self.clients.append(c)
        return c

    async def relay(self) -> bytes:
        """Run coordination's outbox relay; what it published, as bytes."""
        relay = OutboxRelay(
            self.store,
            self.broker,
            topic="kyosei.coordination.events",
            source="/kyosei/coordination",  # type: ignore[arg-type]
        )
        await relay.publish_pending()
        return self.broker.wire_bytes()

    async def household(self, household_id: str, *members: str, by: str = HOUKATSU) -> None:
        """The household and its ``members`` in the directory, registered by ``by``."""
        async with self.store.engine.begin() as conn:
            await record(conn, registered(household_id, by), by)
            for m in members:
                await record(
                    conn,
                    MemberAdded(
                        household_id=household_id, member_id=m, name=m, relationship="unknown"
                    ),
                    by,
                )

    async def consent(
        self,
        household_id: str,
        member_id: str,
        agencies: list[str],
        purposes: Sequence[str] = BOTH_PURPOSES,
        by: str = HOUKATSU,
    ) -> None:
        """``member_id``'s consent to ``agencies`` for ``purposes``, recorded by ``by``."""
        async with self.store.engine.begin() as conn:
            await record(
                conn,
                ConsentGiven(
                    consent_id=f"k-{member_id}",
                    household_id=household_id,
                    member_id=member_id,
                    given_by="person",
                    agencies=agencies,
                    purposes=list(purposes),
                    given_on=date(2026, 1, 1),
                    recorded_at=NOW,
                ),
                by,
            )

    async def case(self, consultation_id: str, household_id: str | None) -> str:
        """A case opened by the city's coordinator for an escalated consultation."""
        ctx = acting_as(self.store, CITY, Role.COORDINATOR)
        command = OpenCase(
            consultation_id=consultation_id,
            household_id=household_id,
            escalated_by=HOUKATSU,
            concerns=["care", "withdrawal"],
        )
        await open_case(ctx, command, subject=household_id or consultation_id)
        return case_id_for(consultation_id)


C = TypeVar("C", bound=Coordination)


@asynccontextmanager
async def coordination(tmp_path: Path, kind: type[C] = Coordination) -> AsyncIterator[C]:
    """Coordination's routes (real auth and error envelope) on a fresh local store."""
    async with local_store(tmp_path, service, coordination_tables, directory_tables) as store:
        running = kind(store, service_app(service, store, SECRET))
        try:
            yield running
        finally:
            for c in running.clients:
                await c.aclose()


def body(response: httpx.Response, status: int) -> Any:
    """The response's JSON, once its status is ``status``."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def registered(household_id: str, by: str = HOUKATSU) -> HouseholdRegistered:
    return HouseholdRegistered(household_id=household_id, registered_by=by, registered_at=NOW)


def escalated(
    consultation_id: str,
    household_id: str | None,
    agency: str = HOUKATSU,
    concerns: Sequence[str] = ("care", "withdrawal"),
) -> CaseEscalated:
    """An 8050 consultation escalated by ``agency``, as intake publishes it."""
    return CaseEscalated(
        consultation_id=consultation_id,
        household_id=household_id,
        agency_id=agency,
        concerns=list(concerns),
        reason="8050: 母の認知症と息子のひきこもり",
        escalated_at=NOW,
    )


async def case(store: EventStore, case_id: str) -> views.CaseView:
    """The case as the city's coordinator reads it."""
    async with store.engine.connect() as conn:
        return await views.get_case(conn, COORDINATOR, case_id)
