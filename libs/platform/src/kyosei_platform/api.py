"""What every service's routes share: the command context of a request, role checks,
ETag and If-Match, the request body's rules, labelled values. A route is
parse -> command -> view, nothing else.

Optimistic concurrency over HTTP: a resource's entity tag is its stream version as a
strong, quoted tag (``ETag: "7"``), sent on every read of one resource and on the
answer of every write to it. A write may send it back as ``If-Match``; when the
resource changed since, the answer is 412 ``precondition_failed`` naming the current
tag and nothing is recorded. A write without If-Match is decided on the current state;
if another write lands in between, the server runs it again on the new state.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel, PlainSerializer, WithJsonSchema

from kyosei_events import Metadata
from kyosei_events.labels import LabelledEnum

from .application import CommandContext
from .auth import CurrentIdentity, Identity, Role, require
from .errors import ApiError
from .identity import reads_households
from .requests import Name, Note, RequestModel, ShortText, Text, UniqueList
from .runtime import Runtime

__all__ = [
    "Command",
    "IfMatch",
    "LabelledValue",
    "Name",
    "Note",
    "Reader",
    "RequestModel",
    "ShortText",
    "Text",
    "Timestamp",
    "UniqueList",
    "Writer",
    "etag",
    "labelled",
    "labelled_opt",
    "tag",
    "with_etag",
]

# A weak tag never matches If-Match (RFC 9110 §13.1.1: strong comparison); sending it
# on is the same as sending a version the resource never had.
NEVER_MATCHES = -1
_STRONG = re.compile(r'^"(\d{1,10})"$')
_WEAK = re.compile(r'^W/"[^"]*"$')
_LEGACY = re.compile(r"^\d{1,10}$")


def etag(version: int) -> str:
    """The entity tag of a resource at ``version``: strong and quoted, e.g. ``"7"``."""
    return f'"{version}"'


def tag(response: Response, version: int) -> None:
    """Send the resource's entity tag (``ETag``) with the answer."""
    response.headers["ETag"] = etag(version)


def with_etag(status: int = 200) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a route that answers with the resource's ETag."""
    header = {
        "description": 'the resource\'s version as a strong entity tag, e.g. "7": send it '
        "back as If-Match to write only if nobody wrote since",
        "schema": {"type": "string"},
    }
    return {status: {"headers": {"ETag": header}}}


async def if_match(
    if_match: Annotated[
        str | None,
        Header(
            max_length=100,
            description='the ETag you read, e.g. "7": the write is recorded only if the '
            "resource is still at that version, else 412 precondition_failed. * means "
            "any version; a weak tag (W/...) never matches. A bare number (7) is still "
            "accepted for older clients. Without it, the write applies to the current "
            "version.",
        ),
    ] = None,
) -> int | None:
    """The version the caller's If-Match names (None: no condition)."""
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip()
    if m := _STRONG.match(value) or _LEGACY.match(value):
        version = int(m.group(1) if m.re is _STRONG else m.group(0))
        if version <= 2_147_483_647:
            return version
    if _WEAK.match(value):
        return NEVER_MATCHES
    raise ApiError(
        422,
        "invalid_request",
        'If-Match takes one entity tag as the ETag header gave it, e.g. "7", or *',
        'If-Match には ETag ヘッダーの値 (例: "7") を1つ、または * を指定してください',
        field="If-Match",
    )


IfMatch = Annotated[int | None, Depends(if_match)]


async def writer(identity: CurrentIdentity) -> Identity:
    """Staff and coordinators record the work; auditors and operators only read."""
    require(identity, Role.STAFF, Role.COORDINATOR)
    return identity


async def reader(identity: CurrentIdentity) -> Identity:
    """Operators run the services; they read no household data anywhere: every route
    that answers with household data takes a :data:`Reader` (or a :data:`Writer`), so
    an operator's token is refused there with 403 ``forbidden_role``. Routes meant for
    operators are tagged ``operations`` and take neither."""
    if not reads_households(identity):
        raise ApiError(
            403,
            "forbidden_role",
            f"role {identity.role.value} runs the services and reads no household data; "
            "use a staff, coordinator or auditor token",
            "運用担当者 (operator) は世帯の情報を閲覧できません",
        )
    return identity


Writer = Annotated[Identity, Depends(writer)]
Reader = Annotated[Identity, Depends(reader)]


async def command_context(request: Request, identity: Writer, runtime: Runtime) -> CommandContext:
    """The context a command runs in for this request: the caller, the request's
    correlation id, the service's store."""
    return CommandContext(
        store=runtime.store,
        actor=identity,
        metadata=Metadata(
            correlation_id=getattr(request.state, "correlation_id", None),
            agency_id=identity.agency_id,
            staff_id=identity.staff_id,
        ),
    )


Command = Annotated[CommandContext, Depends(command_context)]


def rfc3339(at: datetime) -> str:
    """The one way a time is written in a view: RFC 3339 in UTC with its offset and
    microseconds, e.g. ``2026-11-24T01:00:00.000000+00:00`` (as the read models store
    it, so that lists and details agree and text order is time order)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


Timestamp = Annotated[
    datetime,
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]
"""A time in a view (details and lists alike): see :func:`rfc3339`."""


class LabelledValue(BaseModel):
    """An enum value with the Japanese label that users read."""

    value: str
    label_ja: str


def labelled(v: LabelledEnum) -> LabelledValue:
    return LabelledValue(value=v.value, label_ja=v.label_ja)


def labelled_opt(v: LabelledEnum | None) -> LabelledValue | None:
    return None if v is None else labelled(v)
