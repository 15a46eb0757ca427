"""What an agency integrating by events relies on, read back from the embedded broker
as its consumer reads it: a ``ce_hash`` it recomputes without kyosei (the README's
recipe), and one Kafka key for every event of a stream, so a stream stays in order."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import rfc8785
from faststream.kafka import KafkaBroker

from kyosei_events import EventStore, Metadata, OutboxRelay
from kyosei_events.catalogue.intake import Channel, Window
from kyosei_households.directory import metadata as directory_tables
from kyosei_intake.app import service
from kyosei_intake.commands import consultations, households
from kyosei_intake.projections import metadata as intake_tables
from kyosei_platform.testing import acting_as, local_store
from tests.backbone_support import META, consultation, new, read_topic, settled

SOURCE = "urn:kyosei:service:intake"


def recompute_ce_hash(headers: list[tuple[str, bytes]], value: bytes) -> str:
    """The README's recipe as an agency writes it: hashlib and json, nothing of kyosei."""
    import hashlib
    import json

    h = {k: v.decode() for k, v in headers}
    names = {"correlation_id": "ce_correlationid", "causation_id": "ce_causationid",
             "agency_id": "ce_agencyid", "staff_id": "ce_staffid"}  # fmt: skip
    meta = {key: h[header] for key, header in names.items() if header in h}
    record = {
        "stream_id": h["ce_streamid"], "version": int(h["ce_streamversion"]),
        "event_id": h["ce_id"], "type": h["ce_type"].removeprefix("jp.kyosei."),
        "schema_version": int(h["ce_schemaversion"]), "time": h["ce_time"],
        "subject": h["ce_subject"], "payload": value.decode("utf-8"),
        "metadata": json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    }  # fmt: skip
    jcs = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(bytes.fromhex(h["ce_prevhash"]) + jcs.encode("utf-8")).hexdigest()


def recompute_with_rfc8785(headers: list[tuple[str, bytes]], value: bytes) -> str:
    """The same with a JCS library (RFC 8785) instead of json.dumps."""
    import hashlib

    h = {k: v.decode() for k, v in headers}
    meta = {
        key: h[f"ce_{key.replace('_', '')}"]
        for key in ("correlation_id", "causation_id", "agency_id", "staff_id")
        if f"ce_{key.replace('_', '')}" in h
    }
    record = {
        "stream_id": h["ce_streamid"],
        "version": int(h["ce_streamversion"]),
        "event_id": h["ce_id"],
        "type": h["ce_type"].removeprefix("jp.kyosei."),
        "schema_version": int(h["ce_schemaversion"]),
        "time": h["ce_time"],
        "subject": h["ce_subject"],
        "metadata": rfc8785.dumps(meta).decode(),
        "payload": value.decode(),
    }
    prev = bytes.fromhex(h["ce_prevhash"])
    return hashlib.sha256(prev + rfc8785.dumps(record)).hexdigest()


async def test_an_agency_recomputes_ce_hash_from_headers_and_value_alone(
    store: EventStore, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    first = consultation("hh-1")  # Japanese summary; the caller's name sealed
    tricky = dataclasses.replace(
        META, staff_id='職員\u2028😀\x01"\\', correlation_id=None, causation_id=None
    )
    appended = await store.append(f"consultation-{first.consultation_id}", [new(first)], 0)
    appended += await store.append(
        f"consultation-{first.consultation_id}",
        [new(consultation("hh-1", summary="改行\n\tタブ\u2029 🏠 𠮷野家"), meta=tricky)],
        1,
    )
    appended += await store.append(
        "consultation-c-x", [new(consultation("hh-2"), meta=Metadata())], 0
    )
    await settled(store)
    relay = OutboxRelay(store, kafka_broker, topic=topic, source=SOURCE)
    assert await relay.publish_pending() == 3

    records = await read_topic(kafka_bootstrap, topic)
    assert len(records) == 3
    for record in records:
        headers = list(record.headers)
        ce_hash = dict(headers)["ce_hash"].decode()
        assert recompute_ce_hash(headers, record.value) == ce_hash
        assert recompute_with_rfc8785(headers, record.value) == ce_hash
        # An edit of the value or of a header the record covers shows.
        assert recompute_ce_hash(headers, record.value.replace(b"}", b" }", 1)) != ce_hash
        edited = [(k, b"hh-9" if k == "ce_subject" else v) for k, v in headers]
        assert recompute_ce_hash(edited, record.value) != ce_hash
    assert {dict(r.headers)["ce_hash"].decode() for r in records} == {r.hash for r in appended}


async def test_a_consultation_linked_and_escalated_keeps_one_kafka_key(
    tmp_path: Path, kafka_bootstrap: list[str], kafka_broker: KafkaBroker, topic: str
) -> None:
    async with local_store(tmp_path, service, intake_tables, directory_tables) as store:
        houkatsu = acting_as(store, "houkatsu")
        received = await consultations.receive_consultation(
            houkatsu,
            consultations.ReceiveConsultation(
                window=Window.COMMUNITY_GENERAL_SUPPORT_CENTER,
                channel=Channel.PHONE,
                concerns=["withdrawal"],
                summary="近所の方から: 隣の息子さんを長く見かけない",
            ),
        )
        cid = received.consultation_id
        registered = await households.register_household(
            houkatsu,
            households.RegisterHousehold(
                address="松戸市本町1-2-3",
                members=[households.MemberIn(name="松戸 一郎", birth_date=date(1972, 6, 15))],
            ),
        )
        hid = registered.household_id
        assert hid is not None
        await consultations.link_household(
            houkatsu, cid, consultations.LinkHousehold(household_id=hid)
        )
        await consultations.escalate_consultation(
            houkatsu, cid, consultations.Escalate(reason="ひきこもりと親の介護、複数分野")
        )
        stream = consultations.stream(cid)
        stored = await store.read_stream(stream)
        assert len(stored) >= 3 and {r.partition_key for r in stored} == {cid}

        relay = OutboxRelay(store, kafka_broker, topic=topic, source=SOURCE)
        await relay.publish_pending()

    records = await read_topic(kafka_bootstrap, topic)
    mine = [r for r in records if dict(r.headers)["ce_streamid"] == stream.encode()]
    assert len(mine) == len(stored)
    # One key (the stream's first subject, the consultation's own id), so one partition,
    # and the stream's versions in order on it.
    assert {r.key for r in mine} == {cid.encode()}
    assert len({r.partition for r in mine}) == 1
    versions = [int(dict(r.headers)["ce_streamversion"]) for r in mine]
    assert versions == sorted(versions) == list(range(1, len(stored) + 1))
    # ce_subject still says whose it is: the household from the link on.
    subjects = [dict(r.headers)["ce_subject"].decode() for r in mine]
    assert subjects[0] == cid and set(subjects[1:]) == {hid}
    # The household's own stream keeps the household's key.
    household = [r for r in records if dict(r.headers)["ce_streamid"] != stream.encode()]
    assert household and {r.key for r in household} == {hid.encode()}
