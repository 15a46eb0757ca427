"""kyosei_households: the household directory every service keeps (members and their
life changes, merges and the people they combine, per-person consent, dismissed
duplicate candidates) and the access rules every service applies to it."""

from kyosei_platform.identity import reads_households

from .access import (
    COORDINATION,
    Consent,
    Dismissal,
    Household,
    Member,
    Proxy,
    Refusal,
    has_part,
    listed_agency,
    may_read_household,
    may_read_record,
)
from .directory import (
    HouseholdDirectory,
    find,
    merge_families,
    record_ids,
    same_household,
    survivor_of,
)
from .life import LIFE_EVENTS, LifeChange, MemberStatus, life_change, status_of

__all__ = [
    "COORDINATION",
    "LIFE_EVENTS",
    "Consent",
    "Dismissal",
    "Household",
    "HouseholdDirectory",
    "LifeChange",
    "Member",
    "MemberStatus",
    "Proxy",
    "Refusal",
    "find",
    "has_part",
    "life_change",
    "listed_agency",
    "may_read_household",
    "may_read_record",
    "merge_families",
    "reads_households",
    "record_ids",
    "same_household",
    "status_of",
    "survivor_of",
]
