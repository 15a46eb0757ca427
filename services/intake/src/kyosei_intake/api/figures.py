"""Monthly figures (月次集計) of consultations, as JSON or as a CSV download."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response

from kyosei_platform.api import Reader
from kyosei_platform.http import Runtime

from ..queries import figures as queries
from ..queries.figures import FigureRow

router = APIRouter(prefix="/consultations", tags=["consultations 相談"])

Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]


@router.get(
    "/figures",
    response_model=list[FigureRow],
    responses={
        200: {
            "description": "the figures, as JSON, or as CSV with `Accept: text/csv` or "
            "`format=csv` (UTF-8 with BOM, Japanese labels in the header row and values)",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def monthly_figures(
    identity: Reader,
    runtime: Runtime,
    month_from: Month = None,
    month_to: Month = None,
    agency_id: str | None = None,
    format: Literal["json", "csv"] | None = Query(
        None, description="csv for a download; default: as the Accept header asks (JSON)"
    ),
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """月次集計: per month (JST, of receipt), agency and window (community places by
    place), how many consultations were received and their outcomes, channels, concerns
    and unmet-need types (支援が届きにくい理由), for the municipality's monthly review.
    No personal data. Coordinators and auditors read every agency's (or
    ``agency_id``'s), staff their own agency's; operators none."""
    async with runtime.engine.connect() as conn:
        rows = await queries.monthly_figures(
            conn, identity, month_from=month_from, month_to=month_to, agency_id=agency_id
        )
    wants_csv = format == "csv" or (format is None and "text/csv" in (accept or ""))
    if not wants_csv:
        return JSONResponse([r.model_dump(mode="json") for r in rows])
    name = f"consultation-figures_{month_from or 'all'}_{month_to or 'all'}.csv"
    return Response(
        queries.figures_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
