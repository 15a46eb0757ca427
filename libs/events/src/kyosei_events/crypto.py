"""Personal-data encryption with a per-household key (crypto-shredding).

Each household gets a random 256-bit data key, stored wrapped (AES-GCM) under the
deployment's master key in the ``household_keys`` table of the key database, which
every service shares. Personal fields are encrypted with AES-GCM under the household
key, bound (as associated data) to the household, the event id and the field name, so
a ciphertext cannot be moved to another event or field unnoticed.

Erasure deletes the household's key: every copy of its personal fields, in every
event store, topic and archive, becomes unreadable, while the events themselves, and
the hash chains computed over the ciphertext, stay intact and verifiable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    String,
    Table,
    any_,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from .database import READ_ALONE
from .direct import fetch

PREFIX = "kyosei-enc:v1:"
DEFAULT_CACHE_SIZE = 10_000

key_metadata = MetaData()
household_keys = Table(
    "household_keys",
    key_metadata,
    Column("household_id", String(64), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


# The statements of key_for, built once (values are bound parameters); _NEW and
# _CREATED_OR_STORED are PostgreSQL's.
_STORED = select(household_keys.c.wrapped_key).where(
    household_keys.c.household_id == bindparam("household_id")
)
_NEW = (
    pg_insert(household_keys)
    .values(
        household_id=bindparam("household_id"),
        wrapped_key=bindparam("wrapped_key"),
        created_at=bindparam("created_at"),
    )
    .on_conflict_do_nothing()
    .returning(household_keys.c.wrapped_key)
    .cte("new")
)
_CREATED_OR_STORED = select(_NEW.c.wrapped_key).union_all(_STORED)
# Several households' keys (prefetch): PostgreSQL's with an array, SQLite's with IN.
_STORED_ANY = select(household_keys.c.household_id, household_keys.c.wrapped_key).where(
    household_keys.c.household_id == any_(bindparam("household_ids", type_=ARRAY(String)))
)
_STORED_IN = select(household_keys.c.household_id, household_keys.c.wrapped_key).where(
    household_keys.c.household_id.in_(bindparam("household_ids", expanding=True))
)


class KeyErased(LookupError):
    """The household's key has been erased: its personal fields can no longer be read."""


class SealBroken(ValueError):
    """A sealed field that does not open: not base64, or not sealed under this
    household's key for this event and field (moved or altered). The data is wrong,
    not the vault: it will never open."""


class MasterKeyMismatch(RuntimeError):
    """A wrapped household key does not open with this deployment's master key."""


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


class KeyVault:
    """Per-household data keys, wrapped under a master key, in the shared key database."""

    def __init__(
        self,
        engine: AsyncEngine,
        master_key: bytes,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        previous_master_key: bytes | None = None,
    ) -> None:
        """``cache_size``: how many unwrapped household keys to keep in memory (least
        recently used first out; 0 keeps none). ``previous_master_key``: during a
        master-key rotation, the old master key, to open keys not yet re-wrapped (new
        keys are always wrapped under ``master_key``); the blind indexes stay derived
        from it until the rotation ends, so every replica searches alike."""
        for k in (master_key, previous_master_key):
            if k is not None and len(k) != 32:
                raise ValueError("the master key must be 32 bytes (64 hex characters)")
        if cache_size < 0:
            raise ValueError("the key cache size must be 0 or more")
        self._engine = engine
        self._master = AESGCM(master_key)
        self._previous = AESGCM(previous_master_key) if previous_master_key else None
        self.cache_size = cache_size
        self._cache: OrderedDict[str, AESGCM] = OrderedDict()
        # Bumped whenever a key is dropped because it was erased: a lookup that was
        # already under way then does not put the erased key (back) in the cache.
        self._erasures = 0
        # A separate key, derived from the master key, for blind indexes: equal terms
        # give equal tokens, so personal fields can be searched without storing them.
        self._index_key = hmac.digest(
            previous_master_key or master_key, b"kyosei blind index v1", "sha256"
        )

    def blind_index(self, term: str) -> str:
        """A keyed hash of a search term (HMAC-SHA-256, 128 bits, hex).

        Read models store these instead of names, kana, birth dates or addresses; a
        search hashes its terms the same way. Without the master key the tokens say
        nothing about the terms.
        """
        return hmac.new(self._index_key, term.encode(), hashlib.sha256).hexdigest()[:32]

    async def create_tables(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(key_metadata.create_all)

    def _unwrap(self, household_id: str, wrapped: bytes) -> AESGCM:
        # AES-GCM authenticates: a key wrapped under the other master key fails its tag,
        # so trying the current master key, then the previous one, is exact.
        for master in (self._master, self._previous):
            if master is None:
                continue
            try:
                return AESGCM(master.decrypt(wrapped[:12], wrapped[12:], household_id.encode()))
            except InvalidTag:
                continue
        raise MasterKeyMismatch(
            f"key of household {household_id} does not open with KYOSEI_MASTER_KEY"
            + (" or KYOSEI_PREVIOUS_MASTER_KEY" if self._previous else "")
        )

    def _wrap(self, household_id: str, raw: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._master.encrypt(nonce, raw, household_id.encode())

    async def rewrap(self, *, after: str = "", limit: int = 500) -> tuple[int, int, str | None]:
        """Re-wrap under the master key the next ``limit`` household keys (by id, after
        ``after``) still wrapped under the previous one. Returns (re-wrapped, already
        under the master key, last id seen or None when there are no more). Each key is
        replaced only if it is still the one read (an erased key stays erased), so it is
        safe while services run, and running it again resumes where it stopped."""
        if self._previous is None:
            raise ValueError("re-wrapping needs the previous master key")
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(household_keys.c.household_id, household_keys.c.wrapped_key)
                    .where(household_keys.c.household_id > after)
                    .order_by(household_keys.c.household_id)
                    .limit(limit)
                )
            ).all()
        if not rows:
            return 0, 0, None
        done = already = 0
        async with self._engine.begin() as conn:
            for household_id, wrapped in rows:
                aad = household_id.encode()
                try:
                    self._master.decrypt(wrapped[:12], wrapped[12:], aad)
                    already += 1
                    continue
                except InvalidTag:
                    pass
                try:
                    raw = self._previous.decrypt(wrapped[:12], wrapped[12:], aad)
                except InvalidTag:
                    raise MasterKeyMismatch(
                        f"key of household {household_id} opens with neither master key"
                    ) from None
                await conn.execute(
                    update(household_keys)
                    .where(
                        household_keys.c.household_id == household_id,
                        household_keys.c.wrapped_key == wrapped,
                    )
                    .values(wrapped_key=self._wrap(household_id, raw))
                )
                done += 1
        return done, already, rows[-1][0]

    async def household_ids(self) -> set[str]:
        """Every household that has a key."""
        async with self._engine.connect() as conn:
            return set((await conn.execute(select(household_keys.c.household_id))).scalars().all())

    async def key_for(self, household_id: str, *, create: bool) -> AESGCM:
        """The household's key; created on first use when ``create`` is set."""
        cached = self._cache.get(household_id)
        if cached is not None:
            self._cache.move_to_end(household_id)
            return cached
        erasures = self._erasures
        if self._engine.dialect.name == "postgresql":
            wrapped = await self._pg_stored_key(household_id, create=create)
        else:
            wrapped = await self._stored_key(household_id, create=create)
        key = self._unwrap(household_id, wrapped)
        self._keep([(household_id, key)], erasures)
        return key

    def _keep(self, keys: list[tuple[str, AESGCM]], erasures: int) -> None:
        """Cache keys read from the vault, unless a key was erased since the read began
        (``erasures``: the count then), the least recently used going first."""
        if erasures != self._erasures or self.cache_size == 0:
            return
        for household_id, key in keys:
            self._cache[household_id] = key
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def prefetch(self, household_ids: Iterable[str]) -> int:
        """Read the keys of ``household_ids`` that are not cached, in one statement, and
        cache them as :meth:`key_for` would: a consumer opening a batch of messages about
        households new to it reads their keys in one round trip, not one each. A
        household with no key is left for :meth:`key_for` to answer. Returns how many
        keys were read."""
        missing = sorted({h for h in household_ids if h not in self._cache})
        if len(missing) < 2 or self.cache_size == 0:
            return 0  # one is no better read here than by key_for
        erasures = self._erasures
        async with self._engine.connect() as conn:
            if self._engine.dialect.name == "postgresql":
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                rows = await fetch(conn, _STORED_ANY, {"household_ids": missing})
            else:
                await conn.execution_options(**{READ_ALONE: True})
                rows = list((await conn.execute(_STORED_IN, {"household_ids": missing})).all())
        keys = [(str(h), self._unwrap(str(h), bytes(wrapped))) for h, wrapped in rows]
        self._keep(keys, erasures)
        return len(keys)

    async def _pg_stored_key(self, household_id: str, *, create: bool) -> bytes:
        """The wrapped key on PostgreSQL, in one statement on its own (one round trip):
        read, or with ``create`` inserted unless there is one and then read."""
        params: dict[str, Any] = {"household_id": household_id}
        async with self._engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            if not create:
                rows = await fetch(conn, _STORED, params)
                if not rows:
                    raise KeyErased(household_id)
                return bytes(rows[0][0])
            params["wrapped_key"] = self._wrap(household_id, AESGCM.generate_key(256))
            params["created_at"] = datetime.now(UTC)
            rows = await fetch(conn, _CREATED_OR_STORED, params)
            if not rows:
                # Another writer's key, committed after this statement began: the
                # insert waited for it and did nothing; it is there to read now.
                rows = await fetch(conn, _STORED, {"household_id": household_id})
            return bytes(rows[0][0])

    async def _stored_key(self, household_id: str, *, create: bool) -> bytes:
        """The wrapped key on SQLite, read (or with ``create`` made) in one transaction."""
        async with self._engine.begin() as conn:
            row = (await conn.execute(_STORED, {"household_id": household_id})).first()
            if row is None:
                if not create:
                    raise KeyErased(household_id)
                row = (
                    await conn.execute(
                        sqlite_insert(household_keys)
                        .values(
                            household_id=household_id,
                            wrapped_key=self._wrap(household_id, AESGCM.generate_key(256)),
                            created_at=datetime.now(UTC),
                        )
                        .on_conflict_do_nothing()
                        .returning(household_keys.c.wrapped_key)
                    )
                ).first()
                if row is None:
                    # Another writer won the race: read back whatever is stored.
                    row = (await conn.execute(_STORED, {"household_id": household_id})).one()
        return bytes(row[0])

    async def erase(self, household_id: str) -> bool:
        """Delete the household's key. Returns whether a key existed."""
        self.forget_cached(household_id)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(household_keys).where(household_keys.c.household_id == household_id)
            )
        # Lookups that read the key before the DELETE must not cache it after.
        self.forget_cached(household_id)
        return bool(result.rowcount)

    def forget_cached(self, household_id: str) -> None:
        """Drop a cached key (after another process erased it)."""
        self._erasures += 1
        self._cache.pop(household_id, None)

    def cached_keys(self) -> int:
        """How many household keys are held in memory now (at most ``cache_size``)."""
        return len(self._cache)

    # -- field sealing -------------------------------------------------------------

    async def seal(
        self, household_id: str, event_id: str, payload: dict[str, Any], fields: Iterable[str]
    ) -> dict[str, Any]:
        """Encrypt the named fields of a JSON payload in place of their values."""
        names = [f for f in fields if payload.get(f) is not None]
        if not names:
            return payload
        key = await self.key_for(household_id, create=True)
        sealed = dict(payload)
        for name in names:
            nonce = os.urandom(12)
            plain = json.dumps(payload[name], ensure_ascii=False).encode()
            ct = key.encrypt(nonce, plain, _aad(household_id, event_id, name))
            sealed[name] = PREFIX + base64.urlsafe_b64encode(nonce + ct).decode()
        return sealed

    async def open(
        self, household_id: str, event_id: str, payload: dict[str, Any], fields: Iterable[str]
    ) -> tuple[dict[str, Any], frozenset[str]]:
        """Decrypt sealed fields. Returns the payload and the fields that are erased."""
        names = [f for f in fields if is_sealed(payload.get(f))]
        if not names:
            return payload, frozenset()
        try:
            key = await self.key_for(household_id, create=False)
        except KeyErased:
            opened = dict(payload)
            for name in names:
                opened[name] = None
            return opened, frozenset(names)
        opened = dict(payload)
        for name in names:
            opened[name] = _open_field(key, household_id, event_id, name, payload[name])
        return opened, frozenset()


def _open_field(key: AESGCM, household_id: str, event_id: str, name: str, sealed: str) -> Any:
    try:
        blob = base64.urlsafe_b64decode(sealed[len(PREFIX) :].encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise SealBroken(f"sealed field {name} is not valid base64") from None
    try:
        plain = key.decrypt(blob[:12], blob[12:], _aad(household_id, event_id, name))
    except (InvalidTag, ValueError):
        raise SealBroken(
            f"sealed field {name} does not open under the key of household {household_id[:128]} "
            "for this event (moved from another event or household, or altered)"
        ) from None
    try:
        return json.loads(plain)
    except ValueError:
        raise SealBroken(f"sealed field {name} does not hold JSON") from None


def _aad(household_id: str, event_id: str, field: str) -> bytes:
    return f"{household_id}|{event_id}|{field}".encode()


def master_key_from_hex(value: str) -> bytes:
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise ValueError("KYOSEI_MASTER_KEY must be 64 hexadecimal characters") from None
    if len(key) != 32:
        raise ValueError("KYOSEI_MASTER_KEY must be 64 hexadecimal characters (32 bytes)")
    return key
