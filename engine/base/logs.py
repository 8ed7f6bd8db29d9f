"""Logging: structlog to standard error, human-readable by default or JSON lines.

Standard output carries data only. Log events name files and counts, never case content: case
files hold special-category personal data, so notes and diversity values are not logged at info.
"""

from __future__ import annotations

import logging
import sys

import structlog

LEVELS = ("debug", "info", "warning", "error")


def configure(log_format: str = "human", level: str = "warning") -> None:
    """Send structlog events at ``level`` and above to stderr as ``human`` text or ``json`` lines."""
    renderer = (structlog.processors.JSONRenderer(sort_keys=True) if log_format == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(name: str):
    return structlog.get_logger(name)
