"""Plain labels for the groups of a sample (``gender:female`` -> ``women``), from the framework's
vocabulary: what every view and every tested gap calls a group."""

from __future__ import annotations

from typing import Iterable

from engine.check import models

ALL = "all"


def labels(framework: models.Framework, group_keys: Iterable[str]) -> dict[str, str]:
    """Plain labels for the group keys of a run's aggregates (``gender:female`` → ``women``)."""
    vocabulary = framework.vocabulary
    terms = {"provider": {t.id: t.id for t in vocabulary.providers},
             "sentence_type": {t.id: t.label for t in vocabulary.sentence_types},
             "risk_of_serious_harm": {t.id: t.label for t in vocabulary.risk_levels}}
    titles = {"provider": "provider", "sentence_type": "sentence", "risk_of_serious_harm": "risk of serious harm"}
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
