"""Event policies of intake: what it does when other services' events arrive.

- community ConcernNoticed (気づき): a consultation (channel 地域住民の気づき) at the
  agency the report is forwarded to, when the person asked for help; otherwise an
  outreach case there. The reporter's name and contact go with it only as far as
  the reporter agreed (``reporter_link``).
- coordination OutreachRequested: an outreach case at the agency asked to go.

Ids are derived from the incoming event, so a redelivery finds the stream already
there and does nothing (the consumer's processed-message mark guards this too).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from kyosei_events import NewEvent, PolicyContext, UnitOfWork, policy
from kyosei_events.catalogue.community import ConcernNoticed, ReporterLink
from kyosei_events.catalogue.coordination import OutreachRequested
from kyosei_events.catalogue.intake import (
    Channel,
    ConsultationReceived,
    OutreachOrigin,
    OutreachStarted,
    Window,
)
from kyosei_events.model import DomainEvent

from .queries import survivor_of

_IDS = uuid.UUID("5b0c6f1e-9a43-4f7e-8d2a-6b1f0e3c2d10")


def derived_id(kind: str, source_id: str) -> str:
    return str(uuid.uuid5(_IDS, f"{kind}:{source_id}"))


async def _known_household(uow: UnitOfWork, household_id: str | None) -> str | None:
    """The household as intake knows it (following merges), or None if it does not."""
    return None if household_id is None else await survivor_of(uow.conn, household_id)


async def _start(
    ctx: PolicyContext,
    stream_id: str,
    event: DomainEvent,
    subject: str,
    agency_id: str,
) -> None:
    if await ctx.uow.stream_version(stream_id) > 0:
        return
    await ctx.uow.append(
        stream_id, [NewEvent(event, subject, ctx.caused_metadata(agency_id=agency_id))], 0
    )


@policy(ConcernNoticed)
async def concern_noticed(e: ConcernNoticed, ctx: PolicyContext) -> None:
    """ConcernNoticed (community) -> ConsultationReceived or OutreachStarted."""
    household_id = await _known_household(ctx.uow, e.household_id)
    now = datetime.now(UTC)
    named = e.reporter_link in (ReporterLink.NAME_ONLY, ReporterLink.MAY_CONTACT)
    contact = e.reporter_contact if e.reporter_link is ReporterLink.MAY_CONTACT else None
    if e.person_asked_for_help:
        cid = derived_id("consultation", e.concern_id)
        received = ConsultationReceived(
            consultation_id=cid,
            household_id=household_id,
            agency_id=e.forward_to,
            window=Window.OTHER_AGENCY,
            channel=Channel.COMMUNITY,
            concerns=e.concerns,
            other_concern=None if "other" not in e.concerns else e.description,
            summary=e.description,
            caller_name=e.reporter_name if named else None,
            caller_contact=contact,
            concern_report_id=e.concern_id,
            received_at=e.noticed_at,
        )
        await _start(ctx, f"consultation-{cid}", received, household_id or cid, e.forward_to)
        return
    oid = derived_id("outreach", e.concern_id)
    started = OutreachStarted(
        outreach_id=oid,
        household_id=household_id,
        agency_id=e.forward_to,
        origin=OutreachOrigin.COMMUNITY,
        origin_ref=e.concern_id,
        concerns=e.concerns,
        reason=e.description,
        location=e.location,
        reporter_name=e.reporter_name if named else None,
        reporter_contact=contact,
        started_at=now,
    )
    await _start(ctx, f"outreach-{oid}", started, household_id or oid, e.forward_to)


@policy(OutreachRequested)
async def outreach_requested(e: OutreachRequested, ctx: PolicyContext) -> None:
    """OutreachRequested (coordination) -> OutreachStarted at the agency asked to go."""
    household_id = await _known_household(ctx.uow, e.household_id)
    oid = derived_id("outreach", e.request_id)
    started = OutreachStarted(
        outreach_id=oid,
        household_id=household_id,
        member_id=e.member_id if household_id else None,
        agency_id=e.outreach_agency,
        origin=OutreachOrigin.COORDINATION,
        origin_ref=e.case_id,
        concerns=e.concerns,
        reason=e.reason,
        location=None,
        reporter_name=None,
        reporter_contact=None,
        started_at=datetime.now(UTC),
    )
    await _start(ctx, f"outreach-{oid}", started, household_id or oid, e.outreach_agency)
