"""The published AsyncAPI document parses with the official AsyncAPI parser
(``@asyncapi/parser``, pinned in ``tests/contract/asyncapi/package-lock.json``).

The parser is installed with ``npm ci`` into ``.cache/asyncapi-parser-<lock hash>/``
(or ``$KYOSEI_NODE_CACHE``) the first time; later runs reuse it. Without node the test
is skipped; with node, a document the parser rejects fails it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kyosei_events.schemas import SCHEMA_DIR

HERE = Path(__file__).resolve().parent / "asyncapi"
REPO = Path(__file__).resolve().parents[2]
FILES = ("package.json", "package-lock.json", "check.mjs")


def parser_dir() -> Path:
    lock = (HERE / "package-lock.json").read_bytes()
    root = Path(os.environ.get("KYOSEI_NODE_CACHE", REPO / ".cache"))
    target = root / f"asyncapi-parser-{hashlib.sha256(lock).hexdigest()[:16]}"
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(HERE / name, target / name)
    if not (target / "node_modules" / "@asyncapi" / "parser").is_dir():
        npm = shutil.which("npm")
        assert npm, "node is installed but npm is not: cannot install @asyncapi/parser"
        done = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return target


def test_the_asyncapi_document_parses_with_the_official_parser() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the official AsyncAPI parser cannot run")
    cwd = parser_dir()
    done = subprocess.run(
        [node, "check.mjs", str(SCHEMA_DIR / "asyncapi.json")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    errors = [d for d in lines if d.get("severity") == "error"]
    assert done.returncode == 0 and not errors, (
        f"@asyncapi/parser rejects libs/events/schemas/asyncapi.json "
        f"({len(errors)} errors):\n"
        + "\n".join(f"{'.'.join(map(str, d['path']))}: {d['message']}" for d in errors)
        + (f"\n{done.stderr}" if done.stderr else "")
    )
