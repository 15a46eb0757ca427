"""Installed services are found through their `kyosei.services` entry points, in their
declared order, so nothing outside a service's folder lists it."""

from __future__ import annotations

from kyosei_platform.service import discover


def test_every_installed_service_is_discovered_in_its_declared_order() -> None:
    services = discover()
    assert list(services)[:2] == ["intake", "coordination"]
    orders = [svc.order for svc in services.values()]
    assert orders == sorted(orders)
    assert len(set(orders)) == len(orders), "two services declare the same order"
    for name, svc in services.items():
        assert svc.name == name
        assert (svc.migrations / "env.py").is_file(), f"{name}: no migrations/env.py"
