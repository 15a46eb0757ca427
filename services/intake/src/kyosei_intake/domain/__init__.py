"""Intake's aggregates: pure decisions (commands -> events) and state (events -> state).

No I/O here. A decision that breaks a rule raises :class:`Rejected` with a code and
messages in English and Japanese; the API turns it into a 4xx.
"""

from __future__ import annotations


class Rejected(Exception):
    """A command that the aggregate's rules do not allow."""

    def __init__(
        self,
        code: str,
        message: str,
        message_ja: str,
        *,
        status: int = 409,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.message_ja = code, message, message_ja
        self.status, self.field = status, field


def invalid(field: str, code: str, message: str, message_ja: str) -> Rejected:
    """A command whose ``field`` is wrong (HTTP 422 naming the field)."""
    return Rejected(code, message, message_ja, status=422, field=field)
