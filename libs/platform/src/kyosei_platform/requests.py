"""What a request body may contain, the same in every service.

- :class:`RequestModel` is the base of every request body: a field it does not know
  (a typo such as ``sumary``) is refused with 422 naming that field, never dropped.
- Text has a maximum length: :data:`Name` and :data:`ShortText` 200 characters,
  :data:`Text` and :data:`Note` 20,000.
- :data:`Name` and :data:`Text` refuse a value of only blanks (spaces, tabs, the
  ideographic space U+3000): a name of nothing is no name. Values are kept as sent,
  byte for byte; nothing is trimmed.
- :data:`UniqueList` collapses repeated values, keeping the order they were first
  seen in; every list field also has a ``max_length`` of its own.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

NAME_MAX = 200
TEXT_MAX = 20_000

T = TypeVar("T")


class RequestModel(BaseModel):
    """The base of every request body: unknown fields are refused (422 naming them)."""

    model_config = ConfigDict(extra="forbid")


def not_blank(value: str) -> str:
    """Refuse a value made only of whitespace (``str.isspace`` covers U+3000)."""
    if value.isspace():
        raise PydanticCustomError("blank", "must not be blank (only spaces)")
    return value


def unique(values: list[Any]) -> list[Any]:
    """The values without repeats, in the order first seen."""
    return list(dict.fromkeys(values))


Name = Annotated[
    str,
    Field(min_length=1, max_length=NAME_MAX),
    AfterValidator(not_blank),
]
"""A person's or a place's name: 1-200 characters, not only blanks."""

ShortText = Annotated[str, Field(max_length=NAME_MAX)]
"""A short value such as an address, a contact or a location: up to 200 characters."""

Text = Annotated[
    str,
    Field(min_length=1, max_length=TEXT_MAX),
    AfterValidator(not_blank),
]
"""Required free text (a summary, a reason): 1-20,000 characters, not only blanks."""

Note = Annotated[str | None, Field(None, max_length=TEXT_MAX, description="free text (personal)")]
"""Optional free text: up to 20,000 characters."""

UniqueList = Annotated[list[T], AfterValidator(unique)]
"""A list whose repeated values are collapsed (first-seen order kept); give each field
its own ``max_length``."""
