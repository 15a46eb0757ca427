"""python -m kyosei_platform.scaffold NAME [--title TITLE] [--order N]

Renders services/NAME from the template. ``make new-service NAME=...`` runs this and
then the generators (lock, deploy files, schemas); run those yourself if you call it
directly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..deploy import ROOT
from . import ScaffoldError, render


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kyosei_platform.scaffold")
    parser.add_argument("name", help="the service's name: lowercase letters and digits")
    parser.add_argument("--title", help="what it is, as people call it (e.g. 参加支援)")
    parser.add_argument("--order", type=int, help="its place among the services (default: last)")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the repository (default: this one)"
    )
    args = parser.parse_args(argv)
    try:
        written = render(args.name, args.root, title=args.title, order=args.order)
    except ScaffoldError as exc:
        sys.exit(f"new service: {exc}")
    for path in written:
        print(path.relative_to(args.root), file=sys.stderr)


if __name__ == "__main__":
    main()
