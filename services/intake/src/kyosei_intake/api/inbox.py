"""An agency's inbox: everything that waits for it to act."""

from __future__ import annotations

from fastapi import APIRouter

from kyosei_platform.api import Reader
from kyosei_platform.http import Runtime

from ..queries import work
from ..settings import IntakeSettings
from ..views import Inbox

router = APIRouter(prefix="/inbox", tags=["inbox 受信箱"])


@router.get("", response_model=Inbox)
async def inbox(identity: Reader, runtime: Runtime) -> Inbox:
    """受信箱: referrals to act on, declined referrals back with the sender,
    unresolved intakes and active outreach, for the caller's agency (auditors: every
    agency's, with ``agency_id`` null)."""
    days = runtime.service_settings(IntakeSettings).unresolved_after_days
    async with runtime.engine.connect() as conn:
        return await work.inbox(conn, identity, unresolved_after_days=days)
