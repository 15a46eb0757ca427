"""What every service's routes share: the command context of a request, role checks,
If-Match, labelled values. A route is parse -> command -> view, nothing else."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from pydantic import BaseModel, Field

from kyosei_events import Metadata
from kyosei_events.labels import LabelledEnum

from .application import CommandContext
from .auth import CurrentIdentity, Identity, Role, require
from .errors import ApiError
from .http import Runtime
from .identity import reads_households

Note = Annotated[str | None, Field(None, max_length=20_000, description="free text (personal)")]
IfMatch = Annotated[
    int | None,
    Header(
        ge=0,
        le=2_147_483_647,
        description="the version you read; 409 if someone wrote since (optional)",
    ),
]


def writer(identity: CurrentIdentity) -> Identity:
    """Staff and coordinators record the work; auditors and operators only read."""
    require(identity, Role.STAFF, Role.COORDINATOR)
    return identity


def reader(identity: CurrentIdentity) -> Identity:
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


def command_context(request: Request, identity: Writer, runtime: Runtime) -> CommandContext:
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


class LabelledValue(BaseModel):
    """An enum value with the Japanese label that users read."""

    value: str
    label_ja: str


def labelled(v: LabelledEnum) -> LabelledValue:
    return LabelledValue(value=v.value, label_ja=v.label_ja)


def labelled_opt(v: LabelledEnum | None) -> LabelledValue | None:
    return None if v is None else labelled(v)
