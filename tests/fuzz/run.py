"""`make fuzz`: a longer schemathesis run against every service, printing the figures
(cases run, 5xx, schema violations, undocumented statuses) per service.

    python -m tests.fuzz.run [--examples N]

Exits 1 if any service answered a 5xx, an undocumented status or a body that breaks
its declared schema; the first problems found are listed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

from hypothesis.errors import HypothesisDeprecationWarning
from schemathesis import GenerationMode

from kyosei_platform.embedded import EmbeddedKafka
from kyosei_platform.logging import configure
from tests.fuzz.fuzzing import fuzz_service, served


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--examples", type=int, default=200, help="cases per operation and mode (default 200)"
    )
    args = parser.parse_args()
    configure(level="warning", fmt="console")
    warnings.simplefilter("ignore", HypothesisDeprecationWarning)
    broker = EmbeddedKafka()
    started = time.monotonic()
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp, served(Path(tmp), broker.bootstrap) as system:
            for name, url in system.urls.items():
                results.append(
                    fuzz_service(
                        name,
                        url,
                        system.tokens["staff"],
                        max_examples=args.examples,
                        modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
                        ids=system.ids,
                        progress=lambda line: print(line, file=sys.stderr, flush=True),
                    )
                )
    finally:
        broker.close()
    print(
        f"\nfuzz: {args.examples} cases per operation and mode, {time.monotonic() - started:.0f} s"
    )
    for figures in results:
        print(figures.line())
        for problem in figures.problems:
            print(f"    {problem}")
    total = sum(f.cases for f in results)
    print(f"total cases {total}")
    return 0 if all(f.clean for f in results) else 1


if __name__ == "__main__":
    sys.exit(main())
