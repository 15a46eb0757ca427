"""A v1 event written years ago reads as the latest version, and its chain holds."""

from __future__ import annotations

import json
import uuid

from kyosei_events import EventStore
from kyosei_events.canonical import canonical_text
from kyosei_events.catalogue.common import Concern
from kyosei_events.catalogue.intake import Channel, ConsultationReceived
from kyosei_events.codec import GENESIS, link_hash, record_of
from kyosei_events.tables import events
from tests.backbone_support import JAPANESE_SUMMARY, consultation, new
from tests.unit.test_upcasting import V1_PAYLOAD


async def write_v1_row(store: EventStore, stream_id: str, subject: str) -> str:
    """Insert a ConsultationReceived v1 the way the v1 store wrote it: sealed, chained."""
    event_id = str(uuid.uuid4())
    payload = await store.vault.seal(
        subject, event_id, V1_PAYLOAD | {"summary": JAPANESE_SUMMARY}, ["summary", "caller_name"]
    )
    row = {
        "stream_id": stream_id,
        "version": 1,
        "event_id": event_id,
        "event_type": "ConsultationReceived",
        "schema_version": 1,
        "recorded_at": "2023-10-02T01:02:04.000005Z",
        "subject": subject,
        "metadata": canonical_text({"agency_id": "agency-a"}),
        "payload": canonical_text(payload),
        "prev_hash": GENESIS,
    }
    record = record_of(**{k: v for k, v in row.items() if k != "prev_hash"})  # type: ignore[arg-type]
    async with store.engine.begin() as conn:
        await conn.execute(
            events.insert().values(
                **row, tx_id=0, hash=link_hash(GENESIS, record), partition_key=subject
            )
        )
    return event_id


async def test_a_stored_v1_row_decodes_as_the_latest_model(store: EventStore) -> None:
    event_id = await write_v1_row(store, "consultation-c-1", "hh-1")
    (rec,) = await store.read_stream("consultation-c-1")
    assert rec.schema_version == 1
    assert "concern" in json.loads(rec.payload)

    decoded = await store.decode(rec)
    event = decoded.event
    assert isinstance(event, ConsultationReceived)
    assert event.concerns == [Concern.HARDSHIP]
    assert event.channel is Channel.UNKNOWN
    assert event.summary == JAPANESE_SUMMARY
    assert decoded.recorded.event_id == event_id

    # The v1 row is chained like any other: it verifies, and newer events chain onto it.
    assert (await store.verify_stream("consultation-c-1")).ok
    await store.append("consultation-c-1", [new(consultation("hh-1"))], expected_version=1)
    assert (await store.verify_stream("consultation-c-1")).ok
    loaded, version = await store.load("consultation-c-1")
    assert version == 2
    assert [d.recorded.schema_version for d in loaded] == [1, ConsultationReceived.schema_version]
    # Reading never rewrites what is stored.
    (again, _) = await store.read_stream("consultation-c-1")
    assert again.payload == rec.payload and again.schema_version == 1
