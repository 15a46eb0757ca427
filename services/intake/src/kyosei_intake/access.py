"""Who may read what of a household (本人同意 and the parts agencies play).

- Auditors read everything (their reads are logged).
- An agency named in an active consent for 情報共有 (information_sharing) reads the
  whole household picture, from the consent's date until it is withdrawn.
- An agency with a part in the household (registered it, received one of its
  consultations, received a referral, runs an outreach case; coordinators once a
  consultation was escalated) reads the household's members and its own part:
  the consultations, referrals and outreach it is party to.
- Anyone else reads nothing of it (404, so that a record's existence is not told).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from enum import IntEnum

from kyosei_events.catalogue.intake import ConsentPurpose
from kyosei_platform.auth import Identity, Role

from .domain.household import Consent

COORDINATION = "*coordination"  # the part coordinators have once a consultation is escalated


class Access(IntEnum):
    NONE = 0
    OWN = 1  # members, and the records the agency is party to
    FULL = 2


def household_access(
    identity: Identity, parties: set[str], consents: Iterable[Consent], today: date
) -> Access:
    if identity.role is Role.AUDITOR:
        return Access.FULL
    if any(
        c.covers(identity.agency_id, ConsentPurpose.INFORMATION_SHARING, today) for c in consents
    ):
        return Access.FULL
    if identity.agency_id in parties or (
        identity.role is Role.COORDINATOR and COORDINATION in parties
    ):
        return Access.OWN
    return Access.NONE


def party_to(identity: Identity, agencies: set[str], escalated: bool) -> bool:
    """Whether the caller is party to one record (a consultation, a referral, a case)."""
    return identity.agency_id in agencies or (identity.role is Role.COORDINATOR and escalated)
