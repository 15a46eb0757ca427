"""kyosei_households: the household directory every service keeps (members, merges,
per-person consent) and the access rules every service applies to it."""

from kyosei_platform.identity import reads_households

from .access import (
    COORDINATION,
    Consent,
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

__all__ = [
    "COORDINATION",
    "Consent",
    "Household",
    "HouseholdDirectory",
    "Member",
    "Proxy",
    "Refusal",
    "find",
    "has_part",
    "listed_agency",
    "may_read_household",
    "may_read_record",
    "merge_families",
    "reads_households",
    "record_ids",
    "same_household",
    "survivor_of",
]
