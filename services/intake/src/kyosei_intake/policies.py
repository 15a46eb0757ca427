"""Event policies of intake: what it does when other services' events arrive. Each
calls the same command a route calls, acting for the agency the event names.

- community ConcernNoticed (気づき): a consultation (channel 地域住民の気づき) at the
  agency the report is forwarded to, when the person asked for help; otherwise an
  outreach case there. The consultation is received at the kind of window that agency
  recorded for itself (PUT /agencies/{agency_id}/window; "other agency" until it
  has). The reporter's name and contact go with it only as far as the reporter
  agreed (``reporter_link``).
- coordination OutreachRequested: an outreach case at the agency asked to go.

Ids are derived from the incoming event, so a redelivery finds the stream already
there and does nothing (the consumer's processed-message mark guards this too).
"""

from __future__ import annotations

import uuid
from typing import Any

from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.community import ConcernNoticed, ReporterLink
from kyosei_events.catalogue.coordination import OutreachRequested
from kyosei_events.catalogue.intake import Channel, OutreachOrigin
from kyosei_events.policy import Policy, PolicyContext, policy
from kyosei_households import survivor_of
from kyosei_platform.application import CommandContext

from .commands.agencies import agency_in
from .commands.consultations import ReceiveConsultation, receive_consultation
from .commands.outreach import Origin, StartOutreach, start_outreach

_IDS = uuid.UUID("5b0c6f1e-9a43-4f7e-8d2a-6b1f0e3c2d10")


def derived_id(kind: str, source_id: str) -> str:
    return str(uuid.uuid5(_IDS, f"{kind}:{source_id}"))


def _context(ctx: PolicyContext, agency_id: str) -> CommandContext:
    return CommandContext.for_policy(ctx.uow.store, ctx.uow, ctx.caused_metadata(agency_id))


async def _known(ctx: CommandContext, household_id: str | None) -> str | None:
    """The household as intake knows it (following merges), or None if it does not."""
    if household_id is None:
        return None
    async with ctx.connect() as conn:
        return await survivor_of(conn, household_id)


@policy(ConcernNoticed)
async def concern_noticed(e: ConcernNoticed, ctx: PolicyContext) -> None:
    """ConcernNoticed (community) -> 相談受付, or アウトリーチ開始 when nobody asked for help."""
    command = _context(ctx, e.forward_to)
    household_id = await _known(command, e.household_id)
    # A blank name is no name: the request rules (kyosei_platform.requests) refuse it.
    named = e.reporter_link in (ReporterLink.NAME_ONLY, ReporterLink.MAY_CONTACT) and bool(
        (e.reporter_name or "").strip()
    )
    contact = e.reporter_contact if e.reporter_link is ReporterLink.MAY_CONTACT else None
    if e.person_asked_for_help:
        await receive_consultation(
            command,
            ReceiveConsultation(
                household_id=household_id,
                window=(await agency_in(command, e.forward_to)).window_for_reports,
                channel=Channel.COMMUNITY,
                concerns=e.concerns,
                other_concern=e.description if Concern.OTHER in e.concerns else None,
                summary=e.description,
                caller_name=e.reporter_name if named else None,
                caller_contact=contact,
                received_at=e.noticed_at,
            ),
            consultation_id=derived_id("consultation", e.concern_id),
            concern_report_id=e.concern_id,
        )
        return
    await start_outreach(
        command,
        StartOutreach(
            household_id=household_id,
            concerns=e.concerns,
            reason=e.description,
            location=e.location,
        ),
        Origin(
            origin=OutreachOrigin.COMMUNITY,
            origin_ref=e.concern_id,
            reporter_name=e.reporter_name if named else None,
            reporter_contact=contact,
        ),
        outreach_id=derived_id("outreach", e.concern_id),
    )


@policy(OutreachRequested)
async def outreach_requested(e: OutreachRequested, ctx: PolicyContext) -> None:
    """OutreachRequested (coordination) -> アウトリーチ開始 at the agency asked to go."""
    command = _context(ctx, e.outreach_agency)
    household_id = await _known(command, e.household_id)
    await start_outreach(
        command,
        StartOutreach(
            household_id=household_id,
            member_id=e.member_id if household_id else None,
            concerns=e.concerns,
            reason=e.reason,
        ),
        Origin(origin=OutreachOrigin.COORDINATION, origin_ref=e.case_id),
        outreach_id=derived_id("outreach", e.request_id),
    )


POLICIES: list[Policy[Any]] = [concern_noticed, outreach_requested]
