"""Field paths are written one way, whatever part of the request they are in."""

from __future__ import annotations

import pytest

from kyosei_platform.errors import field_path, header_name


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("body", "members", 0, "name"), "members[0].name"),
        (("body", "concerns", 2), "concerns[2]"),
        (("body", "terms", "agencies", 1), "terms.agencies[1]"),
        (("body",), "body"),
        (("query", "limit"), "limit"),
        (("path", "household_id"), "household_id"),
        (("header", "if-match"), "If-Match"),
        (("header", "idempotency_key"), "Idempotency-Key"),
        (("summary",), "summary"),  # a command's own field (invalid(...))
    ],
)
def test_field_paths(loc: tuple[str | int, ...], path: str) -> None:
    assert field_path(loc) == path


def test_header_names_are_written_as_http_writes_them() -> None:
    assert header_name("x-correlation-id") == "X-Correlation-Id"
