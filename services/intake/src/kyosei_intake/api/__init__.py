"""HTTP API of intake: households, consultations, referrals, outreach, the inbox."""

from fastapi import APIRouter

from . import consultations, households, inbox, outreach, referrals

router = APIRouter()
for module in (households, consultations, referrals, outreach, inbox):
    router.include_router(module.router)

__all__ = ["router"]
