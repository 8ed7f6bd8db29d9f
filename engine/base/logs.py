"""Logging: structlog to standard error, human-readable by default or JSON lines.

Standard output carries data only. Log events name files and counts, never case content: case
files hold special-category personal data, so notes and diversity values are not logged at any
level. Internal errors are described by :func:`where` — the exception's type and the frames it
passed through — never by its message or local variables, which can hold a whole case.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

import structlog

LEVELS = ("debug", "info", "warning", "error")


def configure(log_format: str = "human", level: str = "warning") -> None:
    """Send structlog events at ``level`` and above to stderr as ``human`` text or ``json`` lines."""
    renderer = (structlog.processors.JSONRenderer(sort_keys=True) if log_format == "json"
                else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback))
    structlog.configure(
        processors=[
            _frames_not_tracebacks,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def _frames_not_tracebacks(logger, method: str, event: dict) -> dict:
    """An event logged with ``exc_info`` gets the frames only (:func:`where`): a rendered traceback
    would print the message, and a rich one every local variable."""
    info = event.pop("exc_info", None)
    error = info if isinstance(info, BaseException) else sys.exc_info()[1] if info else None
    if error is not None:
        event.update(error=type(error).__name__, frames=where(error))
    return event


def where(error: BaseException) -> list[str]:
    """The frames an exception passed through, innermost last, as ``file:line in function``: what
    a bug report needs, without the exception's message or any variable's value."""
    frames = traceback.extract_tb(error.__traceback__)
    return [f"{os.path.relpath(frame.filename) if not frame.filename.startswith('<') else frame.filename}"
            f":{frame.lineno} in {frame.name}" for frame in frames]


def get(name: str):
    return structlog.get_logger(name)
