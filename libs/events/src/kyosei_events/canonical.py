"""Canonical bytes: the one serialisation that hashes and signatures are computed over."""

from __future__ import annotations

import json
from typing import Any


def canonical_bytes(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys, no insignificant whitespace, non-ASCII kept as is.

    Japanese text (full-width, kana, emoji) is stored byte for byte; the same value
    always gives the same bytes, so a hash over them detects any edit.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical_text(value: Any) -> str:
    return canonical_bytes(value).decode("utf-8")
