"""The one auth check: every request carries a signed identity.

An access token is an HS256 JWT with the claims ``agency`` (支援関係機関 id),
``sub`` (staff member id), ``role`` (staff, coordinator, auditor or operator) and
``exp``. Services verify it with the deployment's KYOSEI_AUTH_SECRET; the identity
is recorded on every event the request causes.
"""

from __future__ import annotations

import functools
import time
from typing import Annotated

import jwt
from fastapi import Depends, Request

from .errors import ApiError
from .identity import Identity, Role

__all__ = [
    "CurrentIdentity",
    "Identity",
    "Role",
    "authenticate",
    "issue_token",
    "require",
    "verify_token",
]


def issue_token(secret: str, agency_id: str, staff_id: str, role: Role, ttl: int = 8 * 3600) -> str:
    now = int(time.time())
    claims = {
        "agency": agency_id,
        "sub": staff_id,
        "role": role.value,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str) -> Identity:
    """The identity a token signed with ``secret`` carries; an :class:`ApiError` 401
    naming what is wrong otherwise.

    A client sends the same token with every request until it expires: a token verified
    once is remembered (the last ``VERIFIED_TOKENS``, by secret and token) with the
    times it is valid between, and is checked again in full outside them (an expired
    one answers ``token_expired`` as before). Only tokens that passed are remembered."""
    identity, valid_from, expires = _verified(secret, token)
    if valid_from <= time.time() < expires:
        return identity
    return _verify(secret, token)[0]


VERIFIED_TOKENS = 1024


@functools.lru_cache(maxsize=VERIFIED_TOKENS)
def _verified(secret: str, token: str) -> tuple[Identity, float, float]:
    return _verify(secret, token)


def _verify(secret: str, token: str) -> tuple[Identity, float, float]:
    """The token's identity, and the times it is valid from (its ``iat`` and ``nbf``)
    and until (its ``exp``), once its signature and claims are checked now."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise ApiError(
            401,
            "token_expired",
            "the access token has expired; get a new one",
            "アクセストークンの有効期限が切れています。再発行してください",
        ) from None
    except jwt.InvalidTokenError as exc:
        raise ApiError(
            401,
            "token_invalid",
            f"the access token is not valid: {exc}",
            "アクセストークンが無効です",
        ) from None
    try:
        identity = Identity(str(claims["agency"]), str(claims["sub"]), Role(claims["role"]))
    except (KeyError, ValueError):
        raise ApiError(
            401,
            "token_claims",
            "the token needs the claims agency, sub and role "
            f"(one of {', '.join(r.value for r in Role)})",
            "トークンに agency・sub・role が必要です",
        ) from None
    # PyJWT refuses an iat or nbf after now and an exp at or before now.
    starts = [int(claims[c]) for c in ("iat", "nbf") if c in claims]
    return identity, float(max(starts, default=0)), float(int(claims["exp"]))


async def authenticate(request: Request) -> Identity:
    """The caller's identity from the request's bearer token (a coroutine: FastAPI runs a
    plain function dependency in a worker thread, a hop per request for no I/O)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "unauthenticated",
            "send 'Authorization: Bearer <token>' (make dev prints how to get one)",
            "Authorization ヘッダーにアクセストークンを指定してください",
        )
    secret: str = request.app.state.runtime.settings.auth_secret
    return verify_token(secret, token.strip())


CurrentIdentity = Annotated[Identity, Depends(authenticate)]


def require(identity: Identity, *roles: Role) -> None:
    if identity.role not in roles:
        raise ApiError(
            403,
            "forbidden_role",
            f"role {identity.role.value} may not do this; needs {' or '.join(roles)}",
            "この操作を行う権限がありません",
        )
