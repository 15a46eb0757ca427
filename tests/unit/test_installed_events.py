"""A service package may declare event types of its own (entry point `kyosei.events`):
they join the catalogue the first time it is asked, so they are published and decoded
like the shared ones."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from kyosei_events import model

MODULE = '''
from typing import ClassVar

from kyosei_events.model import DomainEvent, event


@event
class TrialNoteRecorded(DomainEvent):
    """メモ記録: a note was recorded (a type that exists only in this test)."""

    event_type: ClassVar[str] = "TrialNoteRecorded"
    schema_version: ClassVar[int] = 1
    label_ja: ClassVar[str] = "メモ記録"
    producer: ClassVar[str] = "trial"

    note_id: str
'''


@pytest.fixture
def trial_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "kyosei_trial_events.py").write_text(MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(model, "_REGISTRY", dict(model._REGISTRY))
    monkeypatch.setattr(model, "_installed_loaded", False)
    declared = [EntryPoint("trial", "kyosei_trial_events", "kyosei.events")]
    monkeypatch.setattr(model, "entry_points", lambda group: declared)
    yield
    sys.modules.pop("kyosei_trial_events", None)


@pytest.mark.usefixtures("trial_package")
def test_an_installed_service_event_type_is_found_by_name() -> None:
    cls = model.event_class("TrialNoteRecorded")
    assert cls.producer == "trial"
    assert cls.__module__ == "kyosei_trial_events"
    assert model.installed_event_modules() == {"trial": "kyosei_trial_events"}


@pytest.mark.usefixtures("trial_package")
def test_the_catalogue_lists_installed_service_event_types() -> None:
    assert "TrialNoteRecorded" in model.catalogue()
    assert "ConsultationReceived" in model.catalogue()
    assert model.upcast("TrialNoteRecorded", 1, {"note_id": "n"}) == {"note_id": "n"}


def test_an_unknown_type_is_still_unknown() -> None:
    with pytest.raises(model.UnknownEventType, match="NothingRecorded"):
        model.event_class("NothingRecorded")
