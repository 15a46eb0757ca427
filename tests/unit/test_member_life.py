"""Members' life changes (kyosei_households.life), pure: today's state is the replay of
a person's changes by effective date, whatever order they were recorded in, without the
retracted ones."""

from __future__ import annotations

from datetime import date

from kyosei_households.life import LifeChange, status_of


def change(kind: str, on: date, seq: int, detail: str | None = None, **kw: bool) -> LifeChange:
    return LifeChange(f"c-{seq}", "m-1", kind, on, detail, seq, **kw)


def test_a_member_is_alive_and_at_home_until_something_is_recorded() -> None:
    s = status_of([])
    assert not s.deceased and s.living_in_household and s.facility is None


def test_a_facility_stay_then_death_in_the_order_of_the_dates_not_of_recording() -> None:
    died = change("died", date(2026, 11, 20), 1)
    entered = change("facility_started", date(2026, 10, 1), 2, "care_facility")
    s = status_of([died, entered])
    assert s.deceased_on == date(2026, 11, 20) and s.facility is None
    before = status_of([died, entered], on=date(2026, 10, 15))
    assert not before.deceased and before.facility == "care_facility"
    assert before.facility_since == date(2026, 10, 1)


def test_moving_out_and_back_and_a_retracted_record() -> None:
    out = change("departed", date(2026, 4, 1), 1, "moved_out")
    back = change("joined", date(2026, 9, 1), 2, "returned")
    s = status_of([out, back])
    assert s.living_in_household and s.departed_on == date(2026, 4, 1)
    assert s.joined_reason == "returned"
    assert not status_of([out]).living_in_household
    wrong = change("died", date(2026, 5, 1), 3, retracted=True)
    assert not status_of([out, back, wrong]).deceased
