"""Who is acting: the identity every request carries (verified by auth.py) and that
commands are decided for (application.py)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    STAFF = "staff"
    COORDINATOR = "coordinator"
    AUDITOR = "auditor"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Identity:
    agency_id: str
    staff_id: str
    role: Role


# The two role rules every service applies alike (kyosei_platform.api.Reader refuses
# operators on every household route; kyosei_households.access scopes every list).


def reads_households(identity: Identity) -> bool:
    """Operators run the services; they read no household data anywhere."""
    return identity.role is not Role.OPERATOR


def reads_every_list(identity: Identity) -> bool:
    """Auditors read every list in full, every agency's rows (監査)."""
    return identity.role is Role.AUDITOR
