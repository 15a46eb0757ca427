"""The outcomes that keep a consultation's person in view, and why it is hard to help.

- 情報提供・助言 (information or advice given): closed, like handled.
- 伴走継続 (continuing accompaniment): open by design, reviewed on a date, never
  counted as unresolved (つながり続ける支援 is a success, not a backlog).
- アウトリーチへ: an outreach case started from the consultation; the consultation
  names the outreach and the outreach names the consultation.
- 支援が届きにくい理由 (unmet-need types): recorded at receipt or later.

Each is decided by the receiving agency on a consultation still without an outcome
(the unmet-need types at any time).
"""

from __future__ import annotations

from datetime import date, datetime

from kyosei_events.catalogue.common import UnmetNeed
from kyosei_events.catalogue.intake import (
    AccompanimentContinued,
    AccompanimentReviewed,
    ConsultationMovedToOutreach,
    InformationProvided,
    UnmetNeedsRecorded,
)
from kyosei_platform.application import Rejected, invalid

from .consultation import Consultation, Outcome, must_be_pending


def record_unmet_needs(
    state: Consultation, unmet_needs: list[UnmetNeed], now: datetime
) -> UnmetNeedsRecorded:
    """Replace the recorded unmet-need types (an empty list: none applies)."""
    needs = list(dict.fromkeys(unmet_needs))
    if needs == state.unmet_needs:
        raise Rejected(
            "unmet_needs_unchanged",
            "these unmet-need types are already recorded",
            "同じ「支援が届きにくい理由」がすでに記録されています",
        )
    return UnmetNeedsRecorded(
        consultation_id=state.consultation_id,
        household_id=state.household_id,
        agency_id=state.agency_id,
        unmet_needs=needs,
        recorded_at=now,
    )


def provide_information(
    state: Consultation, note: str | None, now: datetime
) -> InformationProvided:
    """情報提供・助言: information or advice was enough; the consultation is closed."""
    must_be_pending(state)
    return InformationProvided(
        consultation_id=state.consultation_id,
        household_id=state.household_id,
        agency_id=state.agency_id,
        note=note,
        provided_at=now,
    )


def _review_date(field: str, review_on: date, today: date) -> None:
    if review_on < today:
        raise invalid(
            field,
            "review_date_in_the_past",
            f"the review date {review_on.isoformat()} is in the past",
            "振り返りの日付が過去になっています",
        )


def continue_accompaniment(
    state: Consultation, review_on: date, note: str | None, today: date, now: datetime
) -> AccompanimentContinued:
    """伴走継続: keep accompanying the person, next reviewed on ``review_on``."""
    must_be_pending(state)
    _review_date("review_on", review_on, today)
    return AccompanimentContinued(
        consultation_id=state.consultation_id,
        household_id=state.household_id,
        agency_id=state.agency_id,
        review_on=review_on,
        note=note,
        continued_at=now,
    )


def review_accompaniment(
    state: Consultation, next_review_on: date, note: str | None, today: date, now: datetime
) -> AccompanimentReviewed:
    """伴走の振り返り: the accompaniment goes on until the next review date."""
    if state.outcome is not Outcome.ACCOMPANYING:
        raise Rejected(
            "not_accompanying",
            f"only an accompaniment is reviewed; this consultation is {state.outcome.value}",
            "振り返りができるのは伴走継続中の相談だけです",
        )
    _review_date("next_review_on", next_review_on, today)
    return AccompanimentReviewed(
        consultation_id=state.consultation_id,
        household_id=state.household_id,
        agency_id=state.agency_id,
        next_review_on=next_review_on,
        note=note,
        reviewed_at=now,
    )


def move_to_outreach(
    state: Consultation, outreach_id: str, now: datetime
) -> ConsultationMovedToOutreach:
    """アウトリーチへ: the outcome; the command starts the outreach case with it."""
    must_be_pending(state)
    return ConsultationMovedToOutreach(
        consultation_id=state.consultation_id,
        household_id=state.household_id,
        agency_id=state.agency_id,
        outreach_id=outreach_id,
        moved_at=now,
    )
