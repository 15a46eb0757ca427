"""The scaffold renders the template into services/<name>/ and refuses names that
could not name a package, a compose service or an environment variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyosei_platform.scaffold import PLACEHOLDER, TEMPLATE, ScaffoldError, render


def test_every_placeholder_is_filled_in_paths_and_text(tmp_path: Path) -> None:
    (tmp_path / "services").mkdir()
    written = render("pilot", tmp_path, title="試行", order=7)
    assert len(written) == len(list(TEMPLATE.rglob("*.tmpl")))
    names = {str(p.relative_to(tmp_path / "services" / "pilot")) for p in written}
    assert {
        "pyproject.toml",
        "migrations/env.py",
        "migrations/script.py.mako",
        "migrations/versions/0001_initial.py",
        "src/kyosei_pilot/__init__.py",
        "src/kyosei_pilot/domain/__init__.py",
        "src/kyosei_pilot/commands.py",
        "src/kyosei_pilot/policies.py",
        "src/kyosei_pilot/api/__init__.py",
        "src/kyosei_pilot/views.py",
        "src/kyosei_pilot/projections.py",
        "src/kyosei_pilot/settings.py",
        "src/kyosei_pilot/app.py",
        "tests/test_pilot.py",
    } <= names
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert not PLACEHOLDER.search(text), f"{path}: {PLACEHOLDER.search(text)}"
    app = (tmp_path / "services/pilot/src/kyosei_pilot/app.py").read_text(encoding="utf-8")
    assert 'name="pilot",\n    order=7,\n    title="試行",' in app
    settings = (tmp_path / "services/pilot/src/kyosei_pilot/settings.py").read_text("utf-8")
    assert 'env_prefix="KYOSEI_PILOT_"' in settings and "class PilotSettings(" in settings


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Pilot", "lowercase letters and digits"),
        ("pilot-2", "lowercase letters and digits"),
        ("2pilot", "lowercase letters and digits"),
        ("no", "keyword in YAML or Python"),
        ("import", "keyword in YAML or Python"),
        ("events", "kyosei_events is taken"),
        ("intake", "services/intake exists already"),
    ],
)
def test_names_that_cannot_be_a_service_are_refused(name: str, reason: str) -> None:
    root = Path(__file__).resolve().parents[2]
    with pytest.raises(ScaffoldError, match=reason):
        render(name, root)


def test_a_title_that_would_break_the_generated_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "services").mkdir()
    with pytest.raises(ScaffoldError, match="quotes"):
        render("pilot", tmp_path, title='試行 "beta"')
    assert not (tmp_path / "services" / "pilot").exists()
