"""Figures and what-ifs in plain words, as both the report draft and the text views say them:
agreement with its interval and kappa, and the smallest answer changes that would change a
finding. One wording, so `qi runs show` and report.md never disagree."""

from __future__ import annotations


def what_if_summary(criterion: str, what_if: dict) -> str:
    """The first smallest change that would change a finding, as the moderation list says it."""
    alternatives = what_if["alternatives"]
    if alternatives:
        shown = change_sets(alternatives)
        more = f" (or {len(shown) - 1} other way{'s' * (len(shown) != 2)}: qi explain --what-if)" if len(shown) > 1 else ""
        return "if " + shown[0] + more
    if what_if.get("beyond"):
        return f"only with more than {what_if['max_changes']} answers changed"
    return "under no set of answer changes"


def change_sets(alternatives: list[dict]) -> list[str]:
    """Change sets in words, those on the same items merged when every combination works
    ("an item were one answer or another instead of a third")."""
    groups: dict[tuple, list[dict]] = {}
    for alternative in alternatives:
        groups.setdefault(tuple(c["item"] for c in alternative["changes"]), []).append(alternative)
    said = []
    for items, members in groups.items():
        options = [list(dict.fromkeys(m["changes"][i]["to"] for m in members)) for i in range(len(items))]
        whole = 1
        for values in options:
            whole *= len(values)
        rows = [[(c["item"], c["from"], [c["to"]]) for c in m["changes"]] for m in members]
        if whole == len(members):
            rows = [[(c["item"], c["from"], options[i]) for i, c in enumerate(members[0]["changes"])]]
        for row in rows:
            said.append(_and([_change(item, before, after) for item, before, after in row]))
    return said


def _change(item: str, before: str, after: list[str]) -> str:
    wanted = " or ".join(after)
    if before == "not_assessed":
        return f"{item} were answered {wanted} (it is not assessed)"
    return f"{item} were {wanted} instead of {before}"


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def agreement_words(figures: dict) -> str:
    """Agreement figures in words: "10 of 12 (83.3%, 95% CI 55.2–95.3); kappa 0.69 (0.29–1.00)"."""
    if not figures["n"]:
        return "no pairs to compare"
    interval = figures["percent_interval"]
    clustered = ", resampling whole cases" if figures.get("interval_method") else ""
    words = (f"{figures['agreed']} of {figures['n']} ({figures['percent']}%"
             + (f", 95% CI {interval[0]}–{interval[1]}{clustered}" if interval else "") + "); kappa ")
    if figures["kappa"] is None:
        return words + figures["kappa_note"]
    words += f"{figures['kappa']}"
    if figures["kappa_interval"]:
        words += f" (95% CI {figures['kappa_interval'][0]}–{figures['kappa_interval'][1]}{clustered})"
    elif figures.get("interval_note"):
        words += f" ({figures['interval_note']})"
    return words


class Names:
    """What the run's framework calls its levels and the organisations it inspects, as every view
    words them (from report.json's ``framework.names``; a run recorded before they were kept reads
    as standards, criteria and items judged per provider)."""

    FALLBACK = {"standard": ["Standard", "Standards"], "criterion": ["Criterion", "Criteria"],
                "item": ["Item", "Items"], "organisation": ["Provider", "Providers"]}

    def __init__(self, report: dict) -> None:
        self._names = {**self.FALLBACK, **(report.get("framework", {}).get("names") or {})}

    def one(self, level: str) -> str:
        """``Key question``: one node of ``level``, capitalised as the framework writes it."""
        return self._names[level][0]

    def many(self, level: str) -> str:
        return self._names[level][1]

    def lower(self, level: str, count: int = 1) -> str:
        """``key question`` / ``key questions``: lower case, for running text."""
        word = self._names[level][0 if count == 1 else 1]
        return word if word.isupper() else word[:1].lower() + word[1:]


def maker(record: dict) -> str:
    """Who made a decision or sign-off, as the store knew them: ``ann (reviewer)`` for an account,
    ``ann (operating-system user)`` on a store without accounts, the bare name for a record made
    before stores had accounts (the name then is the one that was typed)."""
    name = str(record.get("reviewer"))
    if record.get("identity") == "account":
        return f"{name} ({str(record.get('role')).replace('_', ' ')})"
    if record.get("identity") == "os-user":
        return f"{name} (operating-system user)"
    return name
