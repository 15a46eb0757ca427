"""HTTP API of intake: households, consultations and their monthly figures, referrals,
outreach, the inbox, agencies' windows and community places."""

from fastapi import APIRouter

from . import agencies, consultations, figures, households, inbox, outreach, referrals

router = APIRouter()
# figures before consultations: /consultations/figures is not a consultation id
for module in (households, figures, consultations, referrals, outreach, inbox, agencies):
    router.include_router(module.router)

__all__ = ["router"]
