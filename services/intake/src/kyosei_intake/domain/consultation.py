"""The consultation (相談): received at any window, never refused, held to an outcome.

Every consultation gets an outcome: handled by the receiving agency, information or
advice given (情報提供・助言), continuing accompaniment (伴走継続: open by design,
reviewed on a date, never unresolved), an outreach case started from it (アウトリーチへ),
referred (つなぎ) to another agency, or escalated to 多機関協働. A referral that is
declined sends the consultation back to the sender, outcome pending again, so it
never falls into a void. Its referrals live on its stream, so one version number
guards the whole closed loop. The decisions of the later outcomes and of the
unmet-need types are in :mod:`.outcomes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from kyosei_events.catalogue.common import Concern, UnmetNeed
from kyosei_events.catalogue.intake import (
    BROUGHT_CHANNELS,
    AccompanimentContinued,
    AccompanimentReviewed,
    CaseEscalated,
    Channel,
    ConsultationHandled,
    ConsultationLinkedToHousehold,
    ConsultationMovedToOutreach,
    ConsultationReceived,
    DeclineReason,
    InformationProvided,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralMade,
    UnmetNeedsRecorded,
    Window,
)
from kyosei_events.model import DomainEvent
from kyosei_households import COORDINATION
from kyosei_platform.application import Rejected, invalid


class Outcome(StrEnum):
    PENDING = "pending"
    HANDLED = "handled"
    INFORMATION_GIVEN = "information_given"  # 情報提供・助言: closed
    ACCOMPANYING = "accompanying"  # 伴走継続: open by design, reviewed on a date
    OUTREACH = "outreach"  # アウトリーチへ: an outreach case was started from it
    REFERRED = "referred"
    ESCALATED = "escalated"


class ReferralStatus(StrEnum):
    MADE = "made"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    COMPLETED = "completed"


@dataclass
class Referral:
    referral_id: str
    from_agency: str
    to_agency: str
    concerns: list[Concern]
    note: str | None
    made_at: datetime
    status: ReferralStatus = ReferralStatus.MADE
    decline_reason: DeclineReason | None = None
    outcome_note: str | None = None
    updated_at: datetime | None = None


@dataclass
class Consultation:
    consultation_id: str
    agency_id: str = ""
    household_id: str | None = None
    member_ids: list[str] = field(default_factory=list)
    window: Window | None = None
    channel: Channel | None = None
    concerns: list[Concern] = field(default_factory=list)
    other_concern: str | None = None
    summary: str | None = None
    caller_name: str | None = None
    caller_contact: str | None = None
    complex: bool = False
    concern_report_id: str | None = None
    unmet_needs: list[UnmetNeed] = field(default_factory=list)
    place_id: str | None = None
    brought_by: str | None = None
    brought_by_agency: str | None = None
    received_at: datetime | None = None
    outcome: Outcome = Outcome.PENDING
    outcome_at: datetime | None = None
    handled_note: str | None = None
    information_note: str | None = None
    review_on: date | None = None  # accompanying: when it is next reviewed
    accompaniment_note: str | None = None
    outreach_id: str | None = None
    escalated: bool = False
    escalation_reason: str | None = None
    returned: bool = False  # the last referral was declined: the sender must decide again
    referrals: dict[str, Referral] = field(default_factory=dict)
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def open_referral(self) -> Referral | None:
        for r in self.referrals.values():
            if r.status in (ReferralStatus.MADE, ReferralStatus.ACCEPTED):
                return r
        return None

    def parties(self) -> set[str]:
        """Agencies with a part in this consultation: the receiver, referral parties and,
        once escalated, coordination."""
        out = {self.agency_id, COORDINATION} if self.escalated else {self.agency_id}
        for r in self.referrals.values():
            out |= {r.from_agency, r.to_agency}
        return out

    def evolve(self, event: DomainEvent) -> None:
        match event:
            case ConsultationReceived():
                self.agency_id = event.agency_id
                self.household_id = event.household_id
                self.member_ids = list(event.member_ids)
                self.window, self.channel = event.window, event.channel
                self.concerns = list(event.concerns)
                self.other_concern = event.other_concern
                self.summary = event.summary
                self.caller_name, self.caller_contact = event.caller_name, event.caller_contact
                self.complex, self.received_at = event.complex, event.received_at
                self.concern_report_id = event.concern_report_id
                self.unmet_needs = list(event.unmet_needs)
                self.place_id = event.place_id
                self.brought_by, self.brought_by_agency = event.brought_by, event.brought_by_agency
            case UnmetNeedsRecorded():
                self.unmet_needs = list(event.unmet_needs)
            case InformationProvided():
                self._decided(Outcome.INFORMATION_GIVEN, event.provided_at)
                self.information_note = event.note
            case AccompanimentContinued():
                self._decided(Outcome.ACCOMPANYING, event.continued_at)
                self.review_on, self.accompaniment_note = event.review_on, event.note
            case AccompanimentReviewed():
                self.review_on, self.accompaniment_note = event.next_review_on, event.note
            case ConsultationMovedToOutreach():
                self._decided(Outcome.OUTREACH, event.moved_at)
                self.outreach_id = event.outreach_id
            case ConsultationLinkedToHousehold():
                self.household_id = event.household_id
            case ConsultationHandled():
                self._decided(Outcome.HANDLED, event.handled_at)
                self.handled_note = event.note
            case ReferralMade():
                self.referrals[event.referral_id] = Referral(
                    event.referral_id,
                    event.from_agency,
                    event.to_agency,
                    list(event.concerns),
                    event.note,
                    event.made_at,
                )
                if not self.escalated:
                    self._decided(Outcome.REFERRED, event.made_at)
            case ReferralAccepted():
                r = self.referrals[event.referral_id]
                r.status, r.updated_at = ReferralStatus.ACCEPTED, event.accepted_at
            case ReferralDeclined():
                r = self.referrals[event.referral_id]
                r.status, r.updated_at = ReferralStatus.DECLINED, event.declined_at
                r.decline_reason, r.outcome_note = event.reason, event.note
                if self.outcome is Outcome.REFERRED and self.open_referral is None:
                    self.outcome, self.outcome_at, self.returned = Outcome.PENDING, None, True
            case ReferralCompleted():
                r = self.referrals[event.referral_id]
                r.status, r.updated_at = ReferralStatus.COMPLETED, event.completed_at
                r.outcome_note = event.note
            case CaseEscalated():
                self.escalated = True
                self.escalation_reason = event.reason
                self._decided(Outcome.ESCALATED, event.escalated_at)
        self.version += 1

    def _decided(self, outcome: Outcome, at: datetime) -> None:
        self.outcome, self.outcome_at, self.returned = outcome, at, False


def receive(
    received: ConsultationReceived,
    escalation_reason: str | None,
    now: datetime,
    members: frozenset[str] = frozenset(),
    places: frozenset[str] = frozenset(),
) -> list[DomainEvent]:
    """Record a consultation; a complex one is escalated in the same step.

    Never refused for its concern: any window takes any concern. The rules are that
    その他 (other) says in words what it is about, that the members it is about
    belong to its household (``members``), that a consultation at a community place
    names one of the receiving agency's places (``places``), and that "brought by"
    channels say who brought it.
    """
    _where_and_how(received, places)
    if received.member_ids and received.household_id is None:
        raise invalid(
            "member_ids",
            "members_without_household",
            "name members only together with their household_id",
            "世帯員を指定するときは household_id も指定してください",
        )
    if unknown := set(received.member_ids) - members:
        raise invalid(
            "member_ids",
            "member_not_found",
            f"not members of household {received.household_id}: {', '.join(sorted(unknown))}",
            "その世帯の世帯員ではありません",
        )
    if Concern.OTHER in received.concerns and not (received.other_concern or "").strip():
        raise invalid(
            "other_concern",
            "other_concern_required",
            "with concern 'other', say in other_concern what it is about",
            "「その他」を選んだときは other_concern に内容を書いてください",
        )
    events: list[DomainEvent] = [received]
    if received.complex:
        events.append(
            CaseEscalated(
                consultation_id=received.consultation_id,
                household_id=received.household_id,
                agency_id=received.agency_id,
                concerns=received.concerns,
                reason=escalation_reason or received.summary,
                escalated_at=now,
            )
        )
    return events


def _where_and_how(received: ConsultationReceived, places: frozenset[str]) -> None:
    """The place and the "brought by" fields agree with the window and the channel."""
    at_place = received.window is Window.COMMUNITY_PLACE or received.channel is Channel.DROP_IN
    if at_place and received.place_id is None:
        raise invalid(
            "place_id",
            "place_required",
            "a consultation at a community place (window community_place or channel "
            "drop_in) names the place: register it under /agencies/{agency_id}/places",
            "地域の相談の場で受けた相談は place_id でその場を指定してください"
            "（/agencies/{agency_id}/places で登録します）",
        )
    if received.place_id is not None and received.place_id not in places:
        raise invalid(
            "place_id",
            "place_not_found",
            f"{received.place_id} is not a community place of agency {received.agency_id}",
            "受付機関の地域の相談の場として登録されていません",
        )
    if received.channel is Channel.BROUGHT_BY_AGENCY and received.brought_by_agency is None:
        raise invalid(
            "brought_by_agency",
            "brought_by_agency_required",
            "with channel brought_by_agency, name the agency in brought_by_agency",
            "「他機関がつないだ」ときは brought_by_agency に機関を指定してください",
        )
    if received.brought_by_agency is not None and received.channel is not Channel.BROUGHT_BY_AGENCY:
        raise invalid(
            "brought_by_agency",
            "not_brought_by_agency",
            "brought_by_agency goes with channel brought_by_agency only",
            "brought_by_agency は経路が「他機関がつないだ」ときだけ指定できます",
        )
    if received.brought_by is not None and received.channel not in BROUGHT_CHANNELS:
        raise invalid(
            "brought_by",
            "not_brought",
            "brought_by goes with a channel brought_by_family, brought_by_neighbour or "
            "brought_by_agency only",
            "brought_by は経路が「家族・近隣住民・他機関がつないだ」ときだけ指定できます",
        )


def link_household(state: Consultation, household_id: str, now: datetime) -> DomainEvent:
    if state.household_id == household_id:
        raise Rejected(
            "already_linked",
            f"the consultation is already linked to household {household_id}",
            "この相談はすでにその世帯に紐づいています",
        )
    if state.household_id is not None:
        raise Rejected(
            "linked_to_another_household",
            f"the consultation is linked to household {state.household_id}; "
            "merge the two households if they are the same",
            f"この相談は世帯 {state.household_id} に紐づいています。"
            "同じ世帯なら世帯統合をしてください",
        )
    return ConsultationLinkedToHousehold(
        consultation_id=state.consultation_id, household_id=household_id, linked_at=now
    )


def must_be_pending(state: Consultation) -> None:
    if state.outcome is not Outcome.PENDING:
        raise Rejected(
            "outcome_already_decided",
            f"this consultation's outcome is already decided ({state.outcome.value})",
            "この相談の対応はすでに決まっています",
        )


def handle(state: Consultation, note: str | None, now: datetime) -> DomainEvent:
    """受付機関で対応: the receiving agency takes it on itself."""
    must_be_pending(state)
    return ConsultationHandled(
        consultation_id=state.consultation_id,
        household_id=state.household_id,
        agency_id=state.agency_id,
        note=note,
        handled_at=now,
    )


def refer(
    state: Consultation,
    referral_id: str,
    to_agency: str,
    concerns: list[Concern] | None,
    note: str | None,
    now: datetime,
) -> DomainEvent:
    """つなぎ: refer the consultation to another agency."""
    must_be_pending(state)
    if to_agency == state.agency_id:
        raise invalid(
            "to_agency",
            "referral_to_self",
            "a referral goes to another agency; to handle it yourself, record it as handled",
            "つなぎ先は他の機関にしてください。自機関で対応する場合は「対応」を記録してください",
        )
    return ReferralMade(
        referral_id=referral_id,
        consultation_id=state.consultation_id,
        household_id=state.household_id,
        from_agency=state.agency_id,
        to_agency=to_agency,
        concerns=concerns or state.concerns,
        note=note,
        made_at=now,
    )


def _referral(state: Consultation, referral_id: str, agency_id: str) -> Referral:
    r = state.referrals.get(referral_id)
    if r is None:
        raise Rejected(
            "referral_not_found",
            f"no referral {referral_id}",
            "該当するつなぎがありません",
            status=404,
        )
    if r.to_agency != agency_id:
        raise Rejected(
            "not_the_receiving_agency",
            f"only the receiving agency ({r.to_agency}) may answer this referral",
            "このつなぎに応答できるのはつなぎ先の機関だけです",
            status=403,
        )
    return r


def _ids(state: Consultation, r: Referral) -> dict[str, str | None]:
    return {
        "referral_id": r.referral_id,
        "consultation_id": state.consultation_id,
        "household_id": state.household_id,
        "from_agency": r.from_agency,
        "to_agency": r.to_agency,
    }


def accept(state: Consultation, referral_id: str, agency_id: str, now: datetime) -> DomainEvent:
    r = _referral(state, referral_id, agency_id)
    if r.status is not ReferralStatus.MADE:
        raise Rejected(
            "referral_not_open",
            f"the referral is {r.status.value}; only a new referral can be accepted",
            "このつなぎは受理できる状態ではありません",
        )
    return ReferralAccepted.model_validate({**_ids(state, r), "accepted_at": now})


def decline(
    state: Consultation,
    referral_id: str,
    agency_id: str,
    reason: DeclineReason,
    note: str | None,
    now: datetime,
) -> DomainEvent:
    r = _referral(state, referral_id, agency_id)
    if r.status not in (ReferralStatus.MADE, ReferralStatus.ACCEPTED):
        raise Rejected(
            "referral_not_open",
            f"the referral is {r.status.value} and can no longer be declined",
            "このつなぎはすでに終了しています",
        )
    if reason is DeclineReason.OTHER and not (note or "").strip():
        raise invalid(
            "note",
            "note_required",
            "with reason 'other', say why in note",
            "理由が「その他」のときは note に理由を書いてください",
        )
    return ReferralDeclined.model_validate(
        {**_ids(state, r), "reason": reason, "note": note, "declined_at": now}
    )


def complete(
    state: Consultation, referral_id: str, agency_id: str, note: str | None, now: datetime
) -> DomainEvent:
    r = _referral(state, referral_id, agency_id)
    if r.status is not ReferralStatus.ACCEPTED:
        raise Rejected(
            "referral_not_accepted",
            f"the referral is {r.status.value}; accept it before completing it",
            "完了にする前につなぎを受理してください",
        )
    return ReferralCompleted.model_validate({**_ids(state, r), "note": note, "completed_at": now})


def escalate(state: Consultation, reason: str, now: datetime) -> CaseEscalated:
    """多機関協働へ: allowed at any time, even after another outcome, but once."""
    if state.escalated:
        raise Rejected(
            "already_escalated",
            "this consultation is already escalated",
            "この相談はすでに多機関協働につないでいます",
        )
    return CaseEscalated(
        consultation_id=state.consultation_id,
        household_id=state.household_id,
        agency_id=state.agency_id,
        concerns=state.concerns,
        reason=reason,
        escalated_at=now,
    )
