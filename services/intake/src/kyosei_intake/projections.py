"""Read models of intake, updated in the transaction of every append.

Personal fields never enter a read model: they stay sealed in the event store, so
erasing a household's key erases them everywhere. Search works on blind indexes
(keyed hashes of normalised terms, see search_terms.py). Every table is rebuilt from
events by ``kyosei rebuild intake``; nothing here reads the clock, so a rebuild gives
the same rows.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kyosei_events import DecodedEvent, UnitOfWork
from kyosei_events.catalogue.intake import (
    AccompanimentContinued,
    AccompanimentReviewed,
    CaseEscalated,
    ConsultationHandled,
    ConsultationLinkedToHousehold,
    ConsultationMovedToOutreach,
    ConsultationPlaceRegistered,
    ConsultationReceived,
    HouseholdRegistered,
    InformationProvided,
    MemberAdded,
    OutreachContactRecorded,
    OutreachEnded,
    OutreachStarted,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralMade,
    RelationshipStageChanged,
    UnmetNeedsRecorded,
)
from kyosei_events.direct import execute
from kyosei_platform.application import JST

from .search_terms import household_terms, member_terms

metadata = MetaData()

# Blind index: one row per (household, member, term). member_id "" = the household.
search_index = Table(
    "household_search_index",
    metadata,
    Column("household_id", String(64), primary_key=True),
    Column("member_id", String(64), primary_key=True),
    Column("token", String(32), primary_key=True),
    Index("ix_household_search_token", "token"),
)

# Agencies with a part in a household, and what part: the basis of access.
household_parties = Table(
    "household_parties",
    metadata,
    Column("household_id", String(64), primary_key=True),
    Column("agency_id", String(64), primary_key=True),
    Column("part", String(24), primary_key=True),
    Index("ix_household_parties_agency", "agency_id"),
)

consultations = Table(
    "consultations",
    metadata,
    Column("consultation_id", String(64), primary_key=True),
    Column("household_id", String(64), index=True),
    Column("member_ids", Text, nullable=False),  # JSON list: whom it is about
    Column("agency_id", String(64), nullable=False, index=True),
    Column("window", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("concerns", Text, nullable=False),
    Column("complex", Boolean, nullable=False),
    # pending / handled / information_given / accompanying / outreach / referred / escalated
    Column("status", String(24), nullable=False),
    Column("escalated", Boolean, nullable=False),
    Column("returned", Boolean, nullable=False),  # last referral declined, decide again
    Column("received_at", String(40), nullable=False, index=True),
    Column("outcome_at", String(40)),
    Column("concern_report_id", String(64)),
    Column("unmet_needs", Text, nullable=False),  # JSON list of UnmetNeed values
    Column("place_id", String(64)),  # the community place it was received at
    Column("received_month", String(7), nullable=False, index=True),  # YYYY-MM, JST
    Column("review_on", String(10), index=True),  # accompanying: the next review date
    Column("outreach_id", String(64)),  # outcome outreach: the case started from it
    Column("version", Integer, nullable=False),
)

# Community places of agencies (まちの保健室, 地域の縁側, …): no personal data.
consultation_places = Table(
    "consultation_places",
    metadata,
    Column("place_id", String(64), primary_key=True),
    Column("agency_id", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("registered_at", String(40), nullable=False),
)

referrals = Table(
    "referrals",
    metadata,
    Column("referral_id", String(64), primary_key=True),
    Column("consultation_id", String(64), nullable=False, index=True),
    Column("household_id", String(64), index=True),
    Column("from_agency", String(64), nullable=False, index=True),
    Column("to_agency", String(64), nullable=False, index=True),
    Column("concerns", Text, nullable=False),
    Column("status", String(16), nullable=False),  # made / accepted / declined / completed
    Column("decline_reason", String(32)),
    Column("made_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)

outreach_cases = Table(
    "outreach_cases",
    metadata,
    Column("outreach_id", String(64), primary_key=True),
    Column("household_id", String(64), index=True),
    Column("member_id", String(64)),
    Column("agency_id", String(64), nullable=False, index=True),
    Column("origin", String(16), nullable=False),
    Column("origin_ref", String(64)),
    Column("concerns", Text, nullable=False),
    Column("stage", String(24), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_result", String(24)),
    Column("last_contact_at", String(40)),
    Column("status", String(8), nullable=False),  # active / ended
    Column("started_at", String(40), nullable=False),
    Column("version", Integer, nullable=False),
)

TABLES = (
    search_index,
    household_parties,
    consultations,
    referrals,
    outreach_cases,
    consultation_places,
)


def utc(at: datetime) -> str:
    """Timestamps in read models: UTC ISO 8601, so string order is time order."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def day(on: date) -> str:
    return on.isoformat()


def month(at: datetime) -> str:
    """The municipality's month (JST) of a moment, ``YYYY-MM``: the monthly figures'."""
    return at.astimezone(JST).strftime("%Y-%m")


async def _insert_ignore(uow: UnitOfWork, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    insert = pg_insert if uow.conn.dialect.name == "postgresql" else sqlite_insert
    await uow.conn.execute(insert(table).on_conflict_do_nothing(), rows)


async def _party(uow: UnitOfWork, household_id: str | None, agency_id: str, part: str) -> None:
    if household_id:
        await _insert_ignore(
            uow,
            household_parties,
            [{"household_id": household_id, "agency_id": agency_id, "part": part}],
        )


async def _index(uow: UnitOfWork, household_id: str, member_id: str, terms: set[str]) -> None:
    blind = uow.store.vault.blind_index
    await _insert_ignore(
        uow,
        search_index,
        [
            {"household_id": household_id, "member_id": member_id, "token": blind(t)}
            for t in sorted(terms)
        ],
    )


# Built once: a statement built per call has its cache key generated again every time.
_INSERT_CONSULTATION = consultations.insert()


class IntakeReadModel:
    """Search index, parties, consultations, referrals, outreach. (Households, members,
    merges and consents are the shared household directory's: kyosei_households.)"""

    name = "intake.read_model"

    async def apply(self, uow: UnitOfWork, events: list[DecodedEvent]) -> None:
        # A consultation received and escalated by one command (``complex``): its row
        # is written once, as the escalation leaves it (one INSERT, not an INSERT and
        # an UPDATE).
        received: dict[str, Any] | None = None
        for d in events:
            e = d.event
            if (
                isinstance(e, CaseEscalated)
                and received is not None
                and received["consultation_id"] == e.consultation_id
            ):
                received.update(_escalated(e), version=d.recorded.version)
                await _party(uow, e.household_id, "*coordination", "escalated")
                continue
            if received is not None:
                await execute(uow.conn, _INSERT_CONSULTATION, received)
                received = None
            if isinstance(e, ConsultationReceived):
                received = _received_row(e, d.recorded.version)
                await _party(uow, e.household_id, e.agency_id, "consultation")
                continue
            await self._apply(uow, d)
        if received is not None:
            await execute(uow.conn, _INSERT_CONSULTATION, received)

    async def _apply(self, uow: UnitOfWork, d: DecodedEvent) -> None:
        e, version, conn = d.event, d.recorded.version, uow.conn
        match e:
            case HouseholdRegistered():
                await _party(uow, e.household_id, e.registered_by, "registered")
                await _index(uow, e.household_id, "", household_terms(e.address, e.phone))
            case MemberAdded():
                await _index(
                    uow, e.household_id, e.member_id, member_terms(e.name, e.kana, e.birth_date)
                )
            case ConsultationReceived():
                await execute(conn, _INSERT_CONSULTATION, _received_row(e, version))
                await _party(uow, e.household_id, e.agency_id, "consultation")
            case UnmetNeedsRecorded():
                await _consultation(
                    uow,
                    e.consultation_id,
                    version,
                    unmet_needs=json.dumps([n.value for n in e.unmet_needs]),
                )
            case InformationProvided():
                await _consultation(
                    uow,
                    e.consultation_id,
                    version,
                    status="information_given",
                    returned=False,
                    outcome_at=utc(e.provided_at),
                )
            case AccompanimentContinued():
                await _consultation(
                    uow,
                    e.consultation_id,
                    version,
                    status="accompanying",
                    returned=False,
                    review_on=day(e.review_on),
                    outcome_at=utc(e.continued_at),
                )
            case AccompanimentReviewed():
                await _consultation(
                    uow, e.consultation_id, version, review_on=day(e.next_review_on)
                )
            case ConsultationMovedToOutreach():
                await _consultation(
                    uow,
                    e.consultation_id,
                    version,
                    status="outreach",
                    returned=False,
                    outreach_id=e.outreach_id,
                    outcome_at=utc(e.moved_at),
                )
            case ConsultationPlaceRegistered():
                await conn.execute(
                    consultation_places.insert().values(
                        place_id=e.place_id,
                        agency_id=e.agency_id,
                        name=e.name,
                        kind=e.kind.value,
                        registered_at=utc(e.registered_at),
                    )
                )
            case ConsultationLinkedToHousehold():
                await _consultation(uow, e.consultation_id, version, household_id=e.household_id)
                await conn.execute(
                    update(referrals)
                    .where(referrals.c.consultation_id == e.consultation_id)
                    .values(household_id=e.household_id)
                )
                await _reparent_parties(uow, e.consultation_id, e.household_id)
            case ConsultationHandled():
                await _consultation(
                    uow,
                    e.consultation_id,
                    version,
                    status="handled",
                    returned=False,
                    outcome_at=utc(e.handled_at),
                )
            case ReferralMade():
                await conn.execute(
                    referrals.insert().values(
                        referral_id=e.referral_id,
                        consultation_id=e.consultation_id,
                        household_id=e.household_id,
                        from_agency=e.from_agency,
                        to_agency=e.to_agency,
                        concerns=json.dumps([c.value for c in e.concerns]),
                        status="made",
                        decline_reason=None,
                        made_at=utc(e.made_at),
                        updated_at=utc(e.made_at),
                    )
                )
                await _consultation(
                    uow,
                    e.consultation_id,
                    version,
                    status="referred",
                    returned=False,
                    outcome_at=utc(e.made_at),
                )
                await _party(uow, e.household_id, e.to_agency, "referral")
            case ReferralAccepted():
                await _referral(uow, e.referral_id, "accepted", e.accepted_at)
                await _consultation(uow, e.consultation_id, version)
            case ReferralDeclined():
                await _referral(uow, e.referral_id, "declined", e.declined_at, e.reason.value)
                # Back to the sender: the consultation needs an outcome again.
                await conn.execute(
                    update(consultations)
                    .where(
                        consultations.c.consultation_id == e.consultation_id,
                        consultations.c.status == "referred",
                    )
                    .values(status="pending", returned=True, outcome_at=None)
                )
                await _consultation(uow, e.consultation_id, version)
            case ReferralCompleted():
                await _referral(uow, e.referral_id, "completed", e.completed_at)
                await _consultation(uow, e.consultation_id, version)
            case CaseEscalated():
                await _consultation(uow, e.consultation_id, version, **_escalated(e))
                await _party(uow, e.household_id, "*coordination", "escalated")
            case OutreachStarted():
                await conn.execute(
                    outreach_cases.insert().values(
                        outreach_id=e.outreach_id,
                        household_id=e.household_id,
                        member_id=e.member_id,
                        agency_id=e.agency_id,
                        origin=e.origin.value,
                        origin_ref=e.origin_ref,
                        concerns=json.dumps([c.value for c in e.concerns]),
                        stage="not_reached",
                        attempts=0,
                        last_result=None,
                        last_contact_at=None,
                        status="active",
                        started_at=utc(e.started_at),
                        version=version,
                    )
                )
                await _party(uow, e.household_id, e.agency_id, "outreach")
            case OutreachContactRecorded():
                await _outreach(
                    uow,
                    e.outreach_id,
                    version,
                    attempts=e.attempt,
                    last_result=e.result.value,
                    last_contact_at=utc(e.contacted_at),
                )
            case RelationshipStageChanged():
                await _outreach(uow, e.outreach_id, version, stage=e.stage.value)
            case OutreachEnded():
                await _outreach(uow, e.outreach_id, version, status="ended")

    async def reset(self, uow: UnitOfWork) -> None:
        for table in TABLES:
            await uow.conn.execute(delete(table))


def _received_row(e: ConsultationReceived, version: int) -> dict[str, Any]:
    return {
        "consultation_id": e.consultation_id,
        "household_id": e.household_id,
        "member_ids": json.dumps(e.member_ids),
        "agency_id": e.agency_id,
        "window": e.window.value,
        "channel": e.channel.value,
        "concerns": json.dumps([c.value for c in e.concerns]),
        "complex": e.complex,
        "status": "pending",
        "escalated": False,
        "returned": False,
        "received_at": utc(e.received_at),
        "outcome_at": None,
        "concern_report_id": e.concern_report_id,
        "unmet_needs": json.dumps([n.value for n in e.unmet_needs]),
        "place_id": e.place_id,
        "received_month": month(e.received_at),
        "review_on": None,
        "outreach_id": None,
        "version": version,
    }


def _escalated(e: CaseEscalated) -> dict[str, Any]:
    return {
        "status": "escalated",
        "escalated": True,
        "returned": False,
        "outcome_at": utc(e.escalated_at),
    }


async def _consultation(uow: UnitOfWork, consultation_id: str, version: int, **values: Any) -> None:
    await uow.conn.execute(
        update(consultations)
        .where(consultations.c.consultation_id == consultation_id)
        .values(version=version, **values)
    )


async def _referral(
    uow: UnitOfWork, referral_id: str, status: str, at: datetime, reason: str | None = None
) -> None:
    values: dict[str, Any] = {"status": status, "updated_at": utc(at)}
    if reason is not None:
        values["decline_reason"] = reason
    await uow.conn.execute(
        update(referrals).where(referrals.c.referral_id == referral_id).values(**values)
    )


async def _outreach(uow: UnitOfWork, outreach_id: str, version: int, **values: Any) -> None:
    await uow.conn.execute(
        update(outreach_cases)
        .where(outreach_cases.c.outreach_id == outreach_id)
        .values(version=version, **values)
    )


async def _reparent_parties(uow: UnitOfWork, consultation_id: str, household_id: str) -> None:
    """A consultation linked to a household gives its agencies a part in the household."""
    row = (
        await uow.conn.execute(
            select(consultations.c.agency_id, consultations.c.escalated).where(
                consultations.c.consultation_id == consultation_id
            )
        )
    ).one()
    await _party(uow, household_id, row.agency_id, "consultation")
    if row.escalated:
        await _party(uow, household_id, "*coordination", "escalated")
    for (to_agency,) in await uow.conn.execute(
        select(referrals.c.to_agency).where(referrals.c.consultation_id == consultation_id)
    ):
        await _party(uow, household_id, to_agency, "referral")
