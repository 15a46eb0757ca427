"""Idempotency-Key: a POST retried with the same key gets the first answer, and has no
second effect.

An agency's system that did not hear an answer (a timeout, a dropped connection)
sends the same POST again with the same ``Idempotency-Key`` header. The first request
with a key claims it (one INSERT into ``idempotency_keys``, committed before the
command runs: a concurrent duplicate finds the key taken and does not run); its answer
is kept with the key. A retry with the same key and the same request (method, path,
query and body) gets that answer again, status and body; the same key with another
request is a 422 naming the header. Keys are per agency (the caller's token) and kept
``idempotency_key_hours`` (24 h by default); an older key is ignored and deleted.
An answer of 5xx is not kept: the key is released so that a retry runs.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from . import errors
from .auth import verify_token

log = structlog.get_logger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, no spaces
# Expired keys are deleted at most this often per process.
PURGE_EVERY_SECONDS = 600.0

idempotency_metadata = MetaData()

# One row per (agency, key): claimed before the request runs (status NULL), then the
# answer it got. created_at is ISO 8601 UTC with a fixed width, so text order is time order.
idempotency_keys = Table(
    "idempotency_keys",
    idempotency_metadata,
    Column("agency_id", String(64), primary_key=True),
    Column("key", String(MAX_KEY_LENGTH), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("created_at", String(32), nullable=False),
    Index("idempotency_keys_created_at", "created_at"),
)


def idempotency_v1(op: Any) -> None:
    """The ``idempotency_keys`` table (called from each service's migrations)."""
    op.create_table(
        "idempotency_keys",
        Column("agency_id", String(64), primary_key=True),
        Column("key", String(MAX_KEY_LENGTH), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status", Integer, nullable=True),
        Column("response_body", Text, nullable=True),
        Column("created_at", String(32), nullable=False),
    )
    op.create_index("idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def drop_idempotency_v1(op: Any) -> None:
    op.drop_table("idempotency_keys")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(status: int, code: str, message: str, message_ja: str) -> JSONResponse:
    problem = {"field": HEADER, "problem": message, "problem_ja": message_ja}
    return JSONResponse(errors.body(code, message, message_ja, [problem]), status_code=status)


class IdempotencyKeys:
    """The keys of one service's database."""

    def __init__(self, engine: AsyncEngine, ttl: timedelta) -> None:
        self.engine = engine
        self.ttl = ttl
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self._next_purge = 0.0  # monotonic time of the next deletion of expired keys

    def _where(self, agency: str, key: str) -> Any:
        return and_(idempotency_keys.c.agency_id == agency, idempotency_keys.c.key == key)

    async def claim(self, agency: str, key: str, request_hash: str) -> dict[str, Any] | None:
        """Claim ``key`` for a request: None when claimed (run the request), else the
        row of the request that holds it (unexpired)."""
        now = datetime.now(UTC)
        cutoff = _stamp(now - self.ttl)
        async with self.engine.begin() as conn:
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS
                await conn.execute(
                    delete(idempotency_keys).where(idempotency_keys.c.created_at < cutoff)
                )
            else:  # an expired key is free again
                await conn.execute(
                    delete(idempotency_keys).where(
                        self._where(agency, key), idempotency_keys.c.created_at < cutoff
                    )
                )
            inserted = await conn.execute(
                self._insert(idempotency_keys)
                .values(
                    agency_id=agency, key=key, request_hash=request_hash, created_at=_stamp(now)
                )
                .on_conflict_do_nothing()
            )
            if inserted.rowcount:
                return None
            row = (
                await conn.execute(select(idempotency_keys).where(self._where(agency, key)))
            ).first()
        return None if row is None else dict(row._mapping)

    async def keep(self, agency: str, key: str, status: int, body: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(idempotency_keys)
                .where(self._where(agency, key))
                .values(status=status, response_body=body)
            )

    async def release(self, agency: str, key: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(idempotency_keys).where(self._where(agency, key)))


def install(app: FastAPI, keys: IdempotencyKeys, auth_secret: str) -> None:
    """Honour ``Idempotency-Key`` on every POST of ``app`` (:func:`document` declares it)."""
    app.add_middleware(IdempotentPosts, keys=keys, auth_secret=auth_secret)


class IdempotentPosts:
    """ASGI middleware: a POST with ``Idempotency-Key`` goes through :func:`_idempotent`;
    any other request straight to the app, with nothing in between."""

    def __init__(self, app: ASGIApp, keys: IdempotencyKeys, auth_secret: str) -> None:
        self.app = app
        self.keyed = BaseHTTPMiddleware(app, dispatch=partial(_idempotent, keys, auth_secret))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and Headers(scope=scope).get(HEADER) is not None
        ):
            await self.keyed(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _idempotent(
    keys: IdempotencyKeys,
    auth_secret: str,
    request: Request,
    call_next: Callable[[Request], Awaitable[Response]],
) -> Response:
    """A POST with ``Idempotency-Key``: claim the key, or answer as the first request
    with it was answered."""
    key = request.headers.get(HEADER)
    if request.method != "POST" or key is None:
        return await call_next(request)
    if not _KEY.fullmatch(key):
        return _error(
            422,
            "invalid_idempotency_key",
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters "
            "(a UUID is a good choice)",
            f"{HEADER} は {MAX_KEY_LENGTH} 文字以内の英数字・記号で指定してください (UUID を推奨)",
        )
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        if scheme.lower() != "bearer":
            raise ValueError("not a bearer token")
        agency = verify_token(auth_secret, token.strip()).agency_id
    except Exception:
        # Not authenticated: the route answers 401, and nothing runs to repeat.
        return await call_next(request)
    body = await request.body()
    digest = hashlib.sha256()
    for part in (request.method, request.url.path, request.url.query):
        digest.update(part.encode() + b"\n")
    digest.update(body)
    request_hash = digest.hexdigest()

    store = keys
    held = await store.claim(agency, key, request_hash)
    if held is not None:
        if held["request_hash"] != request_hash:
            return _error(
                422,
                "idempotency_key_reused",
                f"this {HEADER} was used for another request; use a new key for a new request",
                f"この {HEADER} は別の内容のリクエストに使われています。"
                "新しいリクエストには新しいキーを指定してください",
            )
        if held["status"] is None:
            return _error(
                409,
                "idempotency_key_in_progress",
                f"a request with this {HEADER} is still being processed; "
                "retry in a moment to get its answer",
                f"この {HEADER} のリクエストは処理中です。しばらくしてから再送してください",
            )
        return Response(
            held["response_body"] or "",
            status_code=held["status"],
            media_type="application/json",
            headers={"idempotency-replayed": "true"},
        )

    try:
        response = await call_next(request)
        chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
    except BaseException:
        await store.release(agency, key)
        raise
    content = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
    if response.status_code >= 500:
        await store.release(agency, key)
    else:
        await store.keep(agency, key, response.status_code, content.decode("utf-8", "replace"))
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    return Response(content, status_code=response.status_code, headers=headers)


def document(schema: dict[str, Any], ttl: timedelta) -> None:
    """Declare the ``Idempotency-Key`` header on every POST of an OpenAPI document."""
    parameter = {
        "name": HEADER,
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
        "description": "a key of your choice (a UUID) that makes retrying this POST "
        "safe: a retry with the same key and the same body gets the first answer "
        "and records nothing twice; the same key with another body is a 422. Kept "
        f"{ttl.total_seconds() / 3600:g} hours per agency.",
    }
    for operations in schema.get("paths", {}).values():
        post = operations.get("post")
        if post is not None:
            post.setdefault("parameters", []).append(parameter)
