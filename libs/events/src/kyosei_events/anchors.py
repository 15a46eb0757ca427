"""Signed anchors: what the hash chains alone cannot show.

A stream's chain shows that each stored event follows the one before it, but not that
the stream still ends where it ended, still exists, or that nobody rewrote it and
recomputed every hash after the edit. An anchor closes that gap up to a point in time:

- every stream's head: stream id, number of events (its version) and head hash;
- the log hash, a running hash over the log in commit-safe (tx_id, position) order:
  L(0) = GENESIS, L(n) = SHA-256(bytes(L(n-1)) || canonical([tx_id, position,
  stream_id, version, hash])) up to the anchored place in the log;

signed with an Ed25519 key that is not in the database (``KYOSEI_CHECKPOINT_SIGNING_KEY``;
auditors hold the public key). :func:`check_anchor` recomputes both from the stored
events and names what differs: a stream removed or shortened, a stream whose events up
to its anchored version were changed (even with every hash recomputed), events removed,
inserted or reordered before the anchored place, or an anchor whose signature does not
verify. Events written after the latest anchor are only checked by their chains.

:func:`make_anchor` refuses to sign a store whose chains are broken or which no longer
matches its latest anchor, so an anchor never blesses a change it would have found.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from .canonical import canonical_bytes, canonical_text
from .codec import GENESIS, link_hash
from .records import START, LogCursor, RecordedEvent
from .tables import anchors, events
from .writer import utc_now

_PAGE = 1000
log = logging.getLogger(__name__)


class AnchorError(Exception):
    """An anchor cannot be made (bad key, broken store) or read."""


# -- keys ------------------------------------------------------------------------------


def signing_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from 64 hex characters (the 32-byte seed) or PEM."""
    text = text.strip()
    try:
        if text.startswith("-----"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise AnchorError("the signing key is not an Ed25519 key")
            return key
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text))
    except (ValueError, TypeError) as exc:
        raise AnchorError(
            "the signing key must be 64 hex characters or an Ed25519 PEM private key"
        ) from exc


def public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from 64 hex characters or PEM."""
    text = text.strip()
    try:
        if text.startswith("-----"):
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise AnchorError("the public key is not an Ed25519 key")
            return key
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    except (ValueError, TypeError) as exc:
        raise AnchorError(
            "the public key must be 64 hex characters or an Ed25519 PEM public key"
        ) from exc


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


# -- the anchor ------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """What an anchor signs: the log up to ``cursor`` and every stream's head there."""

    service: str
    created_at: str
    cursor: LogCursor
    events: int
    log_hash: str
    streams: dict[str, tuple[int, str]]

    def body(self) -> str:
        return canonical_text(
            {
                "service": self.service,
                "created_at": self.created_at,
                "tx_id": self.cursor.tx_id,
                "position": self.cursor.position,
                "events": self.events,
                "log_hash": self.log_hash,
                "streams": {s: [v, h] for s, (v, h) in self.streams.items()},
            }
        )

    @classmethod
    def from_body(cls, body: str) -> Anchor:
        d = json.loads(body)
        return cls(
            service=d["service"],
            created_at=d["created_at"],
            cursor=LogCursor(int(d["tx_id"]), int(d["position"])),
            events=int(d["events"]),
            log_hash=d["log_hash"],
            streams={s: (int(v), str(h)) for s, (v, h) in d["streams"].items()},
        )


@dataclass(frozen=True)
class StoredAnchor:
    anchor_id: int
    body: str
    signature: str

    def anchor(self) -> Anchor:
        return Anchor.from_body(self.body)


def log_step(prev: str, rec: RecordedEvent) -> str:
    """The log hash after ``rec``, following ``prev``."""
    item = [rec.tx_id, rec.position, rec.stream_id, rec.version, rec.hash]
    return hashlib.sha256(bytes.fromhex(prev) + canonical_bytes(item)).hexdigest()


class LogReader(Protocol):
    engine: AsyncEngine

    async def read_log(
        self, after: LogCursor = START, limit: int = 1000
    ) -> Sequence[RecordedEvent]: ...


@dataclass
class _Scan:
    cursor: LogCursor
    events: int
    log_hash: str
    heads: dict[str, tuple[int, str]]
    broken: list[str]


async def _scan(store: LogReader, upto: LogCursor | None) -> _Scan:
    """Walk the committed log (up to and including ``upto``, or all of it), computing
    the log hash and every stream's head, and checking every link on the way."""
    scan = _Scan(START, 0, GENESIS, {}, [])
    after = START
    while True:
        page = await store.read_log(after, _PAGE)
        if not page:
            return scan
        for rec in page:
            here = LogCursor(rec.tx_id, rec.position)
            if upto is not None and here > upto:
                return scan
            version, head = scan.heads.get(rec.stream_id, (0, GENESIS))
            if rec.version != version + 1:
                scan.broken.append(
                    f"stream {rec.stream_id}: version {rec.version} follows {version} "
                    f"in the log (position {rec.position})"
                )
            elif rec.prev_hash != head or link_hash(head, rec.record()) != rec.hash:
                scan.broken.append(
                    f"stream {rec.stream_id}: version {rec.version} "
                    f"(position {rec.position}) does not match its hash"
                )
            scan.heads[rec.stream_id] = (rec.version, rec.hash)
            scan.log_hash = log_step(scan.log_hash, rec)
            scan.events += 1
            scan.cursor = here
        after = LogCursor(page[-1].tx_id, page[-1].position)


# -- reading and writing anchors ------------------------------------------------------


async def latest_anchor(engine: AsyncEngine) -> StoredAnchor | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(anchors.c.anchor_id, anchors.c.body, anchors.c.signature)
                .order_by(anchors.c.anchor_id.desc())
                .limit(1)
            )
        ).first()
    return None if row is None else StoredAnchor(int(row[0]), row[1], row[2])


async def make_anchor(store: LogReader, service: str, key: Ed25519PrivateKey) -> Anchor:
    """Anchor the store's committed log and heads, signed with ``key``: the log as
    ``read_log`` gives it, up to the read horizon. On PostgreSQL a transaction still
    running anywhere in the database (any schema's) holds it back: events written
    after that transaction began wait for the next anchor, since it may yet commit
    events before them in the log.

    Refuses (:class:`AnchorError`) when a chain is broken, or when the store no longer
    matches its latest anchor under this key, so no anchor blesses tampering."""
    previous = await latest_anchor(store.engine)
    if previous is not None:
        problems = await check_anchor(store, previous, key.public_key())
        if problems:
            raise AnchorError("the store does not match its latest anchor: " + "; ".join(problems))
    scan = await _scan(store, None)
    if scan.broken:
        raise AnchorError("broken chains: " + "; ".join(scan.broken))
    anchor = Anchor(service, utc_now(), scan.cursor, scan.events, scan.log_hash, scan.heads)
    body = anchor.body()
    signature = key.sign(body.encode("utf-8")).hex()
    async with store.engine.begin() as conn:
        await conn.execute(
            anchors.insert().values(created_at=anchor.created_at, body=body, signature=signature)
        )
    return anchor


async def check_anchor(store: LogReader, stored: StoredAnchor, key: Ed25519PublicKey) -> list[str]:
    """What no longer matches a signed anchor (empty: everything it covers is intact)."""
    try:
        key.verify(bytes.fromhex(stored.signature), stored.body.encode("utf-8"))
        anchor = stored.anchor()
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return [
            f"anchor {stored.anchor_id}: the signature does not verify with the public key "
            "(the anchor was altered, or was signed with another key)"
        ]
    scan = await _scan(store, anchor.cursor)
    problems: list[str] = []
    for stream_id, (version, head) in anchor.streams.items():
        now = scan.heads.get(stream_id)
        if now is None:
            problems.append(f"stream {stream_id}: removed (anchored with {version} events)")
        elif now[0] < version:
            problems.append(
                f"stream {stream_id}: {now[0]} events before the anchor, "
                f"anchored with {version} (events removed)"
            )
        elif now[0] > version:
            problems.append(
                f"stream {stream_id}: {now[0]} events before the anchor, "
                f"anchored with {version} (events inserted)"
            )
        elif now[1] != head:
            problems.append(
                f"stream {stream_id}: events up to version {version} were changed "
                "(head hash differs from the anchor)"
            )
    for stream_id in sorted(set(scan.heads) - set(anchor.streams)):
        problems.append(f"stream {stream_id}: not in the anchor but has events before it")
    async with store.engine.connect() as conn:
        # Every row placed at or before the anchored place, however low its tx_id.
        placed = (
            await conn.execute(
                select(func.count()).where(
                    tuple_(events.c.tx_id, events.c.position)
                    <= tuple_(literal(anchor.cursor.tx_id), literal(anchor.cursor.position))
                )
            )
        ).scalar_one()
    if placed != scan.events:
        problems.append(
            f"{placed - scan.events} events are placed before the start of the log "
            "(forged tx_id or position)"
        )
    if scan.events != anchor.events:
        problems.append(
            f"the log up to position {anchor.cursor.position} has {scan.events} events, "
            f"anchored with {anchor.events}"
        )
    if scan.log_hash != anchor.log_hash:
        problems.append(
            f"the log up to position {anchor.cursor.position} differs from the anchor "
            "(events removed, inserted, changed or reordered)"
        )
    return problems


async def anchor_periodically(
    store: LogReader,
    service: str,
    key: Ed25519PrivateKey,
    interval: float,
    leading: Callable[[], bool] = lambda: True,
) -> None:
    """Make an anchor every ``interval`` seconds while ``leading()`` (the service's own
    schedule, in the replica leading the relay; ``kyosei anchor`` does the same once).
    Runs until cancelled; a refusal is logged at error level and tried again later."""
    while True:
        await asyncio.sleep(interval)
        if not leading():
            continue
        try:
            made = await make_anchor(store, service, key)
        except AnchorError as exc:
            log.error("anchor refused for %s: %s", service, exc)
        except Exception:
            log.exception("anchor failed for %s; trying again later", service)
        else:
            log.info(
                "anchored %s: %d streams, %d events up to position %d, log hash %s",
                service,
                len(made.streams),
                made.events,
                made.cursor.position,
                made.log_hash,
            )
