"""Who may read what of a household: the access rules every service applies.

Pure functions of the caller, the household as the directory knows it, and a date.

- Auditors read everything, every list in full (their reads are recorded); operators
  read no household data at all (kyosei_platform.identity holds these two rules; routes
  apply the first through kyosei_platform.api.Reader, lists the second through
  :func:`listed_agency`).
- Household-wide information (address, composition) is readable by an agency with a
  part in the household (it registered it, received one of its consultations or a
  referral, runs an outreach case, holds a role in its case; coordinators once a
  consultation was escalated), and by an agency that a member's active consent names.
- A person's records (a consultation, a referral, an outreach case, a plan about them)
  are readable by the agencies party to that record, and by the agencies that the
  person's own consent names for the purpose, from the consent's date until it is
  withdrawn. A family member or guardian consents for a person only when recorded as
  that person's proxy (checked when the consent is recorded).
- A record about several people opens by consent only when every one of them
  consented; a record that names nobody concerns every member of the household, so in
  an 8050 household the mother's consent never opens what is about the son.
- A person has more than one member id when two records of their household were merged
  and both named them (MembersCombined): every rule applies to the person, so a consent
  given under one id opens a record naming the other.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date

from kyosei_events.catalogue.intake import ConsentGiver, ConsentPurpose
from kyosei_platform.auth import Identity, Role
from kyosei_platform.identity import reads_every_list, reads_households

from .life import LifeChange, MemberStatus, status_of

# The part coordinators have in a household once a consultation was escalated.
COORDINATION = "*coordination"
SHARING = ConsentPurpose.INFORMATION_SHARING


@dataclass(frozen=True)
class Consent:
    """One person's consent (本人同意), as the directory holds it."""

    consent_id: str
    household_id: str
    member_id: str | None  # None: a consent recorded before consent was per person
    given_by: ConsentGiver
    proxy_id: str | None
    agencies: frozenset[str]
    all_agencies: bool
    purposes: frozenset[ConsentPurpose]
    given_on: date
    withdrawn_on: date | None = None

    def active_on(self, on: date) -> bool:
        return self.given_on <= on and (self.withdrawn_on is None or on < self.withdrawn_on)

    def covers(self, agency_id: str, purpose: ConsentPurpose, on: date) -> bool:
        return (
            self.active_on(on)
            and purpose in self.purposes
            and (self.all_agencies or agency_id in self.agencies)
        )


@dataclass(frozen=True)
class Proxy:
    """Someone recorded as acting for a member in matters of consent (代理人)."""

    proxy_id: str
    member_id: str
    kind: ConsentGiver
    proxy_member_id: str | None


@dataclass(frozen=True)
class Refusal:
    """A refusal of consent (同意拒否): who, about whom, what was asked, when."""

    refusal_id: str
    member_id: str
    refused_by: ConsentGiver
    proxy_id: str | None
    agencies: frozenset[str]
    all_agencies: bool
    purposes: frozenset[ConsentPurpose]
    refused_on: date
    recorded_by: str | None


@dataclass(frozen=True)
class Member:
    member_id: str
    household_id: str  # the record it was registered on (a merged record keeps its own)
    relationship: str
    same_as: str | None = None  # the id this person is known by since a merge
    changes: tuple[LifeChange, ...] = ()


@dataclass(frozen=True)
class Dismissal:
    """A duplicate candidate that staff judged to be another household, when registering
    ``household_id``: who dismissed it (agency, staff member) and when."""

    household_id: str
    other_household_id: str
    dismissed_by: str
    dismissed_by_staff: str | None
    dismissed_at: str


@dataclass(frozen=True)
class Household:
    """A household as every service's directory knows it: the surviving record, the
    records merged into it, its members, consents, proxies and refusals."""

    household_id: str
    record_ids: tuple[str, ...]
    registered_by: str
    members: tuple[Member, ...]
    consents: tuple[Consent, ...]
    proxies: tuple[Proxy, ...]
    refusals: tuple[Refusal, ...]
    dismissals: tuple[Dismissal, ...] = ()

    @property
    def member_ids(self) -> frozenset[str]:
        """Every member id of the household (a person combined by a merge has two)."""
        return frozenset(m.member_id for m in self.members)

    def person(self, member_id: str) -> str:
        """The id a person is known by: ``member_id`` itself, or, for an id combined into
        another person's by a merge, that person's id."""
        same_as = {m.member_id: m.same_as for m in self.members if m.same_as}
        seen = {member_id}
        while (nxt := same_as.get(member_id)) is not None and nxt not in seen:
            seen.add(nxt)
            member_id = nxt
        return member_id

    @property
    def people(self) -> frozenset[str]:
        """The household's people, each by the id it is known by."""
        return frozenset(self.person(m.member_id) for m in self.members)

    def ids_of(self, person: str) -> frozenset[str]:
        """Every member id of one person."""
        return frozenset(m.member_id for m in self.members if self.person(m.member_id) == person)

    def status(self, person: str, on: date | None = None) -> MemberStatus:
        """A person's state (alive, living in the household, in a facility) from the
        life changes recorded under any of their ids."""
        ids = self.ids_of(person)
        return status_of((c for m in self.members if m.member_id in ids for c in m.changes), on)

    def consenting(self, agency_id: str, purpose: ConsentPurpose, on: date) -> frozenset[str]:
        """The people whose own consent opens their records to ``agency_id``."""
        return frozenset(
            self.person(c.member_id)
            for c in self.consents
            if c.member_id is not None and c.covers(agency_id, purpose, on)
        )

    def proxy_may_act(self, proxy_id: str | None, member_id: str, given_by: ConsentGiver) -> bool:
        """Whether ``given_by`` (with ``proxy_id``) may consent or refuse for ``member_id``."""
        if given_by is ConsentGiver.PERSON:
            return proxy_id is None
        person = self.person(member_id)
        return any(
            p.proxy_id == proxy_id and self.person(p.member_id) == person and p.kind is given_by
            for p in self.proxies
        )


def listed_agency(identity: Identity, *, coordinators_see_all: bool = False) -> str | None:
    """Whose rows a list shows the caller: its own agency's, or every agency's (None).

    Auditors see every agency's rows in every list; coordinators too in the lists of
    coordination's work (``coordinators_see_all``: cases, unresolved consultations).
    Operators read no list at all.
    """
    if not reads_households(identity):
        raise PermissionError(f"role {identity.role.value} reads no household data")
    if reads_every_list(identity) or (coordinators_see_all and identity.role is Role.COORDINATOR):
        return None
    return identity.agency_id


def has_part(identity: Identity, parties: Collection[str]) -> bool:
    """Whether the caller's agency has a part in a household or record."""
    return identity.agency_id in parties or (
        identity.role is Role.COORDINATOR and COORDINATION in parties
    )


def may_read_household(
    identity: Identity, household: Household, parties: Collection[str], on: date
) -> bool:
    """Household-wide information: its address and composition."""
    if not reads_households(identity):
        return False
    if reads_every_list(identity) or has_part(identity, parties):
        return True
    return any(c.covers(identity.agency_id, SHARING, on) for c in household.consents)


def concerned(persons: Iterable[str], household: Household) -> frozenset[str]:
    """The people a record is about: those it names, or every member if it names none
    (each by the id the person is known by)."""
    named = frozenset(household.person(p) for p in persons)
    return named or household.people


def may_read_record(
    identity: Identity,
    *,
    parties: Collection[str],
    persons: Iterable[str],
    household: Household | None,
    on: date,
    purpose: ConsentPurpose = SHARING,
) -> bool:
    """A person's record: its parties, auditors, and the agencies that every person it
    is about consented to, for ``purpose`` on ``on``."""
    if not reads_households(identity):
        return False
    if reads_every_list(identity) or has_part(identity, parties):
        return True
    if household is None:
        return False
    about = concerned(persons, household)
    return bool(about) and about <= household.consenting(identity.agency_id, purpose, on)
