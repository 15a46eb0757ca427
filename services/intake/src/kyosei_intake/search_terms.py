"""Search terms for people and places, normalised for Japanese.

Names are found whatever the width (ｶﾀｶﾅ / カタカナ), script of kana (ひらがな /
カタカナ), spacing (山田 花子 / 山田　花子 / 山田花子) or case (NGUYEN / Nguyen).
Addresses are found whatever the width, spacing and the way block numbers are
written (1丁目2番3号 / 1-2-3 / １－２－３). Terms are hashed into blind indexes
before they are stored (KeyVault.blind_index), so read models hold no personal data.

Terms are prefixed with their field, so the same text in two fields gives two
different tokens. Partial matches use character n-grams: a query matches a record
when every n-gram of the query is among the record's.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

_SPACES = re.compile(r"[\s\u3000・･,，.。、]+")
_DASHES = re.compile(r"[‐‑‒–—―−ｰ－ー-]+")
_BLOCKS = re.compile(r"(?<=\d)(丁目|番地|番|号|の)")
_HIRAGANA = str.maketrans({c: c - 0x60 for c in range(ord("ァ"), ord("ヶ") + 1)})


def normalise_name(text: str) -> str:
    """NFKC, case-folded, without spaces or separators."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text)).casefold()


def normalise_kana(text: str) -> str:
    """As a name, with katakana turned into hiragana."""
    return normalise_name(text).translate(_HIRAGANA)


def normalise_address(text: str) -> str:
    """NFKC, no spaces, block numbers as 1-2-3 (丁目・番地・番・号 become dashes)."""
    s = _SPACES.sub("", unicodedata.normalize("NFKC", text))
    s = _BLOCKS.sub("-", s)
    s = _DASHES.sub("-", s)
    return s.strip("-").casefold()


def normalise_phone(text: str) -> str:
    return re.sub(r"\D", "", unicodedata.normalize("NFKC", text))


def grams(text: str, n: int) -> set[str]:
    if len(text) < n:
        return set()
    return {text[i : i + n] for i in range(len(text) - n + 1)}


def member_terms(name: str | None, kana: str | None, birth_date: date | None) -> set[str]:
    """Every term under which a member can be found."""
    terms: set[str] = set()
    for field, value in (
        ("name", normalise_name(name) if name else ""),
        ("kana", normalise_kana(kana) if kana else ""),
    ):
        if value:
            terms.add(f"{field}={value}")
            terms |= {f"{field}~{g}" for g in grams(value, 1) | grams(value, 2)}
    if birth_date is not None:
        terms.add(f"birth_date={birth_date.isoformat()}")
    return terms


def household_terms(address: str | None, phone: str | None) -> set[str]:
    """Every term under which a household can be found by its address or phone."""
    terms: set[str] = set()
    if address and (a := normalise_address(address)):
        terms.add(f"address={a}")
        terms |= {f"address~{g}" for g in grams(a, 2) or {a}}
    if phone and (p := normalise_phone(phone)):
        terms.add(f"phone={p}")
    return terms


def query_terms(field: str, text: str) -> set[str]:
    """The terms a record must all have to match a partial query on ``field``.

    One character matches by itself; longer queries match by their bigrams.
    """
    value = {
        "name": normalise_name,
        "kana": normalise_kana,
        "address": normalise_address,
    }[field](text)
    if not value:
        return set()
    return {f"{field}~{g}" for g in grams(value, 2) or {value}}


def exact_terms(
    *,
    name: str | None = None,
    kana: str | None = None,
    birth_date: date | None = None,
    address: str | None = None,
    phone: str | None = None,
) -> dict[str, str]:
    """Whole-value terms used by the duplicate check, by field."""
    out: dict[str, str] = {}
    if name and (v := normalise_name(name)):
        out["name"] = f"name={v}"
    if kana and (v := normalise_kana(kana)):
        out["kana"] = f"kana={v}"
    if birth_date is not None:
        out["birth_date"] = f"birth_date={birth_date.isoformat()}"
    if address and (v := normalise_address(address)):
        out["address"] = f"address={v}"
    if phone and (v := normalise_phone(phone)):
        out["phone"] = f"phone={v}"
    return out
