"""A bounded schemathesis run in the test suite: every operation of every service, a
few generated requests each (valid and invalid, on generated ids and on records that
exist), with no 5xx, no undocumented status and no answer that breaks its schema.
`make fuzz` runs the same with many more cases and prints the figures."""

from __future__ import annotations

import warnings
from pathlib import Path

from hypothesis.errors import HypothesisDeprecationWarning
from schemathesis import GenerationMode

from tests.fuzz.fuzzing import fuzz_service, served

EXAMPLES = 2


def test_no_service_answers_outside_its_contract(
    tmp_path: Path, kafka_bootstrap: list[str]
) -> None:
    warnings.simplefilter("ignore", HypothesisDeprecationWarning)
    with served(tmp_path, kafka_bootstrap) as system:
        results = [
            fuzz_service(
                name,
                url,
                system.tokens["staff"],
                max_examples=EXAMPLES,
                modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
                ids=system.ids,
            )
            for name, url in system.urls.items()
        ]
    assert {f.service for f in results} >= {"intake", "coordination"}
    for figures in results:
        assert figures.cases > 0, figures.line()
        assert figures.clean, "\n".join([figures.line(), *figures.problems])
