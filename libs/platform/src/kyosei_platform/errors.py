"""Errors a user can act on: a 4xx with a code, an English and a Japanese message.

Every error of every service, the framework's own included (unknown route, wrong
method, unreadable body, body too large, wrong content type), has one body, the
:class:`Error` envelope::

    {"error": {"code", "message", "message_ja",
               "fields": [{"field", "problem", "problem_ja"}]}}

``fields`` is always there (empty when no single field is at fault). Never a stack
trace.

Field paths are written one way wherever the field is (body, query, path or header):
no location prefix, names joined by dots, list indices in brackets
(``members[0].name``, ``concerns[2]``), and a header by its HTTP name (``If-Match``,
``Idempotency-Key``). :func:`field_path` writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from kyosei_events import ConcurrencyError, EventTooLarge

from .application import PreconditionFailed, Rejected, is_write_conflict

log = structlog.get_logger(__name__)


class ApiError(Exception):
    """A 4xx the caller can act on. ``field`` names the request field that is wrong."""

    def __init__(
        self, status: int, code: str, message: str, message_ja: str, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.message_ja = status, code, message, message_ja
        self.field = field


# Japanese for the pydantic error types people meet at the API.
_PROBLEM_JA = {
    "missing": "必須項目です",
    "string_too_short": "短すぎます",
    "string_too_long": "長すぎます",
    "string_type": "文字列で指定してください",
    "string_pattern_mismatch": "使えない文字が含まれています",
    "enum": "選択肢にない値です",
    "literal_error": "選択肢にない値です",
    "list_type": "配列で指定してください",
    "too_short": "少なくとも1つ指定してください",
    "bool_type": "true か false で指定してください",
    "bool_parsing": "true か false で指定してください",
    "int_parsing": "整数で指定してください",
    "datetime_parsing": "日時の形式が正しくありません (ISO 8601)",
    "datetime_from_date_parsing": "日時の形式が正しくありません (ISO 8601)",
    "date_parsing": "日付の形式が正しくありません (YYYY-MM-DD)",
    "date_from_datetime_parsing": "日付の形式が正しくありません (YYYY-MM-DD)",
    "extra_forbidden": "この項目名はありません (綴りを確認してください)",
    "blank": "空白だけは指定できません",
    "json_invalid": "JSON として読めません",
    "model_attributes_type": "オブジェクトで指定してください",
    "dict_type": "オブジェクトで指定してください",
}
# English where pydantic's own words do not say what to do.
_PROBLEM = {"extra_forbidden": "not a known field of this request: check its spelling"}


class FieldProblem(BaseModel):
    """What is wrong with one field of the request."""

    field: str = Field(
        description="the field's path: dotted names, list indices in brackets "
        "(`members[0].name`), a header by its HTTP name (`If-Match`)"
    )
    problem: str
    problem_ja: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="what went wrong, for programs (`invalid_request`, ...)")
    message: str = Field(description="what went wrong and what to do, in English")
    message_ja: str = Field(description="the same in Japanese")
    fields: list[FieldProblem] = Field(description="the fields at fault (may be empty)")


class Error(BaseModel):
    """The body of every error answer (4xx, 5xx) of every kyosei service."""

    model_config = ConfigDict(extra="allow")

    error: ErrorDetail


_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


def header_name(name: str) -> str:
    """A header as HTTP writes it: ``if-match`` -> ``If-Match``."""
    return "-".join(part.capitalize() for part in name.replace("_", "-").split("-"))


def field_path(loc: Sequence[str | int]) -> str:
    """The one way a field is named: ``("body", "members", 0, "name")`` ->
    ``members[0].name``; ``("header", "if-match")`` -> ``If-Match``; ``("query",
    "limit")`` -> ``limit``. The whole body is ``body``."""
    parts = list(loc)
    where = parts.pop(0) if parts and parts[0] in _LOCATIONS else None
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif where == "header" and not path:
            path = header_name(part)
        else:
            path = f"{path}.{part}" if path else str(part)
    return path or "body"


def body(
    code: str, message: str, message_ja: str, fields: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The :class:`Error` envelope as JSON."""
    return {
        "error": {
            "code": code,
            "message": message,
            "message_ja": message_ja,
            "fields": fields or [],
        }
    }


def _line_column(doc: str, pos: int) -> tuple[int, int]:
    line = doc.count("\n", 0, pos) + 1
    return line, pos - (doc.rfind("\n", 0, pos) + 1) + 1


def _answer(exc: ApiError | Rejected) -> JSONResponse:
    fields = (
        [{"field": exc.field, "problem": exc.message, "problem_ja": exc.message_ja}]
        if exc.field
        else None
    )
    return JSONResponse(body(exc.code, exc.message, exc.message_ja, fields), status_code=exc.status)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _answer(exc)

    @app.exception_handler(Rejected)
    async def _rejected(_: Request, exc: Rejected) -> JSONResponse:
        # A command the domain refused: the 4xx it means.
        return _answer(exc)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        # The framework's own refusals: unknown route, wrong method, unreadable body.
        return JSONResponse(
            _framework_error(request, exc), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        for e in errors:
            if e.get("type") == "json_invalid":
                doc = exc.body if isinstance(exc.body, str) else ""
                pos = e["loc"][-1] if isinstance(e["loc"][-1], int) else 0
                line, column = _line_column(doc, pos)
                reason = (e.get("ctx") or {}).get("error", "JSON decode error")
                return JSONResponse(
                    body(
                        "invalid_json",
                        f"the body is not valid JSON: {reason} at line {line}, column {column}",
                        f"本文を JSON として読めません ({line} 行 {column} 文字目)",
                    ),
                    status_code=400,
                )
            if tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes):
                # A body the route did not read as JSON: another content type, or none.
                return JSONResponse(
                    body(
                        "unsupported_media_type",
                        "send the body as JSON with 'Content-Type: application/json'",
                        "本文は JSON で、Content-Type: application/json を指定して送ってください",
                    ),
                    status_code=415,
                )
        fields = []
        for e in errors:
            fields.append(
                {
                    "field": field_path(e.get("loc", ())),
                    "problem": _PROBLEM.get(e.get("type", ""), e.get("msg", "invalid")),
                    "problem_ja": _PROBLEM_JA.get(e.get("type", ""), "値が正しくありません"),
                }
            )
        names = ", ".join(f["field"] for f in fields)
        return JSONResponse(
            body(
                "invalid_request",
                f"the request is not valid: check {names}",
                f"入力内容に誤りがあります: {names}",
                fields,
            ),
            status_code=422,
        )

    @app.exception_handler(PreconditionFailed)
    async def _precondition(_: Request, exc: PreconditionFailed) -> JSONResponse:
        # The If-Match the caller sent is no longer the resource's version.
        return JSONResponse(
            body(
                "precondition_failed",
                str(exc),
                f"他の職員が先に更新しました (現在の版 {exc.current})。"
                "最新の内容を読み込んでからやり直してください",
            ),
            status_code=412,
            headers={"ETag": f'"{exc.current}"'},
        )

    @app.exception_handler(ConcurrencyError)
    async def _conflict(_: Request, exc: ConcurrencyError) -> JSONResponse:
        # Still losing the race after the command was run again on the new state.
        return JSONResponse(
            body(
                "version_conflict",
                str(exc),
                "他の職員が先に更新しました。最新の内容を読み込んでからやり直してください",
            ),
            status_code=409,
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if not is_write_conflict(exc):
            return await _unexpected(request, exc)
        # A deadlock or serialization failure still there after the command's own
        # retries: another request wrote the same records at the same moment.
        log.warning("write_conflict", error=str(exc.orig))
        return JSONResponse(
            body(
                "concurrent_update",
                "another request changed the same records at the same moment; "
                "nothing was recorded: reload and try again",
                "他の操作が同時に同じ記録を更新したため、記録されませんでした。"
                "最新の内容を読み込んでからやり直してください",
            ),
            status_code=409,
        )

    @app.exception_handler(EventTooLarge)
    async def _too_large(_: Request, exc: EventTooLarge) -> JSONResponse:
        # Refused before it was stored: Kafka could never carry it.
        return JSONResponse(
            body(
                "event_too_large",
                str(exc),
                f"記録する内容が大きすぎます ({exc.size} バイト、上限 {exc.limit} バイト)。"
                "一度に記録する内容を減らしてください",
            ),
            status_code=413,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled_error", exc_info=exc)
        return JSONResponse(
            body(
                "internal_error",
                "something went wrong on our side; nothing was recorded "
                "unless a later read shows it",
                "サーバー側でエラーが発生しました",
            ),
            status_code=500,
        )


def _framework_error(request: Request, exc: HTTPException) -> dict[str, Any]:
    what = f"{request.method} {request.url.path}"
    if exc.status_code == 404:
        return body(
            "route_not_found",
            f"there is no {what}: see /docs for the routes",
            f"{what} という操作はありません (/docs を参照してください)",
        )
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return body(
            "method_not_allowed",
            f"{request.method} is not allowed here; use {allowed}",
            f"この URL では {request.method} は使えません ({allowed} を使ってください)",
        )
    if exc.status_code == 400:
        return body(
            "unreadable_body",
            "the body cannot be read: send UTF-8 JSON",
            "本文を読み取れません。UTF-8 の JSON で送ってください",
        )
    return body(
        f"http_{exc.status_code}",
        str(exc.detail),
        f"リクエストを処理できません ({exc.status_code})",
    )
