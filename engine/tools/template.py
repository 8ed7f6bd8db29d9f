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


def case_template(framework: models.Framework, reference: str, provider: str,
                  chosen: dict[str, str] | None = None) -> str:
    """The YAML text of a new case file; ``chosen`` gives values of declared term fields by dotted
    path (e.g. ``{"order.type": "community"}``). Raises ValueError for a bad reference, provider,
    field or value."""
    try:
        models.check_reference(reference)
    except Exception as error:  # pydantic's custom error carries the message and hint
        raise ValueError(f"{error}") from None
    check_choice(framework, "providers", provider, "provider")
    vocabulary = framework.vocabulary
    chosen = dict(chosen or {})
    population = chosen.pop("population", None)
    if population is not None:
        if not vocabulary.populations:
            raise ValueError("the framework declares no populations of cases")
        check_choice(framework, "populations", population, "population")
    for path, value in chosen.items():
        declared = vocabulary.case_field(path)
        if declared is None or declared.type != "term":
            terms = [p for p in _term_paths(vocabulary.case_file)]
            raise ValueError(f"{path!r} is not a case field with one value ({did_you_mean(path, terms)})")
        chosen[path] = check_choice(framework, declared.terms, _typed(vocabulary, declared, value),
                                    declared.each or declared.id)
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
    ]
    if population is not None:
        lines.append(f"population: {json.dumps(population)}")
    lines += _field_lines(vocabulary.case_file, vocabulary, chosen, "")
    lines.append("diversity: {}                  # optional: replace {} with lines such as the ones below")
    for field in vocabulary.diversity:
        lines.append(f"  # {field.id}: one of {', '.join(field.values)}  ({field.label})")
    lines.append(f"evidence:                      # answer: {answers}; sources: any of {one_of('evidence_sources')}")
    for standard in framework.standards:
        if standard.scope != "case":
            lines.append(f"  # standard {standard.id} ({standard.title}) is judged in organisation files, not here")
            continue
        if standard.population != population:
            lines.append(f"  # standard {standard.id} ({standard.title}) is answered by cases of "
                         f"{'the ' + standard.population + ' population' if standard.population else 'the main sample'}")
            continue
        lines.append(f"  # --- standard {standard.id}: {standard.title}")
        for criterion in standard.criteria:
            lines += _comment(f"{criterion.id} {criterion.title}", "  # ")
            for item in criterion.items:
                lines += _comment(f"{item.id}: {item.text}", "  #   ")
                lines.append(f"  {item.id}: {{answer: null, note: null, sources: []}}")
    return "\n".join(lines) + "\n"


def _term_paths(fields: list[models.CaseField], prefix: str = "") -> list[str]:
    return [p for f in fields for p in ([prefix + f.id] if f.type == "term" else
                                        _term_paths(f.fields, f"{prefix}{f.id}.") if f.type == "mapping" else [])]


def _typed(vocabulary: models.Vocabulary, field: models.CaseField, value: str):
    """A value given on the command line, as its vocabulary writes it (a number for numbered terms)."""
    if vocabulary.numbered(field.terms) and value.lstrip("-").isdigit():
        return int(value)
    return value


def _field_lines(fields: list[models.CaseField], vocabulary: models.Vocabulary, chosen: dict, prefix: str,
                 indent: str = "") -> list[str]:
    """One line per declared field (a mapping: its fields below it; an optional mapping: null, with
    its shape in the comment), each with the values allowed."""
    lines = []
    for field in fields:
        path = prefix + field.id
        if field.type == "mapping" and (field.required or any(p.startswith(path + ".") for p in chosen)):
            lines.append(f"{indent}{field.id}:")
            lines += _field_lines(field.fields, vocabulary, chosen, path + ".", indent + "  ")
            continue
        if field.type == "mapping":
            shape = ", ".join(f"{child.id}: {_choices(child, vocabulary, ' | ')}" for child in field.fields)
            value, comment = "null", f"or {{{shape}}}: {field.description}"
        elif field.type == "terms":
            value, comment = "[]", f"any of: {_choices(field, vocabulary, ', ')}"
        elif field.type == "term":
            value = json.dumps(chosen[path]) if path in chosen else "null"
            comment = "" if path in chosen else f"one of: {_choices(field, vocabulary, ', ')}"
        else:
            value, comment = "null", field.description
        text = f"{indent}{field.id}: {value}"
        lines.append(f"{text:<31}# {comment}" if comment else text)
    return lines


def _choices(field: models.CaseField, vocabulary: models.Vocabulary, between: str) -> str:
    if field.type in ("term", "terms"):
        return between.join(map(str, vocabulary.ids(field.terms)))
    return field.type


def _comment(text: str, prefix: str) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), WIDTH - len(prefix), initial_indent=prefix,
                         subsequent_indent=prefix + "  ") or [prefix.rstrip()]

