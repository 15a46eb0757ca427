"""The commit signal: in-process listeners after every commit that appended, and on
PostgreSQL a NOTIFY that a LISTEN in another process (another Wakeup) receives."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kyosei_events import EventStore, Wakeup
from tests.backbone_support import case_opened, new


async def test_listeners_are_called_after_commits_that_appended(store: EventStore) -> None:
    calls: list[str] = []
    store.wakeup.on_commit(lambda: calls.append("commit"))
    await store.append("case-1", [new(case_opened())], 0)
    assert calls == ["commit"]
    [rec] = await store.read_log()
    async with store.unit_of_work() as uow:
        await uow.save_checkpoint("reader", rec.cursor)
    assert calls == ["commit"], "a transaction without appends wakes no one"


async def test_without_a_channel_there_is_nothing_to_listen_to(store: EventStore) -> None:
    assert store.wakeup.channel is None
    assert await store.wakeup.listen(lambda: None) is None


@pytest.mark.postgres
async def test_a_notify_reaches_a_listener_on_another_wakeup(pg_store: EventStore) -> None:
    channel = f"kyosei_test_{uuid.uuid4().hex[:8]}"
    sender, receiver = Wakeup(pg_store.engine), Wakeup(pg_store.engine)
    sender.use_channel(channel)
    receiver.use_channel(channel)
    woken = asyncio.Event()
    listening = await receiver.listen(woken.set)
    assert listening is not None and listening.channel == channel
    try:
        sender.committed()
        await asyncio.wait_for(woken.wait(), 10)
    finally:
        await listening.close()


@pytest.mark.postgres
async def test_no_notify_while_the_relay_of_this_process_publishes(pg_store: EventStore) -> None:
    """The relay that leads in this process is woken in-process; a NOTIFY would only
    wake it a second time. Once it stands by (another replica leads), commits here
    NOTIFY again."""
    channel = f"kyosei_test_{uuid.uuid4().hex[:8]}"
    sender, receiver = Wakeup(pg_store.engine), Wakeup(pg_store.engine)
    sender.use_channel(channel)
    receiver.use_channel(channel)
    woken = asyncio.Event()
    in_process: list[str] = []
    sender.on_commit(lambda: in_process.append("commit"))
    listening = await receiver.listen(woken.set)
    assert listening is not None
    try:
        sender.publishing_here = True
        sender.committed()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(woken.wait(), 0.5)
        sender.publishing_here = False
        sender.committed()
        await asyncio.wait_for(woken.wait(), 10)
        assert in_process == ["commit", "commit"]
    finally:
        await listening.close()
