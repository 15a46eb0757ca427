"""Types shared by events of several services."""

from __future__ import annotations

from typing import Annotated

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
    OTHER = ("other", "その他")
