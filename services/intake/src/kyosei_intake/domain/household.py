"""The household (世帯): its members, its consents, and merges of duplicate records.

Two records of one household are merged by an event on each (HouseholdsMerged on
the survivor, HouseholdMergedInto on the other); no history is rewritten, and a
merged record takes no more events. Members of both records that are the same person
are combined (MembersCombined on the survivor): one person with both ids.

Members' life changes (death, moving out or in, birth, facility stays) and attribute
changes (要介護認定, 障害者手帳, …) are events with an effective date; today's state is
their replay (kyosei_households.life), and a wrong record is retracted, never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from kyosei_events.catalogue.intake import (
    STATUS_GRADES,
    AgeBand,
    ConsentGiven,
    ConsentGiver,
    ConsentPurpose,
    ConsentRefused,
    ConsentWithdrawn,
    HouseholdMergedInto,
    HouseholdRegistered,
    HouseholdsMerged,
    MemberAdded,
    MemberAttribute,
    MemberAttributeChanged,
    MemberChange,
    MemberChangeRetracted,
    MemberDeparted,
    MemberDied,
    MemberFacilityStayEnded,
    MemberFacilityStayStarted,
    MemberJoined,
    MembersCombined,
    PersonMatch,
    ProxyRecorded,
    Relationship,
    StatusAttribute,
    StatusGrade,
)
from kyosei_events.model import DomainEvent
from kyosei_households.life import LifeChange, MemberStatus, life_change, status_of
from kyosei_platform.application import Rejected, invalid, stream_id, wrong_state

from ..search_terms import normalise_name


@dataclass
class Member:
    member_id: str
    name: str | None
    kana: str | None
    birth_date: date | None
    age_band: AgeBand | None
    relationship: Relationship
    attributes: list[MemberAttribute]
    language: str | None


@dataclass
class RecordedChange:
    """A life or attribute change as recorded, and its retraction if it was retracted."""

    event: MemberChange
    seq: int  # the record's version when it was recorded: ties on one date keep this order
    household_id: str  # the record it is on

    def life(self, retracted: bool) -> LifeChange | None:
        change = life_change(self.event, self.seq)
        return None if change is None else replace(change, retracted=retracted)


@dataclass
class Retraction:
    change_id: str
    reason: str | None
    retracted_at: datetime


@dataclass
class Certification:
    """An attribute a member holds today (要介護認定 要介護3 since …)."""

    attribute: StatusAttribute
    grade: StatusGrade
    since: date


def stream(household_id: str) -> str:
    """The stream of one household record."""
    return stream_id("household", household_id)


@dataclass
class Proxy:
    """Someone recorded as acting for a member in matters of consent (代理人)."""

    proxy_id: str
    member_id: str
    kind: ConsentGiver
    proxy_member_id: str | None
    proxy_name: str | None
    basis: str | None


@dataclass
class Refusal:
    """同意拒否: who refused, about whom, what was asked, when."""

    refusal_id: str
    member_id: str
    refused_by: ConsentGiver
    proxy_id: str | None
    agencies: list[str]
    all_agencies: bool
    purposes: list[ConsentPurpose]
    refused_on: date
    note: str | None


@dataclass
class Consent:
    consent_id: str
    member_id: str | None
    given_by: ConsentGiver
    proxy_id: str | None
    agencies: list[str]
    all_agencies: bool
    purposes: list[ConsentPurpose]
    given_on: date
    withdrawn_on: date | None = None
    withdrawn_by: ConsentGiver | None = None

    def covers(self, agency_id: str, purpose: ConsentPurpose, on: date) -> bool:
        return (
            self.withdrawn_on is None
            and self.given_on <= on
            and purpose in self.purposes
            and (self.all_agencies or agency_id in self.agencies)
        )


@dataclass
class Household:
    household_id: str
    registered_by: str = ""
    address: str | None = None
    phone: str | None = None
    registered_at: datetime | None = None
    members: dict[str, Member] = field(default_factory=dict)
    consents: dict[str, Consent] = field(default_factory=dict)
    proxies: dict[str, Proxy] = field(default_factory=dict)
    refusals: dict[str, Refusal] = field(default_factory=dict)
    changes: dict[str, RecordedChange] = field(default_factory=dict)
    retractions: dict[str, Retraction] = field(default_factory=dict)
    combined: dict[str, MembersCombined] = field(default_factory=dict)  # by same_member_id
    merged_into: str | None = None
    merged_from: list[str] = field(default_factory=list)
    version: int = 0
    # Not from this record's events: the member ids on the household's other records
    # (merged into this one), set when the household is opened for a command, so that
    # consent and proxies may name any member of the household.
    elsewhere: frozenset[str] = frozenset()

    @property
    def exists(self) -> bool:
        return self.version > 0

    def person_id(self, member_id: str) -> str:
        """The id a person is known by, once a merge into this record combined ids."""
        combined = self.combined.get(member_id)
        return member_id if combined is None else combined.member_id

    def evolve(self, event: DomainEvent) -> None:
        match event:
            case HouseholdRegistered():
                self.registered_by = event.registered_by
                self.address, self.phone = event.address, event.phone
                self.registered_at = event.registered_at
            case MemberAdded():
                self.members[event.member_id] = Member(
                    event.member_id,
                    event.name,
                    event.kana,
                    event.birth_date,
                    event.age_band,
                    event.relationship,
                    list(event.attributes or []),
                    event.language,
                )
            case HouseholdsMerged():
                self.merged_from.append(event.merged_household_id)
            case HouseholdMergedInto():
                self.merged_into = event.into_household_id
            case ConsentGiven():
                self.consents[event.consent_id] = Consent(
                    event.consent_id,
                    event.member_id,
                    event.given_by,
                    event.proxy_id,
                    list(event.agencies),
                    event.all_agencies,
                    list(event.purposes),
                    event.given_on,
                )
            case ProxyRecorded():
                self.proxies[event.proxy_id] = Proxy(
                    event.proxy_id,
                    event.member_id,
                    event.kind,
                    event.proxy_member_id,
                    event.proxy_name,
                    event.basis,
                )
            case ConsentRefused():
                self.refusals[event.refusal_id] = Refusal(
                    event.refusal_id,
                    event.member_id,
                    event.refused_by,
                    event.proxy_id,
                    list(event.agencies),
                    event.all_agencies,
                    list(event.purposes),
                    event.refused_on,
                    event.note,
                )
            case ConsentWithdrawn():
                c = self.consents[event.consent_id]
                c.withdrawn_on, c.withdrawn_by = event.withdrawn_on, event.withdrawn_by
            case MemberChange():
                self.changes[event.change_id] = RecordedChange(
                    event, self.version, self.household_id
                )
            case MemberChangeRetracted():
                self.retractions[event.retracted_change_id] = Retraction(
                    event.retracted_change_id, event.reason, event.retracted_at
                )
            case MembersCombined():
                self.combined[event.same_member_id] = event
        self.version += 1


def _open(state: Household) -> None:
    if state.merged_into is not None:
        raise wrong_state(
            "household_merged",
            f"this household record was merged into {state.merged_into}",
            f"この世帯は {state.merged_into} に統合されています",
            "record it on that household instead",
            "統合先の世帯に記録してください",
        )


def add_member(state: Household, member: MemberAdded) -> MemberAdded:
    _open(state)
    if member.member_id in state.members:
        raise wrong_state(
            "member_exists",
            f"member {member.member_id} is already registered in this household",
            "この世帯員はすでに登録されています",
            "nothing more to do",
            "操作は不要です",
        )
    return member


def merge(
    survivor: Household, duplicate: Household, reason: str, now: datetime
) -> tuple[DomainEvent, DomainEvent]:
    """Merge ``duplicate`` into ``survivor``: one event on each record (the people
    they share are combined by :func:`same_people`)."""
    if survivor.household_id == duplicate.household_id:
        raise invalid(
            "duplicate_household_id",
            "cannot_merge_with_itself",
            "a household cannot be merged with itself",
            "同じ世帯どうしは統合できません",
        )
    _open(survivor)
    _open(duplicate)
    return (
        HouseholdsMerged(
            household_id=survivor.household_id,
            merged_household_id=duplicate.household_id,
            reason=reason,
            merged_at=now,
        ),
        HouseholdMergedInto(
            household_id=duplicate.household_id,
            into_household_id=survivor.household_id,
            merged_at=now,
        ),
    )


def consent_member(state: Household, member_id: str | None) -> str:
    """The member a consent or its refusal is about: 422 when none is named, or one
    not of this household."""
    return _member(state, member_id)


def _member(state: Household, member_id: str | None, field: str = "member_id") -> str:
    if member_id is None:
        raise invalid(
            field,
            "member_required",
            "consent belongs to a person: name the member it is about",
            "同意は本人ごとです。対象の世帯員を指定してください",
        )
    if member_id not in state.members and member_id not in state.elsewhere:
        raise invalid(
            field,
            "member_not_found",
            f"no member {member_id} in this household",
            "この世帯にその世帯員はいません",
        )
    return member_id


def _acting_for(state: Household, member_id: str, by: ConsentGiver, proxy_id: str | None) -> None:
    """The person decides for themself; family or a guardian only as their recorded proxy."""
    if by is ConsentGiver.PERSON:
        if proxy_id is not None:
            raise invalid(
                "proxy_id",
                "proxy_for_person",
                "a person consenting for themself needs no proxy_id",
                "本人による同意には proxy_id は不要です",
            )
        return
    proxy = state.proxies.get(proxy_id or "")
    if (
        proxy is None
        or state.person_id(proxy.member_id) != state.person_id(member_id)
        or proxy.kind is not by
    ):
        raise invalid(
            "proxy_id",
            "not_a_recorded_proxy",
            f"{by.value} may act for member {member_id} only when recorded as that "
            "member's proxy (POST /households/{id}/proxies); give that proxy_id",
            "家族・後見人が本人に代わって同意できるのは、その本人の代理人として登録されて"
            "いる場合だけです",
        )


def _names_agencies(agencies: list[str], all_agencies: bool) -> None:
    if not all_agencies and not agencies:
        raise invalid(
            "agencies",
            "no_agencies",
            "name the agencies the consent covers, or set all_agencies",
            "同意の対象機関を指定するか、all_agencies を true にしてください",
        )


def record_proxy(state: Household, proxy: ProxyRecorded) -> ProxyRecorded:
    _open(state)
    _member(state, proxy.member_id)
    if proxy.kind is ConsentGiver.PERSON:
        raise invalid(
            "kind",
            "person_is_not_a_proxy",
            "a proxy is family or a guardian, not the person",
            "代理人は家族または後見人です",
        )
    if proxy.proxy_member_id is not None:
        _member(state, proxy.proxy_member_id, "proxy_member_id")
        if proxy.proxy_member_id == proxy.member_id:
            raise invalid(
                "proxy_member_id",
                "own_proxy",
                "a member cannot be their own proxy",
                "本人を本人の代理人にはできません",
            )
    elif not proxy.proxy_name:
        raise invalid(
            "proxy_name",
            "proxy_unnamed",
            "name the proxy: proxy_member_id for a household member, else proxy_name",
            "代理人を指定してください (世帯員なら proxy_member_id、それ以外は proxy_name)",
        )
    return proxy


def give_consent(state: Household, given: ConsentGiven) -> ConsentGiven:
    _open(state)
    member_id = _member(state, given.member_id)
    _acting_for(state, member_id, given.given_by, given.proxy_id)
    _names_agencies(given.agencies, given.all_agencies)
    if given.consent_id in state.consents:
        raise wrong_state(
            "consent_exists",
            f"consent {given.consent_id} is already recorded",
            "この同意はすでに登録されています",
            "nothing more to do",
            "操作は不要です",
        )
    return given


def refuse_consent(state: Household, refused: ConsentRefused) -> ConsentRefused:
    """同意拒否 is recorded like consent, and like consent only by the person or their
    recorded proxy. It blocks nothing but sharing."""
    _open(state)
    member_id = _member(state, refused.member_id)
    _acting_for(state, member_id, refused.refused_by, refused.proxy_id)
    _names_agencies(refused.agencies, refused.all_agencies)
    return refused


def withdraw_consent(
    state: Household,
    consent_id: str,
    withdrawn_by: ConsentGiver,
    withdrawn_on: date,
    note: str | None,
    now: datetime,
) -> ConsentWithdrawn:
    consent = state.consents.get(consent_id)
    if consent is None:
        raise Rejected(
            "consent_not_found", f"no consent {consent_id}", "該当する同意がありません", status=404
        )
    if consent.withdrawn_on is not None:
        raise wrong_state(
            "consent_already_withdrawn",
            f"this consent is already withdrawn (on {consent.withdrawn_on})",
            f"この同意はすでに撤回されています ({consent.withdrawn_on})",
            "nothing more to do; to share again, record a new consent",
            "操作は不要です。再び共有するには新しく同意を登録してください",
        )
    if withdrawn_on < consent.given_on:
        raise invalid(
            "withdrawn_on",
            "withdrawn_before_given",
            "a consent cannot be withdrawn before it was given",
            "同意日より前の日付で撤回することはできません",
        )
    return ConsentWithdrawn(
        consent_id=consent_id,
        household_id=state.household_id,
        withdrawn_by=withdrawn_by,
        withdrawn_on=withdrawn_on,
        note=note,
        recorded_at=now,
    )


# -- the people of a household, across its records -------------------------------------


@dataclass
class Person:
    """One person of a household: their member records (one per id; two once a merge
    combined them) and every change recorded about them, in any record."""

    person_id: str
    records: list[tuple[Member, str]]  # (member, household record it is on)
    changes: list[RecordedChange]
    retractions: dict[str, Retraction]

    @property
    def member(self) -> Member:
        return self.records[0][0]

    @property
    def member_ids(self) -> list[str]:
        return [m.member_id for m, _ in self.records]

    @property
    def birth_date(self) -> date | None:
        return next((m.birth_date for m, _ in self.records if m.birth_date), None)

    def life_changes(self) -> list[LifeChange]:
        out = []
        for c in self.changes:
            life = c.life(c.event.change_id in self.retractions)
            if life is not None:
                out.append(life)
        return out

    def status(self, on: date | None = None) -> MemberStatus:
        return status_of(self.life_changes(), on)

    def certifications(self) -> list[Certification]:
        """The attributes held today: the latest change of each, unless it ended."""
        latest: dict[StatusAttribute, tuple[date, int, StatusGrade | None]] = {}
        for c in self.changes:
            e = c.event
            if isinstance(e, MemberAttributeChanged) and e.change_id not in self.retractions:
                at = (e.effective_on, c.seq, e.grade)
                if e.attribute not in latest or at[:2] >= latest[e.attribute][:2]:
                    latest[e.attribute] = at
        return [
            Certification(a, grade, on)
            for a, (on, _, grade) in sorted(latest.items(), key=lambda kv: kv[0].value)
            if grade is not None
        ]


def people(records: Iterable[Household]) -> list[Person]:
    """The people of a household (survivor first, then its merged records): a member
    combined into another person by a merge is listed under that person."""
    records = list(records)
    same_as = {k: e.member_id for h in records for k, e in h.combined.items()}

    def person_of(member_id: str) -> str:
        seen = {member_id}
        while (nxt := same_as.get(member_id)) is not None and nxt not in seen:
            seen.add(nxt)
            member_id = nxt
        return member_id

    retractions = {k: v for h in records for k, v in h.retractions.items()}
    found: dict[str, Person] = {}
    for h in records:
        for m in h.members.values():
            pid = person_of(m.member_id)
            found.setdefault(pid, Person(pid, [], [], retractions)).records.append(
                (m, h.household_id)
            )
    for p in found.values():
        p.records.sort(key=lambda r: r[0].member_id != p.person_id)
    for h in records:
        for c in h.changes.values():
            pid = person_of(c.event.member_id)
            if pid in found:
                found[pid].changes.append(c)
    return list(found.values())


def newcomer(added: MemberAdded) -> Person:
    """The person a MemberAdded about to be written registers (no history yet)."""
    member = Member(
        added.member_id,
        added.name,
        added.kana,
        added.birth_date,
        added.age_band,
        added.relationship,
        list(added.attributes or []),
        added.language,
    )
    return Person(added.member_id, [(member, added.household_id)], [], {})


def person(records: Iterable[Household], member_id: str) -> Person:
    """The person ``member_id`` names (by any of their ids); 404 if not of this household."""
    for p in people(records):
        if member_id in p.member_ids:
            return p
    raise Rejected(
        "member_not_found",
        f"no member {member_id} in this household",
        "この世帯にその世帯員はいません",
        status=404,
    )


def _dated(p: Person, on: date, field: str) -> None:
    if p.birth_date is not None and on < p.birth_date:
        raise invalid(
            field,
            "before_birth",
            f"{on} is before the member's birth date",
            "生年月日より前の日付は記録できません",
        )
    died = p.status().deceased_on
    if died is not None and on > died:
        raise invalid(
            field,
            "after_death",
            f"the member died on {died}; nothing can be recorded after that date",
            f"この世帯員は {died} に亡くなっています。それより後の日付では記録できません",
        )


def record_change(state: Household, p: Person, event: MemberChange, *, new: bool = False) -> None:
    """Check one change of person ``p``, to be appended to ``state`` (the survivor).
    ``new``: the member is being added by the same write (birth, moving in)."""
    _open(state)
    if isinstance(event, MemberDied):
        died = p.status().deceased_on
        if died is not None:
            recorded = next(
                c.event.change_id
                for c in p.changes
                if isinstance(c.event, MemberDied) and c.event.change_id not in p.retractions
            )
            raise Rejected(
                "member_already_deceased",
                f"this member's death is already recorded (died on {died}); to correct "
                f"it, retract that record (change {recorded}) and record it again",
                f"この世帯員の死亡はすでに記録されています（{died}）。訂正するときは、"
                "その記録を取り消してから記録し直してください",
            )
    on = effective_on(event)
    _dated(p, on, "on")
    now_ = p.status(on)
    match event:
        case MemberJoined() if not new:
            if now_.living_in_household:
                raise Rejected(
                    "member_living_in_household",
                    "this member already lives in the household",
                    "この世帯員はすでに世帯で暮らしています",
                )
        case MemberFacilityStayStarted():
            if now_.facility is not None:
                raise Rejected(
                    "member_in_facility",
                    f"this member is already in a facility (since {now_.facility_since}); "
                    "record that stay's end first",
                    "この世帯員はすでに施設に入所・入院中です。先に退所・退院を記録してください",
                )
        case MemberFacilityStayEnded():
            if now_.facility is None:
                raise Rejected(
                    "member_not_in_facility",
                    "this member is not in a facility on that date",
                    "その日付に施設に入所・入院している記録がありません",
                )
        case MemberAttributeChanged():
            if event.grade is not None and event.grade not in STATUS_GRADES[event.attribute]:
                allowed = ", ".join(g.value for g in STATUS_GRADES[event.attribute])
                raise invalid(
                    "grade",
                    "grade_not_of_attribute",
                    f"{event.attribute.value} takes one of: {allowed}",
                    f"{event.attribute.label_ja}の区分は次のいずれかです: "
                    + "、".join(g.label_ja for g in STATUS_GRADES[event.attribute]),
                )
            if event.grade is None and event.attribute not in {
                c.attribute for c in p.certifications()
            }:
                raise Rejected(
                    "attribute_not_held",
                    f"this member holds no {event.attribute.value} to end",
                    f"この世帯員に終了する{event.attribute.label_ja}の記録はありません",
                )
        case MemberDeparted():
            if not now_.living_in_household:
                raise Rejected(
                    "member_not_living_in_household",
                    "this member does not live in the household on that date",
                    "この世帯員はその日付に世帯で暮らしていません",
                )


def effective_on(event: MemberChange) -> date:
    """The date a change took effect."""
    for name in ("died_on", "departed_on", "joined_on", "started_on", "ended_on", "effective_on"):
        value = getattr(event, name, None)
        if isinstance(value, date):
            return value
    raise TypeError(f"{type(event).__name__} has no effective date")


def retract_change(state: Household, p: Person, change_id: str) -> None:
    """Check the retraction of one of ``p``'s changes (appended to ``state``)."""
    _open(state)
    if change_id not in {c.event.change_id for c in p.changes}:
        raise Rejected(
            "change_not_found",
            f"no change {change_id} of this member",
            "この世帯員にその変化の記録はありません",
            status=404,
        )
    if change_id in p.retractions:
        raise Rejected(
            "change_already_retracted",
            "this change was already retracted",
            "この記録はすでに取り消されています",
        )


def same_people(
    survivors: list[Person],
    duplicates: list[Person],
    chosen: list[tuple[str, str]],
    *,
    household_id: str,
    merged_household_id: str,
    now: datetime,
) -> list[MembersCombined]:
    """The people of a merged record who are people of the surviving household: the
    pairs staff chose (``chosen``: survivor's member id, duplicate's member id), then
    every other pair with the same normalised name and the same birth date (when a name
    and birth date match more than one person, staff choose)."""
    pairs: list[tuple[Person, Person, PersonMatch]] = []
    taken: set[str] = set()
    for i, (mine, theirs) in enumerate(chosen):
        where = f"same_people.{i}"
        a = next((p for p in survivors if mine in p.member_ids), None)
        b = next((p for p in duplicates if theirs in p.member_ids), None)
        if a is None or b is None:
            raise invalid(
                f"{where}.{'member_id' if a is None else 'duplicate_member_id'}",
                "member_not_found",
                "member_id must be a member of this household and duplicate_member_id a "
                "member of the record merged into it",
                "member_id はこの世帯の、duplicate_member_id は統合する世帯の世帯員を"
                "指定してください",
            )
        if a.person_id in taken or b.person_id in taken:
            raise invalid(
                where,
                "person_paired_twice",
                "each person can be paired once",
                "同じ人を二度指定することはできません",
            )
        taken |= {a.person_id, b.person_id}
        pairs.append((a, b, PersonMatch.STAFF))

    def key(p: Person) -> tuple[str, date] | None:
        name, born = p.member.name, p.birth_date
        return (normalise_name(name), born) if name and born else None

    left = [p for p in survivors if p.person_id not in taken and key(p)]
    right = [p for p in duplicates if p.person_id not in taken and key(p)]
    for a in left:
        same = [b for b in right if key(b) == key(a)]
        if len(same) == 1 and sum(key(x) == key(a) for x in left) == 1:
            pairs.append((a, same[0], PersonMatch.NAME_AND_BIRTH_DATE))
    return [
        MembersCombined(
            household_id=household_id,
            member_id=a.person_id,
            same_member_id=b.person_id,
            merged_household_id=merged_household_id,
            matched_by=how,
            combined_at=now,
        )
        for a, b, how in pairs
    ]
