"""The duplicate check before registering: what it finds, and that its cost does not
grow with the town (people sharing a birth date are not candidates, and are not read)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from sqlalchemy import event

from kyosei_events import EventStore
from kyosei_intake.commands import households
from kyosei_platform.application import CommandContext

Agencies = Callable[[str], CommandContext]  # the as_agency fixture
HOUKATSU = "houkatsu"
BORN = date(1950, 1, 1)


async def register(
    ctx: CommandContext, *names: str, born: date = BORN, address: str | None = None
) -> households.Registration:
    return await households.register_household(
        ctx,
        households.RegisterHousehold(
            address=address,
            members=[households.MemberIn(name=n, birth_date=born) for n in names],
            proceed_despite_duplicates=True,
        ),
    )


async def check(ctx: CommandContext, name: str, born: date = BORN) -> list[Any]:
    """The candidates registering ``name`` finds (registered only if there are none)."""
    registration = await households.register_household(
        ctx,
        households.RegisterHousehold(members=[households.MemberIn(name=name, birth_date=born)]),
    )
    return registration.candidates


@contextmanager
def statements(store: EventStore) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    target = store.engine.sync_engine
    event.listen(target, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(target, "before_cursor_execute", count)


async def test_the_check_reads_a_bounded_number_of_statements_however_many_share_a_birth_date(
    store: EventStore, as_agency: Agencies
) -> None:
    ctx = as_agency(HOUKATSU)
    first = await register(ctx, "柏 花子")
    await register(ctx, "他人 0")
    with statements(store) as few:
        (found,) = await check(ctx, "柏 花子")
    assert (found.household_id, found.strong) == (first.household_id, True)

    for n in range(1, 200):  # 200 households share the birth date, one the name too
        await register(ctx, f"他人 {n}")
    with statements(store) as many:
        (found,) = await check(ctx, "柏 花子")
    assert (found.household_id, found.strong) == (first.household_id, True)
    assert len(many) == len(few) <= 5, many  # BEGIN and at most four queries
    assert await check(ctx, "誰でもない") == []  # a birth date alone matches no one


async def test_merged_records_count_as_their_survivor(
    store: EventStore, as_agency: Agencies
) -> None:
    ctx = as_agency(HOUKATSU)
    survivor = await register(ctx, "流山 一郎", address="流山市1-1")
    merged = await register(ctx, "流山 一郎", address="流山市1-1")
    middle = await register(ctx, "流山 次郎", born=date(1960, 2, 2))
    assert survivor.household_id and merged.household_id and middle.household_id
    # middle into merged, merged into survivor: a chain of two.
    await households.merge_households(
        ctx,
        merged.household_id,
        households.MergeHouseholds(duplicate_household_id=middle.household_id, reason="同一世帯"),
    )
    await households.merge_households(
        ctx,
        survivor.household_id,
        households.MergeHouseholds(duplicate_household_id=merged.household_id, reason="同一世帯"),
    )
    (found,) = await check(ctx, "流山 次郎", born=date(1960, 2, 2))
    assert found.household_id == survivor.household_id
    assert found.strong and found.matched_on == {"name", "birth_date"}
    assert found.registered_by == HOUKATSU
    # A birth date found in another record of the same household still counts.
    (found,) = await check(ctx, "流山 一郎", born=date(1960, 2, 2))
    assert found.household_id == survivor.household_id
    assert found.matched_on == {"name", "birth_date"} and not found.strong
    # Someone sharing only a birth date with the household is no candidate.
    assert await check(ctx, "別人 三郎", born=date(1960, 2, 2)) == []
