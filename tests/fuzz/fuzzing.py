"""Fuzzing every service's HTTP API with schemathesis, over real HTTP.

Every operation of each service's OpenAPI document gets requests generated from the
document (valid ones, and invalid ones: wrong types, missing fields, odd strings), sent
with a valid bearer token to the service running under uvicorn with its database and
the Kafka broker, as in production. Each answer is checked for:

- a server error (any 5xx);
- an undocumented status (one the operation does not declare);
- a body that does not match the schema declared for its status, or a content type
  other than the declared one.

`make test` runs a bounded run (tests/fuzz/test_fuzz.py); `make fuzz` a longer one that
prints the figures per service (tests/fuzz/run.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kyosei_platform.auth import Role, issue_token
from tests.e2e.harness import AUTH_SECRET, System, eventually, json_of, running_system

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Figures:
    """What one service's fuzz run found."""

    service: str
    cases: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    undocumented_statuses: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.server_errors or self.schema_violations or self.undocumented_statuses)

    def line(self) -> str:
        seen = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.service:<14} cases {self.cases:>6}   5xx {self.server_errors:>3}   "
            f"schema violations {self.schema_violations:>3}   "
            f"undocumented statuses {self.undocumented_statuses:>3}   ({seen})"
        )


def _record(figures: Figures, what: str, failure: BaseException) -> None:
    kind = type(failure).__name__
    if kind == "ServerError":
        figures.server_errors += 1
    elif kind == "UndefinedStatusCode":
        figures.undocumented_statuses += 1
    else:
        figures.schema_violations += 1
    if len(figures.problems) < 50:
        message = str(failure).strip().splitlines()
        figures.problems.append(f"{what}: {kind}: {' '.join(message[:6])[:600]}")


@dataclass
class Call:
    """Send one generated case and check its answer, counting what is wrong."""

    figures: Figures
    what: str
    url: str
    session: requests.Session
    headers: dict[str, str]

    def __call__(self, case: Any) -> None:
        response = case.call(
            base_url=self.url, session=self.session, headers=self.headers, timeout=30
        )
        self.figures.cases += 1
        self.figures.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=self.headers)
        except BaseExceptionGroup as group:
            for failure in group.exceptions:
                if response.status_code >= 500 and type(failure).__name__ == (
                    "UndefinedStatusCode"
                ):
                    continue  # counted once, as a server error
                _record(self.figures, self.what, failure)
        except AssertionError as failure:
            _record(self.figures, self.what, failure)


def _as_test(call: Call) -> Callable[[Any], None]:
    def test(case: Any) -> None:
        call(case)

    return test


def fuzz_service(
    name: str,
    url: str,
    token: str,
    *,
    max_examples: int,
    modes: tuple[GenerationMode, ...],
    ids: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Figures:
    """Fuzz every operation of the service at ``url``: ``max_examples`` cases per
    operation and generation mode, with generated path ids; and again with the path
    naming records that exist (``ids``: path parameter -> id), so that the requests
    reach the commands rather than stop at 404."""
    document = httpx.get(f"{url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    figures = Figures(name)
    headers = {"Authorization": f"Bearer {token}"}
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        names = [p.name for p in operation.path_parameters]
        passes: list[tuple[GenerationMode, dict[str, str] | None]] = [(m, None) for m in modes]
        if names and ids and all(n in ids for n in names):
            passes += [(m, {n: ids[n] for n in names}) for m in modes]
        for mode, path_parameters in passes:
            on = " on existing records" if path_parameters else ""
            what = f"{operation.method.upper()} {operation.path} ({mode.value}{on})"
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
            call = Call(figures, what, url, session, headers)
            run = settings(
                max_examples=max_examples,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(given(case=strategy)(_as_test(call)))
            # Unsatisfiable: nothing to make invalid (an operation without parameters).
            with contextlib.suppress(Unsatisfiable):
                run()
            if progress is not None:
                progress(f"{name} {what}: {figures.cases} cases so far")
    return figures


@dataclass
class Served:
    urls: dict[str, str]
    tokens: dict[str, str]
    ids: dict[str, str]  # path parameter -> an existing record's id


AGENCY = "agency-fuzz"


async def _seed(system: System) -> dict[str, str]:
    """A household with two members and a consent, a consultation referred to another
    agency, an escalated one (and its coordination case), an outreach case."""
    intake = system.client("intake", AGENCY, "fuzz-staff", Role.STAFF)
    household = json_of(
        await intake.post(
            "/households",
            json={
                "members": [{"name": "共生 一郎", "birth_date": "1950-04-01"}, {"name": "共生 花"}]
            },
        ),
        201,
    )
    hid = household["household_id"]
    member = household["members"][0]["member_id"]
    consent = json_of(
        await intake.post(
            f"/households/{hid}/consents",
            json={"member_id": member, "agencies": ["agency-b"], "purposes": ["referral"]},
        ),
        201,
    )
    consultation = {
        "window": "welfare_general",
        "channel": "visit",
        "concerns": ["isolation", "care"],
        "summary": "話し相手がいない",
        "household_id": hid,
    }
    referred = json_of(await intake.post("/consultations", json=consultation), 201)
    referred = json_of(
        await intake.post(
            f"/consultations/{referred['consultation_id']}/referrals",
            json={"to_agency": "agency-b"},
        ),
        201,
    )
    escalated = json_of(
        await intake.post("/consultations", json={**consultation, "complex": True}), 201
    )
    outreach = json_of(
        await intake.post("/outreach", json={"concerns": ["withdrawal"], "reason": "見守り"}), 201
    )
    ids = {
        "household_id": hid,
        "consent_id": consent["consent_id"],
        "consultation_id": escalated["consultation_id"],
        "referral_id": referred["referrals"][0]["referral_id"],
        "outreach_id": outreach["outreach_id"],
    }
    if "coordination" in system.services:
        cases = system.client("coordination", AGENCY, "fuzz-staff", Role.STAFF)

        async def case() -> str | None:
            found = json_of(
                await cases.get("/cases", params={"consultation_id": ids["consultation_id"]}), 200
            )
            return found[0]["case_id"] if found else None

        ids["case_id"] = await eventually(case, within=30)
    return ids


@contextmanager
def served(tmp: Path, bootstrap: list[str]) -> Iterator[Served]:
    """Every installed service on SQLite, serving HTTP on a free port, in a thread of
    its own (schemathesis sends its requests synchronously)."""
    ready = threading.Event()
    stop: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    urls: dict[str, str] = {}
    ids: dict[str, str] = {}
    failure: list[BaseException] = []

    async def serve() -> None:
        nonlocal stop, loop
        stop, loop = asyncio.Event(), asyncio.get_running_loop()
        try:
            async with running_system("sqlite", tmp, "", bootstrap) as system:
                urls.update({n: s.url for n, s in system.services.items()})
                ids.update(await _seed(system))
                ready.set()
                await stop.wait()
        except BaseException as exc:
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(120)
    if failure:
        raise failure[0]
    tokens = {"staff": issue_token(AUTH_SECRET, AGENCY, "fuzz-staff", Role.STAFF)}
    try:
        yield Served(urls, tokens, ids)
    finally:
        assert loop is not None and stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
