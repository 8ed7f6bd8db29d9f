"""Plain labels for the groups of a sample (``gender:female`` -> ``women``), from the framework's
vocabulary: what every view and every tested gap calls a group."""

from __future__ import annotations

from typing import Iterable

from engine.check import models

ALL = "all"


def labels(framework: models.Framework, group_keys: Iterable[str]) -> dict[str, str]:
    """Plain labels for the group keys of a run's aggregates (``gender:female`` → ``women``)."""
    vocabulary = framework.vocabulary
    grouped = [field for field in vocabulary.context if field.group and field.terms]
    # a provider is named by its id (EAST), every other grouping's value by its term's label
    terms = {field.id: {t.id: (t.id if field.terms == "providers" else t.label)
                        for t in getattr(vocabulary, field.terms)} for field in grouped}
    titles = {field.id: field.label.lower() for field in grouped}
    titles.update({d.id: d.label for d in vocabulary.diversity})
    found = {ALL: "all cases"}
    for key in sorted(set(group_keys) - {ALL}):
        field, _, value = key.partition(":")
        plain = vocabulary.group_labels.get(field, {}).get(value) or terms.get(field, {}).get(value)
        if plain is None:
            title = titles.get(field, field.replace("_", " "))
            shown = "not given" if value == "not_given" else value.replace("_", " ")
            plain = f"{title}: {shown}"
        found[key] = plain
    return found
