"""Search terms for Japanese names and addresses: written differently, found the same."""

from __future__ import annotations

from datetime import date

import pytest

from kyosei_intake.search_terms import (
    exact_terms,
    household_terms,
    member_terms,
    normalise_address,
    normalise_kana,
    normalise_name,
    query_terms,
)


@pytest.mark.parametrize("written", ["山田 花子", "山田　花子", "山田花子", " 山田・花子 "])
def test_names_ignore_spacing_and_separators(written: str) -> None:
    assert normalise_name(written) == "山田花子"


@pytest.mark.parametrize("written", ["ヤマダ ハナコ", "ﾔﾏﾀﾞ ﾊﾅｺ", "やまだ　はなこ", "ヤマダハナコ"])
def test_kana_ignores_width_and_script(written: str) -> None:
    assert normalise_kana(written) == "やまだはなこ"


def test_latin_names_ignore_case_and_width() -> None:
    assert normalise_name("NGUYEN Van An") == normalise_name("Ｎｇｕｙｅｎ ｖａｎ ａｎ")


@pytest.mark.parametrize(
    "written",
    ["松戸市本町1丁目2番3号", "松戸市 本町１－２－３", "松戸市本町1-2-3", "松戸市本町1の2の3"],
)
def test_addresses_ignore_block_notation_and_width(written: str) -> None:
    assert normalise_address(written) == "松戸市本町1-2-3"


def test_a_partial_query_is_a_subset_of_the_record_terms() -> None:
    record = member_terms("山田 花子", "やまだ はなこ", date(1944, 5, 1))
    assert query_terms("name", "花子") <= record
    assert query_terms("name", "山田") <= record
    assert query_terms("name", "山") <= record, "one character matches by itself"
    assert query_terms("kana", "ハナコ") <= record
    assert not query_terms("name", "田中") <= record
    assert exact_terms(birth_date=date(1944, 5, 1))["birth_date"] in record


def test_terms_are_per_field() -> None:
    # The same text as a name and as an address gives different terms.
    assert not member_terms("本町", None, None) & household_terms("本町", None)


def test_phone_numbers_keep_only_digits() -> None:
    assert household_terms(None, "047-123-4567") == household_terms(
        None, "０４７（１２３）４５６７"
    )
