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
