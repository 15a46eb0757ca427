"""kyosei_households: the household directory every service keeps (members, merges,
per-person consent) and the access rules every service applies to it."""

from .access import (
    COORDINATION,
    Consent,
    Household,
    Member,
    Proxy,
    Refusal,
    has_part,
    may_read_household,
    may_read_record,
    reads_households,
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
    "may_read_household",
    "may_read_record",
    "merge_families",
    "reads_households",
    "record_ids",
    "same_household",
    "survivor_of",
]
