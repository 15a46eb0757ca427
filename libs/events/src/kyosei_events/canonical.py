"""Canonical bytes: the one serialisation that hashes and signatures are computed over."""

from __future__ import annotations

import json
from typing import Any


def canonical_bytes(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys, no insignificant whitespace, non-ASCII kept as is.

    Japanese text (full-width, kana, emoji) is stored byte for byte; the same value
    always gives the same bytes, so a hash over them detects any edit.

    For every value kyosei hashes these bytes are RFC 8785 (JCS): objects with ASCII
    keys holding strings, integers within +-(2**53 - 1), booleans, null and lists
    (tests/unit/test_canonical_jcs.py checks them against an independent JCS
    implementation), so an agency recomputes a chain hash with any JCS library. Not JCS,
    and never hashed: floats, larger integers and non-BMP keys (JCS sorts keys by UTF-16
    code units, this by code points).
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical_text(value: Any) -> str:
    return canonical_bytes(value).decode("utf-8")
