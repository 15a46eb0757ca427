"""The directory fed from intake's topic: one policy per directory event type, for
every service other than intake (which keeps the directory inline from its own store).

Declare them with the service's own policies: ``policies=[*directory_policies(), …]``.
Each applies its event in the consumer's transaction, with the processed-message mark,
so a redelivery changes nothing.
"""

from __future__ import annotations

from typing import Any

from kyosei_events import DomainEvent
from kyosei_events.policy import Policy, PolicyContext

from .directory import FED_BY, record


async def _keep(event: DomainEvent, ctx: PolicyContext) -> None:
    await record(ctx.uow.conn, event, ctx.envelope.agency_id, ctx.envelope.staff_id)


def directory_policies() -> list[Policy[Any]]:
    """Policies that keep this service's copy of the household directory."""
    return [Policy(event_type, _keep) for event_type in FED_BY]
