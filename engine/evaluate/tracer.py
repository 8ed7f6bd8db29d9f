"""The tracer: what the engine did on one case (or organisation, or sample), recorded as it ran.

The evaluator feeds the tracer as it goes — a phase starts with the derived attributes it asserts,
each rule action reports its rule as it fires, the phase ends (with the error, if one stopped it)
— so nothing has to be run again to say what happened. The same tracer serves case, organisation
and sample rules. Its :class:`Record` is the one account every reader starts from: the reasoning
trees of :mod:`engine.judge.trace`, rule coverage (:mod:`engine.tools.ruletest`) and the
evaluation's own result.

The record is well-formed at any moment, also after a failure: a phase that was interrupted is
closed with the error that interrupted it, and the record says it is incomplete.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PhaseRecord:
    """One phase: the derived attributes asserted with the case's own, and the rules that fired."""

    phase: int
    derived: dict
    fired: tuple[int, ...]
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Record:
    """Everything the engine did for one subject, in order."""

    section: str
    phases: tuple[PhaseRecord, ...]
    complete: bool
    error: str | None = None

    @property
    def fired(self) -> tuple[int, ...]:
        return tuple(sorted(i for phase in self.phases for i in phase.fired))

    def derived_in(self, phase: int) -> dict:
        """The derived attributes asserted in ``phase`` (what a rule of that phase saw)."""
        return self.phases[phase].derived if phase < len(self.phases) else {}

    def as_dict(self) -> dict:
        """Plain data, e.g. for a failure report."""
        return {"section": self.section, "complete": self.complete, "error": self.error,
                "phases": [{"phase": p.phase, "derived": p.derived, "fired": list(p.fired), "error": p.error}
                           for p in self.phases]}


class Tracer:
    """Records one evaluation as the engine reports it; :meth:`record` reads it back.

    Calls arrive in this order: :meth:`start`, then per phase :meth:`phase_started`, any number of
    :meth:`rule_fired`, :meth:`phase_ended`; :meth:`failed` when evaluation stops on an error.
    """

    def __init__(self) -> None:
        self._section = ""
        self._phases: list[PhaseRecord] = []
        self._open: tuple[int, dict] | None = None
        self._fired: list[int] = []
        self._error: str | None = None
        self._finished = False

    def start(self, section: str) -> None:
        self.__init__()
        self._section = section

    def phase_started(self, phase: int, derived: dict) -> None:
        self._open, self._fired = (phase, derived), []

    def rule_fired(self, rule_index: int) -> None:
        """Called from the rule's action, inside durable_rules, as the rule fires."""
        self._fired.append(rule_index)

    def phase_ended(self, error: BaseException | None = None) -> None:
        if self._open is None:
            return
        phase, derived = self._open
        self._phases.append(PhaseRecord(phase, derived, tuple(sorted(set(self._fired))),
                                        None if error is None else _describe(error)))
        self._open, self._fired = None, []

    def failed(self, error: BaseException) -> None:
        """Evaluation stopped: close the phase under way and keep the reason."""
        self.phase_ended(error)
        self._error = _describe(error)

    def finished(self) -> None:
        self._finished = True

    def record(self) -> Record:
        """The record so far; an open phase is shown closed as interrupted."""
        phases = list(self._phases)
        if self._open is not None:
            phases.append(PhaseRecord(self._open[0], self._open[1], tuple(sorted(set(self._fired))), "interrupted"))
        return Record(self._section, tuple(phases), self._finished and self._error is None, self._error)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
