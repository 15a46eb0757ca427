"""A new service in one folder: ``services/<name>/`` rendered from ``template/``.

    make new-service NAME=<name> [TITLE=<title>]

renders the template (``python -m kyosei_platform.scaffold NAME``), then runs the
generators that list services: ``uv lock`` and sync, ``make deploy-files`` and
``make schemas``. Nothing else is edited by hand: the platform finds the service by
its entry points.

The template is a folder of files with placeholders, in paths and in text:
``{{name}}`` (the service's name), ``{{Name}}`` (for class names), ``{{NAME}}`` (for
environment variables), ``{{title}}`` and ``{{order}}``. Every template file ends in
``.tmpl``, dropped when rendered, so that the template is neither linted nor imported.
"""

from __future__ import annotations

import keyword
import re
from importlib.util import find_spec
from pathlib import Path

from ..service import NAME, discover

TEMPLATE = Path(__file__).resolve().parent / "template"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
# Names that YAML reads as booleans or null: they could not name a compose service.
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


class ScaffoldError(Exception):
    """A name, title or target that the scaffold refuses, with the reason."""


def placeholders(name: str, title: str, order: int) -> dict[str, str]:
    return {
        "name": name,
        "Name": name.capitalize(),
        "NAME": name.upper(),
        "title": title,
        "order": str(order),
    }


def check_name(name: str, root: Path) -> None:
    if not NAME.fullmatch(name):
        raise ScaffoldError(
            f"{name!r}: a service name is lowercase letters and digits, starting with a letter"
        )
    if name in _YAML_WORDS or keyword.iskeyword(name):
        raise ScaffoldError(f"{name!r} reads as a keyword in YAML or Python; choose another")
    if (root / "services" / name).exists():
        raise ScaffoldError(f"services/{name} exists already")
    if name in discover() or find_spec(f"kyosei_{name}") is not None:
        raise ScaffoldError(f"kyosei_{name} is taken by an installed package")


def render(
    name: str, root: Path, *, title: str | None = None, order: int | None = None
) -> list[Path]:
    """Write ``services/<name>/`` under ``root``; returns the files written."""
    check_name(name, root)
    title = title or name
    if any(c in title for c in '"\\|\n'):
        raise ScaffoldError("a title may not hold quotes, backslashes, '|' or line breaks")
    if order is None:
        order = max((svc.order for svc in discover().values()), default=0) + 1
    values = placeholders(name, title, order)

    def fill(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: values[m[1]], text)

    written = []
    target = root / "services" / name
    for source in sorted(p for p in TEMPLATE.rglob("*") if p.is_file()):
        if source.suffix != ".tmpl":
            continue  # e.g. __pycache__ left by an editor or a tool
        relative = fill(str(source.relative_to(TEMPLATE).with_suffix("")))
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fill(source.read_text(encoding="utf-8")), encoding="utf-8")
        written.append(path)
    return written
