"""Logging: every line one JSON object, with the request's correlation id.

structlog renders kyosei's own lines; the standard library's loggers (uvicorn,
aiokafka, FastStream, SQLAlchemy, and Python warnings through ``py.warnings``) go
through the same processors by structlog's ``ProcessorFormatter`` on the root logger,
so no line is plain text between the JSON ones. uvicorn must not install its own
handlers: run it with ``log_config=None`` (:func:`kyosei_platform.http.server_config`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Standard-library loggers and the least level they report at: their info lines are
# per connection or per message and say nothing kyosei's own lines do not.
QUIET = {
    "aiokafka": logging.WARNING,
    "faststream": logging.INFO,
    "sqlalchemy": logging.WARNING,
    "alembic": logging.INFO,
    "uvicorn.access": logging.WARNING,  # kyosei writes its own request line (http.py)
}


def configure(level: str = "info", fmt: str = "json") -> None:
    """structlog and the standard library's root logger, to stderr: JSON lines for
    ``fmt="json"``, else lines for people reading a terminal."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    threshold = logging.getLevelNamesMapping()[level.upper()]
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _lift_extra,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        # A standard-library record: its logger's name, then as structlog's own lines.
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            _drop_colours,
            *shared,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(threshold, logging.WARNING))
    for name, least in QUIET.items():
        logging.getLogger(name).setLevel(max(threshold, least))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "aiokafka", "faststream"):
        # Whatever handler a library or an earlier configuration left on its logger
        # would write plain text: the root's handler alone writes.
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
    logging.getLogger("uvicorn.error").setLevel(threshold)
    logging.captureWarnings(True)


def _lift_extra(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """FastStream logs its context (topic, group_id, message_id) as ``extra``, as for
    the stdlib: make those keys of the JSON line like any other."""
    extra = event.pop("extra", None)
    if isinstance(extra, dict):
        for key, value in extra.items():
            event.setdefault(key, value)
    return event


def _drop_colours(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """uvicorn passes its message again with terminal colour codes (``color_message``)."""
    event.pop("color_message", None)
    return event
