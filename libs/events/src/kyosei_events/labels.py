"""Enums whose every value carries the Japanese label that users read."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


class LabelledEnum(StrEnum):
    """A string enum with a Japanese label per value, published in the JSON Schema."""

    def __new__(cls, value: str, label_ja: str) -> LabelledEnum:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label_ja = label_ja
        return member

    label_ja: str

    @classmethod
    def of(cls, value: str) -> Self:
        """The member with this value (``Concern.of("care")``); ValueError if none."""
        for member in cls:
            if member.value == value:
                return member
        raise ValueError(f"{value!r} is not a valid {cls.__name__}")

    @classmethod
    def labels_ja(cls) -> dict[str, str]:
        return {m.value: m.label_ja for m in cls}

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema: dict[str, Any] = handler(core_schema)
        schema = handler.resolve_ref_schema(schema)
        schema["x-labels-ja"] = cls.labels_ja()
        return schema
