"""Templates: the Jinja2 environment every Markdown and HTML view is rendered with.

HTML templates (``*.html.j2``) are autoescaped, so text from case and rule files is always shown
as text; Markdown templates are not.
"""

from __future__ import annotations

import jinja2

environment = jinja2.Environment(
    loader=jinja2.PackageLoader("engine.report", "templates"),
    autoescape=lambda name: name is not None and name.endswith(".html.j2"),
    trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
)


def show(value) -> str:
    """A value as a reader would write it: lists joined, true/false, none."""
    if isinstance(value, list):
        return ", ".join(show(v) for v in value) or "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {show(v)}" for k, v in value.items())
    return str(value)


environment.filters["show"] = show

_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|~!#"} | {"<": "&lt;", ">": "&gt;",
                                                                       "\n": " ", "\r": " "})


def markdown_text(value) -> str:
    """Text from an input file made safe to place in Markdown: shown as written, never as markup —
    no emphasis, links, images, raw HTML, table cells or new lines it did not ask for. Characters
    Markdown reads are backslash-escaped; ``<`` and ``>`` become HTML entities."""
    return show(value).translate(_MARKDOWN_SPECIAL)


environment.filters["md"] = markdown_text


def render(template: str, **context) -> str:
    return environment.get_template(template).render(**context)
