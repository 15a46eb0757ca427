"""`make new-service` on a copy of this repository: the new service is installed,
passes `make lint` and its own tests, and the deploy and schema contract tests still
pass, with no file outside its folder edited by hand (only generated ones change).

Uses this checkout's uv (.tools/bin/uv, from `make`) and its cache, so it runs
without reaching the package index when the cache holds the locked packages.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".tools" / "bin" / "uv"
NAME = "pilot"
# What the scaffold's generators rewrite outside services/pilot (nothing else may change).
GENERATED = {
    "uv.lock",
    "docker-compose.yml",
    "deploy/README.md",
    "deploy/k8s/base/kustomization.yaml",
    "deploy/k8s/base/topics.yaml",
    "deploy/k8s/base/services/pilot/kustomization.yaml",
    "deploy/k8s/overlays/example/kustomization.yaml",
    "deploy/k8s/components/strimzi/kustomization.yaml",
    "deploy/k8s/components/strimzi/topics.yaml",
    "deploy/k8s/components/strimzi/users.yaml",
    "deploy/k8s/overlays/strimzi-example/kustomization.yaml",
    "libs/events/schemas/asyncapi.json",
    "libs/events/schemas/PilotNoteRecorded.v1.json",
}


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{output[-6000:]}"
    return output


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """This working tree as git sees it (tracked and new files, nothing ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    target = tmp_path / "kyosei"
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # listed but deleted in the working tree: leave it out
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_a_new_service_lives_in_its_own_folder(copy: Path) -> None:
    if not UV.is_file():
        pytest.fail(f"{UV} is missing: run the tests through `make test`")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {"UV_PYTHON_DOWNLOADS": "never", "UV_OFFLINE": "1", "UV_LINK_MODE": "hardlink"}
    make = ["make", f"UV={UV}"]
    run(["git", "init", "-q"], copy, env)
    run(["git", "add", "-A"], copy, env)  # the baseline the scaffold is compared with

    run([*make, "new-service", f"NAME={NAME}", "TITLE=試行"], copy, env)

    modified = run(["git", "diff", "--name-only"], copy, env)
    added = run(["git", "ls-files", "--others", "--exclude-standard"], copy, env)
    changed = set(modified.splitlines()) | set(added.splitlines())
    own = {path for path in changed if path.startswith(f"services/{NAME}/")}
    assert {
        f"services/{NAME}/pyproject.toml",
        f"services/{NAME}/migrations/env.py",
        f"services/{NAME}/migrations/versions/0001_initial.py",
        f"services/{NAME}/src/kyosei_{NAME}/app.py",
        f"services/{NAME}/src/kyosei_{NAME}/settings.py",
        f"services/{NAME}/tests/test_{NAME}.py",
    } <= own
    assert changed - own == GENERATED, (
        f"outside services/{NAME}: {sorted(changed - own)}; expected only {sorted(GENERATED)}"
    )

    python = str(copy / ".venv" / "bin" / "python")
    pytest_ = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    assert NAME in run([python, "-m", "kyosei_platform.cli", "services"], copy, env)
    run([*make, "lint"], copy, env)
    own_tests = run([*pytest_, f"services/{NAME}"], copy, env)
    passed = re.search(r"(\d+) passed", own_tests)
    assert passed and int(passed[1]) >= 5, own_tests
    assert not re.search(r"skipped|failed|error", own_tests.splitlines()[-1]), own_tests
    run([*pytest_, "tests/contract", "tests/unit/test_service_registry.py"], copy, env)
