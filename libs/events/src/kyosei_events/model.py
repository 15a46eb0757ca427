"""Domain event base, the catalogue registry, personal-data markers and upcasting.

Every event type is a frozen pydantic model registered under its English name and
schema version. Changing an event's meaning means a new version plus an upcaster:
stored events are never rewritten, they are upcast when read.

The catalogue is ``kyosei_events.catalogue`` (one module per producing service) plus
the event modules that installed service packages declare under the ``kyosei.events``
entry point (name = the producing service), so a new service can start with event
types of its own; they are registered, published and decoded like the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict


class Personal:
    """Marks a field as personal data (個人情報 / 要配慮個人情報).

    Use as ``Annotated[str, Personal()]``. Such fields are encrypted with the
    household's key before the event is stored or published, and read as ``None``
    once the household's key has been erased.
    """

    def __repr__(self) -> str:
        return "Personal()"


class DomainEvent(BaseModel):
    """Base of every event in the catalogue.

    Subclasses set ``event_type`` (past-tense English name), ``schema_version``,
    ``label_ja`` (the Japanese label users read) and ``producer`` (the service
    whose topic carries it), and are registered with :func:`event`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    event_type: ClassVar[str]
    schema_version: ClassVar[int]
    label_ja: ClassVar[str]
    producer: ClassVar[str]
    # False: a store-only event. It stays in the producing service's event store (hash
    # chained, sealed, verifiable like every other) and the outbox relay never puts it
    # on the topic: what it records may be read only through that service's API (e.g.
    # the minutes of a 支援会議, which only its participants may read).
    published: ClassVar[bool] = True

    @classmethod
    def personal_fields(cls) -> frozenset[str]:
        """Names of the fields marked :class:`Personal`."""
        names = _PERSONAL_CACHE.get(cls)
        if names is None:
            names = _PERSONAL_CACHE[cls] = frozenset(
                name
                for name, info in cls.model_fields.items()
                if any(isinstance(m, Personal) for m in info.metadata)
            )
        return names


_PERSONAL_CACHE: dict[type[DomainEvent], frozenset[str]] = {}

E = TypeVar("E", bound=type[DomainEvent])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(LookupError):
    """An event type or version that this catalogue does not know."""


@dataclass(frozen=True)
class _Entry:
    latest: type[DomainEvent]
    upcasters: dict[int, Upcaster]  # from_version -> function producing from_version + 1


_REGISTRY: dict[str, _Entry] = {}
_installed_loaded = False


def _load_installed() -> None:
    """Import the event modules of installed services (``kyosei.events`` entry points)."""
    global _installed_loaded
    if _installed_loaded:
        return
    _installed_loaded = True  # before importing: those modules use this registry
    try:
        for ep in entry_points(group="kyosei.events"):
            ep.load()
    except BaseException:
        _installed_loaded = False
        raise


def installed_event_modules() -> dict[str, str]:
    """Producing service -> the module of its own event types, for installed services
    that declare one (the ``kyosei.events`` entry point)."""
    return {ep.name: ep.value for ep in entry_points(group="kyosei.events")}


def event(cls: E) -> E:
    """Register an event class in the catalogue (class decorator)."""
    for attr in ("event_type", "schema_version", "label_ja", "producer"):
        if attr not in cls.__dict__:
            raise TypeError(f"{cls.__name__} must set {attr}")
    if not cls.__doc__:
        raise TypeError(f"{cls.__name__} needs a docstring: it is published in the schema")
    existing = _REGISTRY.get(cls.event_type)
    if existing is not None and existing.latest is not cls:
        raise TypeError(f"event type {cls.event_type} registered twice")
    _REGISTRY[cls.event_type] = _Entry(latest=cls, upcasters={})
    return cls


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function that turns a ``from_version`` payload into the next version."""

    def register(fn: Upcaster) -> Upcaster:
        entry = _REGISTRY.get(event_type) or _installed(event_type)
        if entry is None:
            raise UnknownEventType(event_type)
        if from_version >= entry.latest.schema_version:
            raise TypeError(f"{event_type} v{from_version} is not older than the latest")
        entry.upcasters[from_version] = fn
        return fn

    return register


def catalogue() -> Mapping[str, type[DomainEvent]]:
    """Every registered event type, by name, at its latest version."""
    _load_installed()
    return {name: entry.latest for name, entry in sorted(_REGISTRY.items())}


def event_class(event_type: str) -> type[DomainEvent]:
    entry = _REGISTRY.get(event_type) or _installed(event_type)
    if entry is None:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    return entry.latest


def _installed(event_type: str) -> _Entry | None:
    """A type not registered yet may be an installed service's own: load those."""
    _load_installed()
    return _REGISTRY.get(event_type)


def travels(event_type: str) -> bool:
    """Whether events of ``event_type`` are published on their producer's topic (an
    unknown type travels: the relay publishes what it cannot classify as stored)."""
    entry = _REGISTRY.get(event_type) or _installed(event_type)
    return entry is None or entry.latest.published


def readable_versions(event_type: str) -> list[int]:
    """Every version of ``event_type`` that may be stored (and so travel as stored):
    the latest and each older one an unbroken chain of upcasters brings up to it."""
    entry = _REGISTRY.get(event_type) or _installed(event_type)
    if entry is None:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    versions = [entry.latest.schema_version]
    while versions[0] - 1 in entry.upcasters:
        versions.insert(0, versions[0] - 1)
    return versions


def upcast(event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """Bring a stored payload of ``version`` up to the latest version of its type."""
    entry = _REGISTRY.get(event_type) or _installed(event_type)
    if entry is None:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    latest = entry.latest.schema_version
    if version > latest:
        raise UnknownEventType(f"{event_type} v{version} is newer than this catalogue (v{latest})")
    while version < latest:
        step = entry.upcasters.get(version)
        if step is None:
            raise UnknownEventType(f"no upcaster for {event_type} v{version} -> v{version + 1}")
        payload = step(payload)
        version += 1
    return payload
