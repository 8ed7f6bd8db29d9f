"""A blank case file to fill in (``qi case new``): every case-scoped item of the framework, its
text as a comment, the allowed answers and values beside each field.

Fields an inspector must decide are written ``null``: the file does not validate until they are
filled in, so a half-finished template cannot pass as assessed. Everything comes from the
framework file and the case model; nothing here knows what is inspected.
"""

from __future__ import annotations

import json
import textwrap

from engine.base.diagnostics import did_you_mean
from engine.check import models

WIDTH = 100


def check_choice(framework: models.Framework, kind: str, value: str, what: str) -> str:
    """``value`` if it is in vocabulary ``kind``; else a ValueError whose text says what is allowed."""
    allowed = framework.vocabulary.ids(kind)
    if value not in allowed:
        raise ValueError(f"{value!r} is not a known {what} ({did_you_mean(value, allowed)})")
    return value


def case_template(framework: models.Framework, reference: str, provider: str, sentence_type: str) -> str:
    """The YAML text of a new case file. Raises ValueError for a bad reference, provider or sentence."""
    try:
        models.check_reference(reference)
    except Exception as error:  # pydantic's custom error carries the message and hint
        raise ValueError(f"{error}") from None
    check_choice(framework, "providers", provider, "provider")
    check_choice(framework, "sentence_types", sentence_type, "sentence type")
    vocabulary = framework.vocabulary
    answers = " | ".join(vocabulary.ids("answers"))

    def one_of(kind: str) -> str:
        return ", ".join(map(str, vocabulary.ids(kind)))

    lines = [
        f"# A new case file: {framework.title}, version {framework.version}.",
        "# Fill in every null. For each item: your answer, a note saying what you found, and the sources",
        "# where you found it. Delete an item's line if you did not assess it (not assessed is different",
        f"# from not_applicable). Check the file with: qi validate {reference}.yaml",
        f"case: {json.dumps(reference)}",
        f"provider: {json.dumps(provider)}",
        "sentence:",
        f"  type: {json.dumps(sentence_type)}",
        f"  requirements: []             # any of: {one_of('requirement_types')}",
        "  start: null                  # the date supervision began, YYYY-MM-DD",
        f"risk_of_serious_harm: null     # one of: {one_of('risk_levels')}",
        f"mappa: null                    # or {{category: {' | '.join(map(str, vocabulary.ids('mappa_categories')))}, "
        f"level: {' | '.join(map(str, vocabulary.ids('mappa_levels')))}}}",
        f"flags: []                      # any of: {one_of('flags')}",
        "diversity: {}                  # optional: replace {} with lines such as the ones below",
    ]
    for field in vocabulary.diversity:
        lines.append(f"  # {field.id}: one of {', '.join(field.values)}  ({field.label})")
    lines.append(f"evidence:                      # answer: {answers}; sources: any of {one_of('evidence_sources')}")
    for standard in framework.standards:
        if standard.scope != "case":
            lines.append(f"  # standard {standard.id} ({standard.title}) is judged in organisation files, not here")
            continue
        lines.append(f"  # --- standard {standard.id}: {standard.title}")
        for criterion in standard.criteria:
            lines += _comment(f"{criterion.id} {criterion.title}", "  # ")
            for item in criterion.items:
                lines += _comment(f"{item.id}: {item.text}", "  #   ")
                lines.append(f"  {item.id}: {{answer: null, note: null, sources: []}}")
    return "\n".join(lines) + "\n"


def _comment(text: str, prefix: str) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), WIDTH - len(prefix), initial_indent=prefix,
                         subsequent_indent=prefix + "  ") or [prefix.rstrip()]

