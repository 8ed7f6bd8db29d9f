"""Ratings as every view shows them: a band beside its derivation, or why a target is not rated.

A run's ``sample_judgement.rating_scheme`` (see engine/judge/judge.py) says whether the rule set
issues bands at all, how they are derived (the rule set's own words) and which targets are left
unrated. The report, the ``qi run`` headline, the web app and the export all read ratings through
this module, so none can show a band without the method, or a blank where a band was withheld.
"""

from __future__ import annotations

from engine.compile import facts

#: Why a target is not rated, in words (``{n}``: its applicable cases).
WHY = {"too_few_cases": "too few cases to rate (n = {n})",
       "no_criterion_rated": "not rated: no criterion rated",
       "no_rule_rated": "not rated (n = {n})"}


def scheme(report: dict) -> dict | None:
    """The run's rating scheme; None when its rule set issues no bands."""
    return report.get("sample_judgement", {}).get("rating_scheme")


def method(report: dict) -> str | None:
    """How the bands were derived, from the rule set; None when there are no bands."""
    found = scheme(report)
    return found["method"] if found else None


def bands(report: dict) -> dict[tuple[str, str], str]:
    """(target, group) → band id, where group is ``all`` or a provider (as ratings record it)."""
    return {(r["target"], r["group"]): r["band"] for r in report.get("sample_judgement", {}).get("ratings", [])}


def cells(report: dict) -> dict[tuple[str, str], str]:
    """(target, group) → what a view shows for the rating: the band in words ("requires
    improvement"), or why there is none ("too few cases to rate (n = 4)"). Empty without bands."""
    found = scheme(report)
    if not found:
        return {}
    shown = {key: band.replace("_", " ") for key, band in bands(report).items()}
    for entry in found["unrated"]:
        shown[(entry["target"], entry["group"])] = WHY[entry["why"]].format(n=entry["applicable"])
    return shown


def cell(shown: dict, target: str, group_key: str) -> str:
    """The rating shown for ``target`` in an aggregates group (``all`` or ``provider:X``)."""
    return shown.get((target, group_key if group_key == facts.ALL else group_key.split(":", 1)[-1]), "")
