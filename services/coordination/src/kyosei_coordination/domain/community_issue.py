"""地域課題 (community issues): an issue a coordinator saw across cases, raised to
community work de-identified.

What travels is only the area, the theme, the concerns, the description and how many
cases it was seen in, banded ("1-4", "5-9", "10+"). The text is checked before it is
recorded: it must not contain any id of the cases cited, of their households, members
or consultations, nor anything that looks like a phone number, a postcode or a date of
birth. Personal names cannot be checked here: the household directory holds no names
(they stay sealed in intake's store), so the coordinator must leave them out."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.coordination import CommunityIssueRaised
from kyosei_events.model import DomainEvent
from kyosei_platform.application import invalid, wrong_state


@dataclass
class CommunityIssue:
    issue_id: str
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    def evolve(self, event: DomainEvent) -> None:
        self.version += 1


def band(count: int) -> str:
    """How many cases, as the event may say it."""
    return "1-4" if count < 5 else "5-9" if count < 10 else "10+"


_DASH = r"[-\s()]?"
# What looks personal, in text normalised with NFKC (full-width digits and dashes too).
_LOOKS_PERSONAL: list[tuple[str, str, re.Pattern[str]]] = [
    (
        "a phone number",
        "電話番号",
        re.compile(rf"(?<!\d)(?:0\d{{1,4}}{_DASH}\d{{1,4}}{_DASH}\d{{3,4}}|0\d{{9,10}})(?!\d)"),
    ),
    ("a postcode", "郵便番号", re.compile(r"〒\s?\d{3}-?\d{4}|(?<![\d-])\d{3}-\d{4}(?![\d-])")),
    (
        "a date (of birth?)",
        "日付（生年月日）",
        re.compile(
            r"(?<!\d)(?:1[89]|20)\d{2}\s?[-/.年]\s?\d{1,2}\s?[-/.月]\s?\d{1,2}(?!\d)"
            r"|(?:明治|大正|昭和|平成|令和|[MTSHR])\s?\d{1,2}\s?[年.]\s?\d{1,2}\s?[月.]\s?\d{1,2}"
        ),
    ),
]


def check_text(field: str, text: str, ids: set[str]) -> None:
    """422 naming ``field`` when ``text`` contains one of ``ids`` or looks personal."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    for ident in sorted(ids, key=len, reverse=True):
        if ident and ident.casefold() in normal:
            raise invalid(
                field,
                "identifying_text",
                f"{field} contains {ident}, an id of a case cited, its household, a member "
                "or a consultation: a community issue carries no such id",
                f"{field}に引用したケース・世帯・世帯員・相談のID（{ident}）が含まれています。"
                "地域課題には個人を特定できる情報を含めないでください",
            )
    for what, what_ja, pattern in _LOOKS_PERSONAL:
        if pattern.search(normal):
            raise invalid(
                field,
                "personal_text",
                f"{field} contains what looks like {what}: a community issue carries no "
                "personal data",
                f"{field}に{what_ja}と思われる記載があります。地域課題には個人情報を含めないでください",
            )


def raise_issue(
    state: CommunityIssue,
    *,
    area: str,
    theme: str,
    description: str,
    concerns: list[Concern],
    cases_seen: int,
    raised_by: str,
    now: datetime,
) -> list[DomainEvent]:
    if state.exists:
        raise wrong_state(
            "community_issue_exists",
            f"community issue {state.issue_id} was raised already",
            f"地域課題{state.issue_id}は提起済みです",
            "raise a new one",
            "新たに提起してください",
        )
    return [
        CommunityIssueRaised(
            issue_id=state.issue_id,
            area=area,
            theme=theme,
            description=description,
            concerns=concerns,
            cases_seen=band(cases_seen),
            raised_by=raised_by,
            raised_at=now,
        )
    ]
