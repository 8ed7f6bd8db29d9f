"""The condition forms of the rule language, one class each, in modules by kind:

* ``answers`` — the inspector's answers to items (``answer``, ``any_answer``, ``at_least``...);
* ``context`` — a case's context (``provider``, any context field and the shorthands the framework declares, diversity);
* ``evidence_source`` — where the evidence on an item came from;
* ``derived`` — facts derived by other rules (``fact``);
* ``aggregates`` — the whole sample (``percent_sufficient``, ``gap``, ``rated``...);
* ``logic`` — ``all``, ``any`` and ``not``, at every level.

Every module here is imported (in name order), so a form added in a new module is registered
without touching this file. :data:`Condition` and :data:`SampleCondition` are the types rules
validate their ``when`` against.
"""

from __future__ import annotations

import importlib
import pkgutil

from engine.check.rules import form

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

#: A condition of a case or organisation rule.
Condition = form.union(form.CASE, "")
#: A condition of a sample rule.
SampleCondition = form.union(form.SAMPLE, "Sample")
