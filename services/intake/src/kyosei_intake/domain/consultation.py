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
from kyosei_platform.application import Rejected, invalid, wrong_state


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
        raise wrong_state(
            "already_linked",
            f"the consultation is already linked to household {household_id}",
            "この相談はすでにその世帯に紐づいています",
            "nothing more to do",
            "操作は不要です",
        )
    if state.household_id is not None:
        raise wrong_state(
            "linked_to_another_household",
            f"the consultation is already linked to household {state.household_id}",
            f"この相談はすでに世帯 {state.household_id} に紐づいています",
            "if the two records are the same household, merge them (POST /households/{id}/merge)",
            "同じ世帯なら世帯統合をしてください",
        )
    return ConsultationLinkedToHousehold(
        consultation_id=state.consultation_id, household_id=household_id, linked_at=now
    )


def must_be_pending(state: Consultation) -> None:
    """An outcome is decided once; the refusal says which one, and what may still be done."""
    match state.outcome:
        case Outcome.PENDING:
            return
        case Outcome.HANDLED:
            raise wrong_state(
                "outcome_already_decided",
                "this consultation is already handled by the receiving agency",
                "この相談はすでに受付機関で対応済みです",
                "its outcome is recorded; if it now needs several agencies, escalate it "
                "to 多機関協働 (POST /consultations/{id}/escalation)",
                "複数機関での対応が必要になった場合は多機関協働につないでください",
            )
        case Outcome.INFORMATION_GIVEN:
            raise wrong_state(
                "outcome_already_decided",
                "this consultation is already closed with information or advice given",
                "この相談はすでに情報提供・助言で終結しています",
                "if the person comes back with a new need, receive it as a new consultation",
                "新たな相談があれば、新しい相談として受け付けてください",
            )
        case Outcome.ACCOMPANYING:
            raise wrong_state(
                "outcome_already_decided",
                "this consultation is already in continuing accompaniment (伴走継続)",
                "この相談はすでに伴走継続としています",
                "record its reviews (POST /consultations/{id}/accompaniment/review); if it "
                "now needs several agencies, escalate it to 多機関協働",
                "振り返りを記録してください。複数機関での対応が必要なら多機関協働につないでください",
            )
        case Outcome.OUTREACH:
            raise wrong_state(
                "outcome_already_decided",
                "an outreach case was already started from this consultation",
                "この相談からすでにアウトリーチを開始しています",
                "record the steps on its outreach case (GET /outreach/{outreach_id})",
                "以後の対応はアウトリーチの記録で行ってください",
            )
        case Outcome.REFERRED:
            to = sorted(
                r.to_agency
                for r in state.referrals.values()
                if r.status in (ReferralStatus.MADE, ReferralStatus.ACCEPTED)
            )
            raise wrong_state(
                "outcome_already_decided",
                f"this consultation is already referred to {', '.join(to) or 'another agency'}",
                f"この相談はすでに {'、'.join(to) or '他の機関'} につないでいます",
                "wait for that agency's answer: if it declines, the consultation comes back "
                "to you to decide again; to involve several agencies, escalate it",
                "つなぎ先の応答を待ってください (辞退されると戻ってきます)。"
                "複数機関での対応が必要なら多機関協働につないでください",
            )
        case Outcome.ESCALATED:
            raise wrong_state(
                "outcome_already_decided",
                "this consultation is already escalated to 多機関協働",
                "この相談はすでに多機関協働につないでいます",
                "its coordination case carries it on (GET /cases?consultation_id= in "
                "coordination); record further steps there",
                "以後の対応は多機関協働のケースで記録してください",
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


# Where a referral stands, as said to the agency that tries to act on it.
_REFERRAL_IS = {
    ReferralStatus.MADE: (
        "this referral is not accepted yet",
        "このつなぎはまだ受理されていません",
    ),
    ReferralStatus.ACCEPTED: (
        "this referral is already accepted",
        "このつなぎはすでに受理済みです",
    ),
    ReferralStatus.DECLINED: (
        "this referral is already declined",
        "このつなぎはすでに辞退済みです",
    ),
    ReferralStatus.COMPLETED: (
        "this referral is already completed",
        "このつなぎはすでに完了しています",
    ),
}
_NOTHING_MORE = ("nothing more to do", "これ以上の操作は不要です")
_SENDER_DECIDES = (
    "the sending agency decides the consultation again (it may refer it anew)",
    "つなぎ元の機関が対応を決め直します (改めてつなぐこともできます)",
)
# What to do instead, by what was tried and where the referral stands.
_REFERRAL_ADVICE = {
    ("accept", ReferralStatus.ACCEPTED): (
        "nothing more to do now; complete it when the support asked for is done "
        "(POST /referrals/{id}/completion)",
        "支援が終わったら完了にしてください",
    ),
    ("accept", ReferralStatus.DECLINED): _SENDER_DECIDES,
    ("accept", ReferralStatus.COMPLETED): _NOTHING_MORE,
    ("decline", ReferralStatus.DECLINED): _NOTHING_MORE,
    ("decline", ReferralStatus.COMPLETED): (
        "a completed referral cannot be declined; nothing more to do",
        "完了したつなぎは辞退できません",
    ),
    ("complete", ReferralStatus.MADE): (
        "accept it first (POST /referrals/{id}/acceptance), then complete it",
        "先に受理してから完了にしてください",
    ),
    ("complete", ReferralStatus.DECLINED): _SENDER_DECIDES,
    ("complete", ReferralStatus.COMPLETED): _NOTHING_MORE,
}


def _referral_refusal(r: Referral, action: str) -> Rejected:
    """Why ``action`` cannot be done on the referral now, and what to do instead."""
    state, state_ja = _REFERRAL_IS[r.status]
    advice, advice_ja = _REFERRAL_ADVICE[(action, r.status)]
    code = (
        "referral_not_accepted"
        if r.status is ReferralStatus.MADE
        else (f"referral_already_{r.status.value}")
    )
    return wrong_state(code, state, state_ja, advice, advice_ja)


def accept(state: Consultation, referral_id: str, agency_id: str, now: datetime) -> DomainEvent:
    r = _referral(state, referral_id, agency_id)
    if r.status is not ReferralStatus.MADE:
        raise _referral_refusal(r, "accept")
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
        raise _referral_refusal(r, "decline")
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
        raise _referral_refusal(r, "complete")
    return ReferralCompleted.model_validate({**_ids(state, r), "note": note, "completed_at": now})


def escalate(state: Consultation, reason: str, now: datetime) -> CaseEscalated:
    """多機関協働へ: allowed at any time, even after another outcome, but once."""
    if state.escalated:
        raise wrong_state(
            "already_escalated",
            "this consultation is already escalated to 多機関協働",
            "この相談はすでに多機関協働につないでいます",
            "nothing more to do: its coordination case is open (GET /cases?consultation_id= "
            "in coordination)",
            "多機関協働のケースはすでに開始されています",
        )
    return CaseEscalated(
        consultation_id=state.consultation_id,
        household_id=state.household_id,
        agency_id=state.agency_id,
        concerns=state.concerns,
        reason=reason,
        escalated_at=now,
    )
