"""The impact of a rule change: a sample judged under two rule sets, and everything that moves.

For methodology sign-off: per criterion (and standard) the before/after counts and percentages
where they differ; per case whose judgement changes, each finding that moves with the rules
responsible on each side, and the enablers and barriers gained or lost; the same for each
provider's organisation findings; and the ratings, recommendations and sample-level enablers and
barriers that change. Nothing that stays the same is listed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from engine.base import render
from engine.run import run

def compare(old_rules: str | os.PathLike[str], new_rules: str | os.PathLike[str],
            sample_dir: str | os.PathLike[str], jobs: int = 1, advance: Callable[[int], None] | None = None) -> dict:
    """Judge the sample under both rule sets and return what changes. Each case file is read once;
    under the new rule set only what the change can move is evaluated again. Raises InputError."""
    old, new = run.prepare_pair(sample_dir, old_rules, new_rules, jobs, advance)
    before, after = run.conclude_pair(old, new, jobs)
    return {
        "sample": old.sample.manifest.model.id,
        "old": run.ruleset_entry(old.cases), "new": run.ruleset_entry(new.cases),
        "targets": _targets(before["aggregates"]["targets"], after["aggregates"]["targets"]),
        "cases": _entities(before["cases"], after["cases"], "case"),
        "organisations": _entities(before["organisations"], after["organisations"], "organisation"),
        "ratings": _ratings(before["sample_judgement"]["ratings"], after["sample_judgement"]["ratings"]),
        "recommendations": _added_removed(before["sample_judgement"]["recommendations"],
                                          after["sample_judgement"]["recommendations"]),
        "sample_enablers": _added_removed(before["sample_judgement"]["enablers"], after["sample_judgement"]["enablers"]),
        "sample_barriers": _added_removed(before["sample_judgement"]["barriers"], after["sample_judgement"]["barriers"]),
    }


def _figures(group: dict) -> dict:
    return {"counts": group["counts"], "applicable": group["applicable"], "percent": group["percent"],
            "interval": group.get("interval")}


def _targets(before: dict, after: dict) -> list[dict]:
    changed = []
    for key, old in before.items():
        new = after[key]
        groups = {}
        for group in sorted(set(old["groups"]) | set(new["groups"])):
            if group != "all" and not group.startswith("provider:"):
                continue
            was, now = old["groups"].get(group), new["groups"].get(group)
            if was is None or now is None or was["counts"] != now["counts"]:
                groups[group] = {"before": _figures(was) if was else None, "after": _figures(now) if now else None}
        if groups:
            changed.append({"target": key, "title": old["title"], "groups": groups})
    return changed


def _entities(before: list[dict], after: list[dict], key: str) -> list[dict]:
    """Cases (or organisations) whose findings, enablers or barriers change."""
    after_by = {entry[key]: entry for entry in after}
    changed = []
    for old in before:
        new = after_by[old[key]]
        moves = [{"criterion": criterion, "before": finding["value"], "after": new["findings"][criterion]["value"],
                  "rules_before": finding["rules"], "rules_after": new["findings"][criterion]["rules"]}
                 for criterion, finding in old["findings"].items()
                 if finding["value"] != new["findings"][criterion]["value"]]
        factors = {}
        for kind in ("enablers", "barriers"):
            was = {f["id"]: f for f in old[kind]}
            now = {f["id"]: f for f in new[kind]}
            gained = [{"id": i, "text": now[i]["text"], "rules": now[i]["rules"]} for i in sorted(set(now) - set(was))]
            lost = [{"id": i, "text": was[i]["text"], "rules": was[i]["rules"]} for i in sorted(set(was) - set(now))]
            if gained or lost:
                factors[kind] = {"added": gained, "removed": lost}
        if moves or factors:
            changed.append({key: old[key], "findings": moves, **factors})
    return changed


def _ratings(before: list[dict], after: list[dict]) -> list[dict]:
    was = {(r["target"], r["group"]): r for r in before}
    now = {(r["target"], r["group"]): r for r in after}
    changed = []
    for target, group in sorted(set(was) | set(now), key=lambda k: (k[0].replace("standard ", "~"), k[1])):
        old, new = was.get((target, group)), now.get((target, group))
        if (old or {}).get("band") != (new or {}).get("band"):
            changed.append({"target": target, "group": group,
                            "before": old["band"] if old else "unrated", "after": new["band"] if new else "unrated",
                            "rules_before": old["rules"] if old else [], "rules_after": new["rules"] if new else []})
    return changed


def _added_removed(before: list[dict], after: list[dict]) -> dict:
    key = lambda entry: (entry["id"], entry["text"])  # noqa: E731
    was = {key(e): e for e in before}
    now = {key(e): e for e in after}
    strip = lambda e: {k: v for k, v in e.items() if k != "trace"}  # noqa: E731
    return {"added": [strip(now[k]) for k in sorted(set(now) - set(was))],
            "removed": [strip(was[k]) for k in sorted(set(was) - set(now))]}


def unchanged(result: dict) -> bool:
    return not (result["targets"] or result["cases"] or result["organisations"] or result["ratings"]
                or any(result[k]["added"] or result[k]["removed"]
                       for k in ("recommendations", "sample_enablers", "sample_barriers")))


def as_markdown(result: dict) -> str:
    return render.render("diff.md.j2", d=result, unchanged=unchanged(result))
