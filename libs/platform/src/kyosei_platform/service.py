"""What a service declares to the platform: its routes, read models and event policies.

Each service package exposes one :class:`Service` through the ``kyosei.services``
entry point; the CLI (serve, migrate, dev, verify, rebuild) finds them there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from kyosei_events.policy import Policy, by_event_type
from kyosei_events.projection import Projection
from kyosei_events.topics import SERVICES


@dataclass(frozen=True)
class Service:
    name: str
    title: str
    description: str
    router: APIRouter
    migrations: Path
    projections: Sequence[Callable[[], Projection]] = ()
    # what it does with events consumed from other services' topics: @policy functions,
    # at most one per event type
    policies: Sequence[Policy[Any]] = ()

    def __post_init__(self) -> None:
        try:
            by_event_type(self.policies)
        except ValueError as exc:
            raise ValueError(f"service {self.name}: {exc}") from None


def discover() -> dict[str, Service]:
    """Every installed service, by name."""
    found: dict[str, Service] = {}
    for ep in entry_points(group="kyosei.services"):
        service = ep.load()
        if not isinstance(service, Service):
            raise TypeError(f"entry point {ep.value} is not a kyosei Service")
        found[service.name] = service
    # Pillar order (intake, coordination, participation, community, audit), so that
    # `make dev` gives each service the same port every time.
    order = {name: i for i, name in enumerate(SERVICES)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def get(name: str) -> Service:
    services = discover()
    try:
        return services[name]
    except KeyError:
        raise SystemExit(
            f"unknown service {name!r}; installed: {', '.join(services) or 'none'}"
        ) from None
