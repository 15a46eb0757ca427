"""Operator and auditor commands that work on a service's store directly."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kyosei_events import EventStore, KeyVault
from kyosei_events.anchors import (
    AnchorError,
    check_anchor,
    latest_anchor,
    make_anchor,
    public_hex,
    public_key,
    public_pem,
    signing_key,
)
from kyosei_events.crypto import master_key_from_hex
from kyosei_events.database import create_engine
from kyosei_events.projection import rebuild as rebuild_projection

from .service import Service
from .settings import Settings


@asynccontextmanager
async def _open(service: Service, settings: Settings) -> AsyncIterator[EventStore]:
    """The service's store, on engines of its own that are disposed of on the way out."""
    engine = create_engine(settings.database_url, schema=settings.db_schema)
    keys = create_engine(settings.keys_database_url, schema=settings.keys_db_schema)
    try:
        vault = KeyVault(
            keys,
            master_key_from_hex(settings.master_key),
            cache_size=settings.key_cache_size,
            previous_master_key=settings.previous_master_key_bytes(),
        )
        yield EventStore(engine, vault, name=service.name)
    finally:
        await engine.dispose()
        await keys.dispose()


async def verify(service: Service, settings: Settings) -> int:
    """Print one line per broken stream and a summary; exit status 1 if any is broken."""
    async with _open(service, settings) as store:
        streams = await store.stream_ids()
        broken = 0
        events = 0
        for i, stream_id in enumerate(streams, 1):
            report = await store.verify_stream(stream_id)
            events += report.events
            if report.broken is not None:
                broken += 1
                b = report.broken
                print(
                    f"BROKEN {stream_id} at version {b.version} (position {b.position}): {b.reason}"
                )
            if i % 1000 == 0:
                print(f"… {i}/{len(streams)} streams checked")
        print(f"{service.name}: {len(streams)} streams, {events} events, {broken} broken")
        anchor_ok = await _verify_anchor(store, settings)
        return 1 if broken or not anchor_ok else 0


def _public_key(settings: Settings) -> Ed25519PublicKey | None:
    return anchor_public_key(settings.checkpoint_public_key, settings.checkpoint_signing_key)


def anchor_public_key(public: str | None, private: str | None) -> Ed25519PublicKey | None:
    """The public key anchors are checked with: given, or derived from the signing key."""
    if public:
        return public_key(public)
    if private:
        return signing_key(private).public_key()
    return None


async def _verify_anchor(store: EventStore, settings: Settings) -> bool:
    """Check the store against its latest signed anchor; print what differs."""
    stored = await latest_anchor(store.engine)
    if stored is None:
        print(
            f"{store.name}: no anchor: only the chains were checked, so a removed last "
            "event or stream, reordered positions or a rewritten and rehashed stream "
            "would not be found (run `kyosei anchor` regularly)"
        )
        return True
    try:
        key = _public_key(settings)
    except AnchorError as exc:
        print(f"ANCHOR {exc}")
        return False
    if key is None:
        print(
            f"ANCHOR {store.name}: anchor {stored.anchor_id} not checked: set "
            "KYOSEI_CHECKPOINT_PUBLIC_KEY (or KYOSEI_CHECKPOINT_SIGNING_KEY)"
        )
        return False
    problems = await check_anchor(store, stored, key)
    for problem in problems:
        print(f"ANCHOR {problem}")
    if not problems:
        anchor = stored.anchor()
        print(
            f"{store.name}: anchor {stored.anchor_id} of {anchor.created_at} holds: "
            f"{len(anchor.streams)} streams, {anchor.events} events up to position "
            f"{anchor.cursor.position}; later events are checked by their chains only"
        )
    return not problems


async def anchor(service: Service, settings: Settings) -> int:
    """Sign an anchor of the store's heads and log now (cron / CronJob)."""
    if not settings.checkpoint_signing_key:
        print("anchor: set KYOSEI_CHECKPOINT_SIGNING_KEY")
        return 2
    async with _open(service, settings) as store:
        try:
            made = await make_anchor(
                store, service.name, signing_key(settings.checkpoint_signing_key)
            )
        except AnchorError as exc:
            print(f"ANCHOR refused: {exc}")
            return 1
        print(
            f"{service.name}: anchored {len(made.streams)} streams, {made.events} events "
            f"up to position {made.cursor.position}, log hash {made.log_hash}"
        )
        return 0


def checkpoint_key(public: str | None, private: str | None) -> str:
    """The public key of the anchor signing key, hex and PEM, for auditors."""
    try:
        key = anchor_public_key(public, private)
    except AnchorError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    if key is None:
        raise SystemExit("set KYOSEI_CHECKPOINT_SIGNING_KEY or KYOSEI_CHECKPOINT_PUBLIC_KEY")
    return f"{public_hex(key)}\n{public_pem(key)}"


async def rebuild(service: Service, settings: Settings) -> None:
    """Rebuild the service's read models (``Service.projections``; a directory fed by
    consumed events is not one of them and is left alone), each in one transaction
    while the service may be serving: its appends wait until that read model is
    rebuilt, and its readers see the previous one until then."""
    async with _open(service, settings) as store:
        for make in service.projections:
            projection = make()
            print(
                f"{service.name}: rebuilding {projection.name} (writes wait until it is done)",
                flush=True,
            )
            started = time.monotonic()

            def progress(done: int, name: str = projection.name) -> None:
                if done % 10_000 == 0:
                    print(f"… {name}: {done} events", flush=True)

            count = await rebuild_projection(store, projection, progress=progress)
            print(
                f"{service.name}: {projection.name} rebuilt from {count} events "
                f"in {time.monotonic() - started:.1f}s"
            )
