"""The monthly figures (月次集計): per month, agency, window (and community place),
how many consultations were received and their outcomes, channels, concerns and
unmet-need types. Counted from the consultations read model, which the projection
keeps (and ``kyosei rebuild intake`` rebuilds); no personal data enters them.

A consultation counts in the month (JST) it was received, with its outcome as it
stands now; one consultation counts once under each of its concerns and unmet-need
types, so those rows may add up to more than the received count.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kyosei_events.catalogue.common import Concern, UnmetNeed
from kyosei_events.catalogue.intake import Channel, Window
from kyosei_platform.api import LabelledValue, labelled
from kyosei_platform.application import forbidden
from kyosei_platform.auth import Identity, Role

from ..projections import consultation_places, consultations
from ..views import STATUS_LABELS_JA

MEASURES_JA = {
    "received": "受付件数",
    "outcome": "対応",
    "channel": "経路",
    "concern": "相談の分野",
    "unmet_need": "支援が届きにくい理由",
}
RECEIVED = LabelledValue(value="received", label_ja="受付")
NO_UNMET_NEED = LabelledValue(value="none", label_ja="記録なし")
CSV_HEADER = ("月", "機関", "窓口", "地域の相談の場", "区分", "項目", "件数")


class FigureRow(BaseModel):
    """One count: in ``month``, at ``agency_id``'s ``window`` (and ``place``), how many
    consultations had ``item`` of ``measure``."""

    month: str = Field(description="YYYY-MM, the month (JST) the consultations were received")
    agency_id: str
    window: LabelledValue
    place_id: str | None = Field(description="the community place, for window community_place")
    place_name: str | None
    measure: LabelledValue = Field(
        description="received (受付件数), outcome (対応), channel (経路), concern (相談の分野) "
        "or unmet_need (支援が届きにくい理由)"
    )
    item: LabelledValue
    count: int


async def monthly_figures(
    conn: AsyncConnection,
    identity: Identity,
    *,
    month_from: str | None,
    month_to: str | None,
    agency_id: str | None,
) -> list[FigureRow]:
    """The figures the caller may read: coordinators and auditors every agency's (or
    ``agency_id``'s), staff their own agency's (403 for another's)."""
    if identity.role is Role.STAFF:
        if agency_id not in (None, identity.agency_id):
            raise forbidden(
                "figures_of_another_agency",
                "staff read their own agency's figures; coordinators and auditors read all",
                "職員が見られるのは自機関の集計だけです（全機関の集計は調整担当・監査担当が見られます）",
            )
        agency_id = identity.agency_id
    c = consultations.c
    query = select(
        c.received_month,
        c.agency_id,
        c.window,
        c.place_id,
        c.status,
        c.channel,
        c.concerns,
        c.unmet_needs,
    )
    if month_from:
        query = query.where(c.received_month >= month_from)
    if month_to:
        query = query.where(c.received_month <= month_to)
    if agency_id:
        query = query.where(c.agency_id == agency_id)
    counts: Counter[tuple[str, str, str, str, str, str]] = Counter()
    for r in await conn.execute(query):
        key = (r.received_month, r.agency_id, r.window, r.place_id or "")
        counts[(*key, "received", "received")] += 1
        counts[(*key, "outcome", r.status)] += 1
        counts[(*key, "channel", r.channel)] += 1
        for concern in json.loads(r.concerns):
            counts[(*key, "concern", concern)] += 1
        needs = json.loads(r.unmet_needs) or ["none"]
        for need in needs:
            counts[(*key, "unmet_need", need)] += 1
    places = consultation_places.c
    names = {
        place_id: name
        for place_id, name in await conn.execute(select(places.place_id, places.name))
    }
    return [
        FigureRow(
            month=month,
            agency_id=agency,
            window=labelled(Window.of(window)),
            place_id=place or None,
            place_name=names.get(place) if place else None,
            measure=LabelledValue(value=measure, label_ja=MEASURES_JA[measure]),
            item=_item(measure, item),
            count=n,
        )
        for (month, agency, window, place, measure, item), n in sorted(
            counts.items(), key=lambda kv: _order(kv[0])
        )
    ]


_MEASURE_ORDER = list(MEASURES_JA)
_ITEM_ORDER: dict[str, list[str]] = {
    "received": ["received"],
    "outcome": list(STATUS_LABELS_JA),
    "channel": [m.value for m in Channel],
    "concern": [m.value for m in Concern],
    "unmet_need": [m.value for m in UnmetNeed] + ["none"],
}


def _order(key: tuple[str, str, str, str, str, str]) -> tuple[Any, ...]:
    month, agency, window, place, measure, item = key
    return (
        month,
        agency,
        [w.value for w in Window].index(window),
        place,
        _MEASURE_ORDER.index(measure),
        _ITEM_ORDER[measure].index(item),
    )


def _item(measure: str, value: str) -> LabelledValue:
    if measure == "received":
        return RECEIVED
    if measure == "outcome":
        return LabelledValue(value=value, label_ja=STATUS_LABELS_JA[value])
    if measure == "unmet_need" and value == "none":
        return NO_UNMET_NEED
    enum = {"channel": Channel, "concern": Concern, "unmet_need": UnmetNeed}[measure]
    return labelled(enum.of(value))


def figures_csv(rows: Iterable[FigureRow]) -> bytes:
    """The figures as CSV for Excel in Japan: UTF-8 with a BOM, CRLF, a header row of
    Japanese labels, and Japanese labels as values."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow(
            (
                r.month,
                r.agency_id,
                r.window.label_ja,
                r.place_name or "",
                r.measure.label_ja,
                r.item.label_ja,
                r.count,
            )
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")
