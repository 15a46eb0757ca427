"""Types shared by events of several services."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ..labels import LabelledEnum
from ..model import Personal

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
AgencyId = Annotated[str, Field(min_length=1, max_length=64, description="支援関係機関 id")]
PersonalText = Annotated[
    str,
    Personal(),
    Field(max_length=20_000, json_schema_extra={"x-kyosei-personal": True}),
]
# Optional personal text: a short one (a name, a place) and a note.
ShortPersonal = Annotated[
    str | None,
    Personal(),
    Field(None, max_length=200, json_schema_extra={"x-kyosei-personal": True}),
]
NotePersonal = Annotated[
    str | None,
    Personal(),
    Field(None, max_length=20_000, json_schema_extra={"x-kyosei-personal": True}),
]


class Concern(LabelledEnum):
    """相談の分野: what a consultation is about. Never a reason to refuse it."""

    CARE = ("care", "介護")
    DISABILITY = ("disability", "障害")
    CHILDCARE = ("childcare", "子育て")
    HARDSHIP = ("hardship", "生活困窮")
    WITHDRAWAL = ("withdrawal", "ひきこもり")
    HOARDING = ("hoarding", "ごみ屋敷")
    DOMESTIC_VIOLENCE = ("domestic_violence", "DV")
    ISOLATION = ("isolation", "孤立")
    HEALTH = ("health", "健康")
    EMPLOYMENT = ("employment", "就労")
    HOUSING = ("housing", "住まい")
    FOREIGN_NATIONAL = ("foreign_national", "外国籍")
    # -- added with the wider vocabulary (events carrying it are at a new version) --
    ADVOCACY_GUARDIANSHIP = ("advocacy_guardianship", "権利擁護・成年後見")
    NO_KIN = ("no_kin", "身寄りがない・死後の支援")
    SELF_NEGLECT = ("self_neglect", "セルフネグレクト")
    YOUNG_CARER = ("young_carer", "ヤングケアラー")
    CHILD_POVERTY = ("child_poverty", "こどもの貧困")
    DEVELOPMENTAL_DISABILITY_SUSPECTED = ("developmental_disability_suspected", "発達障害の疑い")
    LEAVING_PRISON = ("leaving_prison", "刑務所等からの出所")
    WOMEN_IN_DIFFICULTY = ("women_in_difficulty", "DV・性暴力／困難な課題を抱える女性")
    INTRACTABLE_DISEASE = ("intractable_disease", "難病")
    MEDICAL_CARE_CHILD = ("medical_care_child", "医療的ケア児")
    EIGHTY_FIFTY = ("eighty_fifty", "8050")
    DOUBLE_CARE = ("double_care", "ダブルケア")
    OTHER = ("other", "その他")


class UnmetNeed(LabelledEnum):
    """支援が届きにくい理由: why it is hard to help (the three kinds of unmet need the
    programme exists for). A consultation may name one or more, or none."""

    COMPLEX_HOUSEHOLD = ("complex_household", "世帯の複合課題")
    BETWEEN_PROGRAMMES = ("between_programmes", "制度の狭間")
    CANNOT_SEEK_HELP = ("cannot_seek_help", "自ら相談できない")


def same_payload_wider_vocabulary(payload: dict[str, Any]) -> dict[str, Any]:
    """Upcaster for a version whose only change is a wider vocabulary (more concerns,
    windows, channels or origins): every older payload is a valid newer one, with the
    same meaning."""
    return payload
