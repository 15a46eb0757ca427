"""Straight after `make dev`, the maintenance commands work on its data folder with
nothing exported: `kyosei dev` runs as a process from a project folder, a household and
a consultation are recorded through its HTTP API, and then `kyosei verify`, `anchor`,
`dlq list` and `rebuild` run as processes from the same folder
in an environment without a single KYOSEI_* variable, and find the dev databases, keys
and broker through the settings files `kyosei dev` wrote (data/<service>.env).
A KYOSEI_* variable that is set still wins over the file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kyosei_platform.auth import Role, issue_token
from kyosei_platform.cli import main

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("KYOSEI_")}


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports that are free on 127.0.0.1."""
    for first in range(18_500, 28_000, 10):
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError("no free ports")


def kyosei(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kyosei_platform.cli", *args],
        cwd=folder,
        env={**CLEAN_ENV, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """`kyosei dev` running from ``tmp_path`` (its data folder: tmp_path/data)."""
    port = free_ports(2)
    process = subprocess.Popen(
        [sys.executable, "-m", "kyosei_platform.cli", "dev", "--port", str(port)],
        cwd=tmp_path,
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.stdout else ""
                raise AssertionError(f"kyosei dev did not start:\n{output}")
            time.sleep(0.2)
        yield tmp_path, port
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_maintenance_commands_find_the_dev_data_with_nothing_exported(
    dev: tuple[Path, int], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, port = dev
    written = (folder / "data" / "intake.env").read_text()
    assert "KYOSEI_DATABASE_URL=" in written and "intake.db" in written
    assert oct((folder / "data" / "intake.env").stat().st_mode & 0o777) == "0o600"

    secrets = json.loads((folder / "data" / "dev-secrets.json").read_text())
    token = issue_token(secrets["auth_secret"], "madoguchi", "staff", Role.STAFF)
    headers = {"Authorization": f"Bearer {token}"}
    intake = f"http://127.0.0.1:{port}"
    registered = httpx.post(
        f"{intake}/households", json={"members": [{"name": "保守 太郎"}]}, headers=headers
    )
    assert registered.status_code == 201, registered.text
    received = httpx.post(
        f"{intake}/consultations",
        json={
            "household_id": registered.json()["household_id"],
            "window": "welfare_general",
            "channel": "visit",
            "concerns": ["isolation"],
            "summary": "話し相手がいない",
        },
        headers=headers,
    )
    assert received.status_code == 201, received.text

    verified = kyosei(folder, "verify", "intake")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intake: 2 streams, 3 events, 0 broken" in verified.stdout, verified.stdout
    anchored = kyosei(folder, "anchor", "intake")
    assert anchored.returncode == 0 and "anchored 2 streams" in anchored.stdout, anchored.stdout
    # The running broker is found too (its address is in the file of this run).
    letters = kyosei(folder, "dlq", "list", "intake")
    assert letters.returncode == 0, letters.stdout + letters.stderr
    rebuilt = kyosei(folder, "rebuild", "intake")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "rebuilt from 3 events" in rebuilt.stdout, rebuilt.stdout
    # The anchor is checked from now on; the same in-process, where the variable that
    # is set wins over the file, and --data names another folder.
    monkeypatch.chdir(folder)
    for name in [k for k in os.environ if k.startswith("KYOSEI_")]:
        monkeypatch.delenv(name)
    assert run_main(["verify", "intake"]) == 0
    assert "holds: 2 streams, 3 events" in capsys.readouterr().out
    monkeypatch.setenv("KYOSEI_DATABASE_URL", f"sqlite+aiosqlite:///{folder / 'other.db'}")
    with pytest.raises(Exception, match="no such table: events"):
        run_main(["verify", "intake"])
    monkeypatch.delenv("KYOSEI_DATABASE_URL")
    monkeypatch.chdir(folder.parent)
    assert run_main(["verify", "intake", "--data", str(folder / "data")]) == 0
    assert "intake: 2 streams, 3 events, 0 broken" in capsys.readouterr().out
    # Nowhere to find settings: the refusal says where they come from.
    with pytest.raises(SystemExit, match="--data"):
        run_main(["verify", "intake"])


def run_main(argv: list[str]) -> int | str | None:
    """`kyosei …` in this process: its exit status."""
    try:
        main(argv)
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            raise
        return exit_.code
    return 0
