"""What a service declares to the platform: its routes, read models and event policies.

Each service package exposes one :class:`Service` through the ``kyosei.services``
entry point; the CLI (serve, migrate, dev, verify, rebuild) finds them there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic_settings import BaseSettings

from kyosei_events.policy import Policy, by_event_type
from kyosei_events.projection import Projection

NAME = re.compile(r"[a-z][a-z0-9]*")
# The host port of the first service in `make dev` and compose; the others follow in order.
FIRST_PORT = 8001


@dataclass(frozen=True)
class Service:
    name: str
    title: str
    description: str
    router: APIRouter
    migrations: Path
    # Place in pillar order (intake 1, coordination 2, participation 3, community 4,
    # audit 5; a new service takes the next number). Installed services are listed,
    # given `make dev` ports and compose host ports in this order.
    order: int
    projections: Sequence[Callable[[], Projection]] = ()
    # what it does with events consumed from other services' topics: @policy functions,
    # at most one per event type
    policies: Sequence[Policy[Any]] = ()
    # What only this service reads, from KYOSEI_<NAME>_* (its settings.py); the
    # runtime loads it at start: ServiceRuntime.service_settings(TheClass).
    settings: type[BaseSettings] | None = None

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise ValueError(
                f"service name {self.name!r}: lowercase letters and digits, starting with a "
                "letter (it names the package kyosei_<name>, its topic, schema and variables)"
            )
        try:
            by_event_type(self.policies)
        except ValueError as exc:
            raise ValueError(f"service {self.name}: {exc}") from None
        if self.settings is not None:
            prefix = self.settings.model_config.get("env_prefix")
            if prefix != self.env_prefix:
                raise TypeError(
                    f"{self.settings.__name__} of service {self.name} must read "
                    f"{self.env_prefix}* (env_prefix), not {prefix or 'no prefix'}"
                )

    @property
    def env_prefix(self) -> str:
        """Where this service's own settings come from: ``KYOSEI_<NAME>_``."""
        return f"KYOSEI_{self.name.upper()}_"

    def load_settings(self, env_file: Path | None = None) -> BaseSettings | None:
        """This service's own settings from the environment, then ``env_file`` (the
        data folder's settings file of `kyosei dev`, if any); None if it has none."""
        if self.settings is None:
            return None
        return self.settings(_env_file=env_file)


def discover() -> dict[str, Service]:
    """Every installed service, by name."""
    found: dict[str, Service] = {}
    for ep in entry_points(group="kyosei.services"):
        service = ep.load()
        if not isinstance(service, Service):
            raise TypeError(f"entry point {ep.value} is not a kyosei Service")
        found[service.name] = service
    # In their declared order, so that `make dev` and the deploy files give each
    # service the same port every time.
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


def host_ports(services: Mapping[str, Service], first: int = FIRST_PORT) -> dict[str, int]:
    """The host port of each service, in order: what `make dev` serves it on, and
    what compose publishes it on."""
    return {name: first + i for i, name in enumerate(services)}


def get(name: str) -> Service:
    services = discover()
    try:
        return services[name]
    except KeyError:
        raise SystemExit(
            f"unknown service {name!r}; installed: {', '.join(services) or 'none'}"
        ) from None
