"""The FastStream the backbone is written against (0.7: its KafkaBroker publish API,
Prometheus middleware, no_confirm futures) is the one that is installed and locked."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def test_faststream_is_pinned_to_the_minor_version_in_use() -> None:
    project = tomllib.loads((ROOT / "libs/events/pyproject.toml").read_text(encoding="utf-8"))
    (faststream,) = [
        Requirement(d) for d in project["project"]["dependencies"] if d.startswith("faststream")
    ]
    assert faststream.extras == {"kafka"}
    assert str(faststream.specifier) == "<0.8,>=0.7"
    assert faststream.specifier.contains(version("faststream"))
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    (locked,) = [p["version"] for p in lock["package"] if p["name"] == "faststream"]
    assert faststream.specifier.contains(locked)
