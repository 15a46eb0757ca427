"""The canonical bytes that every chain hash covers are RFC 8785 (JCS) for everything
kyosei hashes, so an agency recomputes a ``ce_hash`` with any JCS library.

The chain record (codec.record_of) holds only strings and integers under fixed ASCII
keys; the metadata and payload inside it are canonical text of objects with ASCII keys
and strings, integers, booleans, null, lists and such objects as values (no event field
is a float or a free-keyed mapping). Python's ``json.dumps`` (sorted keys, compact,
``ensure_ascii=False``) and JCS agree on all of these: strings escape only ``"``, ``\\``
and U+0000..U+001F (``\\b \\t \\n \\f \\r``, others ``\\u00xx`` in lowercase hex), and
keep U+007F, U+2028, U+2029 and everything else as UTF-8. They differ only where kyosei
never goes: floats, integers beyond 2**53, and the order of non-BMP keys (JCS sorts by
UTF-16 code units).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import rfc8785

from kyosei_events.canonical import canonical_bytes, canonical_text
from kyosei_events.codec import record_of

MAX_SAFE = 2**53 - 1
ALPHABETS = [
    "相談支援世帯包括的つなぎ本人同意ｶﾀｶﾅ全角ＡＢＣ　、。「」〜",  # Japanese, full-width
    "😀👨‍👩‍👧🏠🙏𠮷𩸽",  # emoji (surrogate pairs in UTF-16), ZWJ, non-BMP kanji
    "".join(map(chr, range(0x20))) + "\x7f\u0080\u009f",  # control characters
    "\u2028\u2029\u200b\u200d\ufeff\ufffd\ue000\uffff",  # separators, BOM, private use
    "\"\\/<>&'",  # characters JSON may escape
    "abcXYZ019 -_:.",
]


def text(rng: random.Random) -> str:
    return "".join(rng.choice(rng.choice(ALPHABETS)) for _ in range(rng.randint(0, 24)))


def integer(rng: random.Random) -> int:
    return rng.choice([0, 1, -1, MAX_SAFE, -MAX_SAFE, rng.randint(-MAX_SAFE, MAX_SAFE)])


def payload(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """An object as an event payload is: ASCII field names, JSON scalars but floats."""
    out: dict[str, Any] = {}
    for i in range(rng.randint(0, 6)):
        kind = rng.randrange(7 if depth < 2 else 5)
        value: Any = [
            lambda: text(rng),
            lambda: integer(rng),
            lambda: rng.choice([True, False]),
            lambda: None,
            lambda: [text(rng) for _ in range(rng.randint(0, 3))],
            lambda: payload(rng, depth + 1),
            lambda: [payload(rng, depth + 1) for _ in range(rng.randint(0, 2))],
        ][kind]()
        out[f"{rng.choice(['field', 'household_id', 'a', 'Z', '_x'])}_{i}"] = value
    return out


def record(rng: random.Random) -> dict[str, Any]:
    return record_of(
        stream_id=text(rng),
        version=rng.choice([1, 2, rng.randint(1, MAX_SAFE)]),
        event_id=text(rng),
        event_type=text(rng),
        schema_version=rng.randint(1, 99),
        recorded_at=text(rng),
        subject=text(rng),
        metadata=canonical_text(payload(rng)),
        payload=canonical_text(payload(rng)),
    )


@pytest.mark.parametrize("seed", range(20))
def test_the_chain_record_is_jcs(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        rec = record(rng)
        assert canonical_bytes(rec) == rfc8785.dumps(rec)


@pytest.mark.parametrize("seed", range(10))
def test_the_metadata_and_payload_inside_it_are_jcs(seed: int) -> None:
    rng = random.Random(1000 + seed)
    for _ in range(100):
        value = payload(rng)
        assert canonical_bytes(value) == rfc8785.dumps(value)


def test_every_character_escape_agrees() -> None:
    every = "".join(chr(c) for c in range(0x3000)) + "".join(
        chr(c) for c in range(0xE000, 0x110000, 97)
    )
    value = {"s": every, "n": MAX_SAFE}
    assert canonical_bytes(value) == rfc8785.dumps(value)
    assert b"\\u2028" not in canonical_bytes(value)
    assert canonical_bytes({"s": "\x00\x1f\x7f\u2028"}) == b'{"s":"\\u0000\\u001f\x7f\xe2\x80\xa8"}'


def test_where_they_would_differ_kyosei_does_not_go() -> None:
    """Floats, unsafe integers and mixed non-BMP keys: JCS differs (or refuses), and
    no event, metadata or chain record holds one."""
    assert canonical_bytes({"f": 1.0}) != rfc8785.dumps({"f": 1.0})
    with pytest.raises(rfc8785.IntegerDomainError):
        rfc8785.dumps({"n": 2**53})
    keys = {"\uffff": 1, "😀": 2}
    assert canonical_bytes(keys) != rfc8785.dumps(keys)
