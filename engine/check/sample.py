"""Samples: a folder with ``sample.yaml``, ``cases/*.yaml``, ``organisation/*.yaml`` and,
optionally, ``moderation/*.yaml``.

Loading a sample validates every file against the framework the manifest names and checks what
no single file can: duplicate case references, one organisation file per provider, a second
marking only of a case in the sample and at most one per case. Every problem in every file is
reported in one pass.

A second marking (``moderation/NW-003.yaml``) is a case file in the same format, written by a
second inspector on the same case: it is compared with the first marking, never judged in its
place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.base import resources
from engine.base import text as texts
from engine.base.diagnostics import Diagnostic, InputError, did_you_mean, has_errors
from engine.check import framework as frameworks
from engine.check import cache, models, rules, validate
from engine.load import source

YAML_SUFFIXES = (".yaml", ".yml")


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A validated file: the document it came from (positions, sha256) and its model."""

    document: source.Document
    model: models.Strict

    @property
    def reference(self) -> str:
        return getattr(self.model, "case", None) or getattr(self.model, "organisation", "")

    def load(self) -> Loaded:
        return self


@dataclasses.dataclass(frozen=True)
class CaseHandle:
    """A case file that has validated, without its content, so memory does not grow with the
    sample. Its content is read only by an explicit :meth:`load` (which reads and validates the file
    again): a handle has no ``document`` or ``model`` that would silently re-read it on every access."""

    path: Path
    display: str
    reference: str
    sha256: str
    framework_path: Path

    def load(self) -> Loaded:
        """Read and validate the file again (from the validated-case cache, when it holds the
        file); it must not have changed since it validated."""
        loaded = load_case(self.path, self.display, self.framework_path)
        if loaded.document.sha256 != self.sha256:
            raise InputError([Diagnostic(self.display, 1, 1, "file_changed", "the file changed during the run",
                                         "run again once nobody is editing the sample")])
        return loaded


def load_case(path: str | os.PathLike[str], shown: str, framework_path: str | os.PathLike[str]) -> Loaded:
    """A case file read and validated against the framework at ``framework_path``, through the
    validated-case cache (:mod:`engine.check.cache`). Raises InputError."""
    framework = frameworks.load(framework_path)

    def check(document: source.Document):
        found = validate.kind_of(document)
        if found != "case":
            raise wrong_kind(document, "case", found, Path(path))
        return validate.to_model(document, "case", framework)

    document, model = cache.validated_case(path, shown, framework, framework_path, check)
    return Loaded(document, model)



@dataclasses.dataclass
class Sample:
    root: Path
    manifest: Loaded
    framework: models.Framework
    framework_path: Path
    cases: list  # CaseHandle (or Loaded), in case-reference order
    organisations: list[Loaded]
    warnings: list[Diagnostic]
    moderation: list[Loaded] = dataclasses.field(default_factory=list)  # second markings, by case


def warnings_for(loaded: Loaded) -> list[Diagnostic]:
    """Problems that do not stop a file being used but that a reviewer would want fixed."""
    found = []
    evidence = getattr(loaded.model, "evidence", {})
    for item_id, entry in evidence.items():
        if entry.counts_as in ("met_in_part", "not_met") and not (entry.note or "").strip():
            found.append(loaded.document.diagnostic(
                ("evidence", item_id), "missing_note", f"answer '{entry.answer}' on {item_id} has no note",
                "say what was found, so the reasoning trace can quote it", severity="warning"))
        if not entry.sources:
            found.append(loaded.document.diagnostic(
                ("evidence", item_id), "missing_sources", f"the answer on {item_id} has no sources",
                "say where the evidence was found, e.g. sources: [case_record]", severity="warning"))
    return found


#: Hints for files that are not YAML but look like sample data in another form.
_CONVERTIBLE = (".csv", ".xlsx", ".xls", ".ods")


def ignored_files(root: str | os.PathLike[str]) -> list[Diagnostic]:
    """A warning for every file in cases/ or organisation/ that qi does not read (not YAML), so a
    case saved in another format never silently disappears from the sample."""
    found = []
    for folder in ("cases", "organisation"):
        path = Path(root) / folder
        if not path.is_dir():
            continue
        try:
            children = sorted(path.iterdir())
        except OSError:
            continue  # an unreadable folder is reported where its files are read
        for child in children:
            if child.name.startswith(".") or child.suffix in YAML_SUFFIXES or child.is_dir():
                continue
            hint = (f"turn a spreadsheet into case files with: qi cases import {child} --out NEW_FOLDER"
                    if child.suffix.lower() in _CONVERTIBLE else f"{folder}/ files are read only when they end in .yaml")
            found.append(Diagnostic(str(child), 1, 1, "not_yaml", "this file is not YAML, so qi does not read it",
                                    hint, "warning"))
    return found


def check_file(path: str | os.PathLike[str], framework_path: str | os.PathLike[str] | None = None,
               *, expect: str | None = None, framework: models.Framework | None = None) -> Loaded:
    """Load and validate one data file: a case, organisation, sample manifest, framework, rule set
    (its models only; compiling is a later stage) or rule test file. Raises InputError with every
    problem found.

    A case or organisation file inside a sample folder is checked against the sample's framework
    unless ``framework_path`` names one.
    """
    return check_document(source.load(path), framework_path, expect=expect, framework=framework, location=Path(path))


def wrong_kind(document: source.Document, expect: str, kind: str, location: Path | None) -> InputError:
    """A file of another kind where ``expect`` files belong (in a case folder, said so)."""
    if expect == "case" and location is not None and location.parent.name == "cases":
        return InputError([document.diagnostic((), "wrong_file_kind", f"cases/ holds case files; this is "
                                               f"{texts.a(kind)} file", "move it out of cases/")])
    return InputError([document.diagnostic((), "wrong_file_kind", f"expected {texts.a(expect)} file, found "
                                           f"{texts.a(kind)} file", f"put {kind} files elsewhere")])


def check_document(document: source.Document, framework_path: str | os.PathLike[str] | None = None,
                   *, expect: str | None = None, framework: models.Framework | None = None,
                   location: Path | None = None) -> Loaded:
    """:func:`check_file` on a document already loaded from ``location``."""
    kind = validate.kind_of(document)
    if expect is not None and kind != expect:
        raise wrong_kind(document, expect, kind, location)
    if kind == "framework":
        model = validate.to_model(document, kind)
        reserved = rules.reserved_shorthands(model, document.origin or document.path)
        if reserved:
            raise InputError(reserved)
        return Loaded(document, model)
    if kind == "rules":
        return Loaded(document, rules.from_document(document).rules)
    if kind in ("profile", "ruletests"):
        what = "a generation profile" if kind == "profile" else "a rule test file"
        raise InputError([document.diagnostic((), "wrong_file_kind", f"{what} is not sample data",
                                              "check it with qi validate")])
    if framework is None:
        chosen = framework_path or _framework_of_enclosing_sample(location or document.location) or frameworks.default_path()
        framework = frameworks.load(chosen)
    return Loaded(document, validate.to_model(document, kind, framework))


def load_manifest(path: str | os.PathLike[str]) -> models.SampleManifest:
    """Load and validate a sample.yaml. Raises InputError."""
    return validate.to_model(source.load(path), "sample")


def enclosing_manifest(path: Path) -> models.SampleManifest | None:
    """The valid sample.yaml of the sample a case or organisation file sits in, if any."""
    manifest = path.resolve().parent.parent / "sample.yaml"
    if path.resolve().parent.name not in ("cases", "organisation") or not manifest.is_file():
        return None
    try:
        return load_manifest(manifest)
    except InputError:
        return None


def _framework_of_enclosing_sample(path: Path) -> Path | None:
    """The framework file the enclosing sample names (found from the sample folder), if any."""
    loaded = enclosing_manifest(path)
    if loaded is None:
        return None
    try:
        return frameworks.find({"id": loaded.framework.id, "version": loaded.framework.version},
                               path.resolve().parent.parent, lambda *diagnostic: Diagnostic(str(path), 1, 1, *diagnostic))
    except InputError:
        return None


def load(root: str | os.PathLike[str], framework_path: str | os.PathLike[str] | None = None, jobs: int = 1,
         advance: Callable[[int], None] | None = None, judge: Callable[[Loaded], Any] | None = None,
         take: Callable[[Any], None] | None = None) -> Sample:
    """Load and validate a whole sample folder (case files in ``jobs`` processes; ``advance(n)`` is
    called as case files are checked, for a progress bar). Raises InputError listing every problem.

    With ``judge``, each case that validates is passed to it while it is in memory (in the process
    that validated it; a module-level function or a partial of one), and ``take`` receives what it
    returned, in this process, for every case kept — so a caller can judge a sample while it is
    read, reading each file once. The caller discards what it took if loading raises."""
    root = Path(root)
    problems: list[Diagnostic] = []
    manifest_path = root / "sample.yaml"
    if not root.is_dir():
        raise InputError([Diagnostic(str(root), 1, 1, "not_a_sample", "this is not a folder",
                                     "give a sample folder holding sample.yaml, cases/ and organisation/")])
    if not manifest_path.exists() and not manifest_path.is_symlink():
        raise InputError([Diagnostic(str(manifest_path), 1, 1, "missing_manifest", "the sample has no sample.yaml",
                                     "add sample.yaml with id, title, area, period and framework")])
    outside = _outside(manifest_path, root.resolve())
    if outside:
        raise InputError([outside])
    manifest_document = source.load(manifest_path)
    manifest: models.SampleManifest | None = None
    try:
        manifest = validate.to_model(manifest_document, "sample")
    except InputError as error:
        problems.extend(error.diagnostics)
    named = _framework_named(manifest_document, problems if framework_path is None else [])
    if framework_path is None:
        framework_path = named
    elif named is not None and _sha256(named) != _sha256(framework_path):
        problems.append(manifest_document.diagnostic(
            ("framework",), "framework_mismatch",
            f"the sample's framework file {resources.display(named)} differs from {resources.display(framework_path)}, "
            "the one the rule set was checked against", "keep one copy of the framework file, on the search path "
            f"(the sample folder, ${frameworks.PATH_VARIABLE}, or --framework FILE)"))
    if framework_path is None:
        raise InputError(problems)  # without a framework the cases cannot be checked
    framework = frameworks.load(framework_path)

    warnings: list[Diagnostic] = ignored_files(root)
    cases = _check_cases(root / "cases", Path(framework_path), problems, warnings, jobs, advance, judge, take)
    cache.prune()
    organisations = _load_folder(root / "organisation", "organisation", framework, problems)
    warnings += [w for loaded in organisations for w in warnings_for(loaded)]
    cases_refused = any(d.path == str(root / "cases") for d in problems)  # a link out, a loop, unreadable
    if not cases and not cases_refused and not (root / "cases").is_dir():
        problems.append(Diagnostic(str(root / "cases"), 1, 1, "no_cases", "the sample has no cases/ folder",
                                   "add cases/ with one YAML file per case"))
    elif not cases and not problems:
        problems.append(Diagnostic(str(root / "cases"), 1, 1, "no_cases", "the sample has no case files",
                                   "add one YAML file per case to cases/"))
    problems += _duplicates(organisations, "organisation", "duplicate_organisation")
    moderation = _load_folder(root / "moderation", "case", framework, problems)
    problems += _second_markings(moderation, {c.reference for c in cases})
    warnings += [w for loaded in moderation for w in warnings_for(loaded) + _name_mismatches([loaded])]
    if has_errors(problems):
        raise InputError(problems + warnings)
    assert manifest is not None  # an invalid manifest is an error above
    return Sample(root, Loaded(manifest_document, manifest), framework, Path(framework_path),
                  sorted(cases, key=lambda h: h.reference), organisations, warnings,
                  sorted(moderation, key=lambda m: m.model.case))


def _sha256(path: str | os.PathLike[str]) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _framework_named(manifest: source.Document, problems: list[Diagnostic]) -> Path | None:
    """The framework file the manifest names (along the search path from the sample folder), or
    None with the reason added to ``problems``."""
    named = manifest.data.get("framework") if isinstance(manifest.data, dict) else None
    if not isinstance(named, dict) or not isinstance(named.get("id"), str) or not isinstance(named.get("version"), str):
        return None  # the manifest's own diagnostics say what is wrong
    try:
        return frameworks.named_by(manifest)
    except InputError as error:
        problems.extend(error.diagnostics)
        return None


def files(root: str | os.PathLike[str]) -> list[Path]:
    """Every file a sample folder holds that qi reads: the manifest, then cases, then organisations."""
    root = Path(root)
    return ([root / "sample.yaml"] + _yaml_files(root / "cases") + _yaml_files(root / "organisation")
            + _yaml_files(root / "moderation"))


def _yaml_files(folder: Path, problems: list[Diagnostic] | None = None) -> list[Path]:
    """The YAML files of one of a sample's folders that qi may read, in name order. With
    ``problems``: a folder or file that is a link out of the sample (whose root is the folder's
    parent), a symlink loop or an unreadable folder is a diagnostic there, and the file is skipped."""
    refused = problems if problems is not None else []
    if not folder.is_dir():
        if folder.is_symlink():
            refused.append(_outside(folder, folder.parent.resolve()) or Diagnostic(
                str(folder), 1, 1, "unreadable_folder", "this is a link to nothing", "point the link at a folder"))
        return []
    root = folder.parent.resolve()
    outside = _outside(folder, root)
    if outside:
        refused.append(outside)
        return []
    try:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.suffix in YAML_SUFFIXES)
    except OSError as error:
        refused.append(Diagnostic(str(folder), 1, 1, "unreadable_folder",
                                  f"cannot list the folder: {(error.strerror or type(error).__name__).lower()}",
                                  "check its permissions"))
        return []
    kept = []
    for path in entries:
        outside = _outside(path, root)
        if outside:
            refused.append(outside)
        else:
            kept.append(path)
    return kept


def _outside(path: Path, root: Path) -> Diagnostic | None:
    """Why ``path`` may not be read as part of the sample at ``root``: it is a symlink loop, or a
    link (or inside a linked folder) resolving outside the sample. None when it may be read."""
    try:
        target = path.resolve(strict=False)
    except (RuntimeError, OSError):
        return _loop(path)
    if not target.is_relative_to(root):
        return Diagnostic(str(path), 1, 1, "outside_sample", f"this links to {target}, outside the sample folder",
                          "copy the file into the sample, or remove the link")
    return None


def _loop(path: Path) -> Diagnostic:
    return Diagnostic(str(path), 1, 1, "symlink_loop", "the path is a loop of symbolic links",
                      "point the link at a real file or folder")


def _check_case(path: Path, framework_path: Path, judge: Callable[[Loaded], Any] | None = None):
    """Validate one case file (and judge it, given ``judge``): (problems, warnings, handle or None,
    (line, col) of its reference, what ``judge`` returned)."""
    try:
        loaded = load_case(path, resources.display(path), framework_path)
    except InputError as error:
        return error.diagnostics, [], None, (1, 1), None
    document = loaded.document
    handle = CaseHandle(path, document.path, loaded.model.case, document.sha256, framework_path)
    judged = judge(loaded) if judge is not None else None
    return [], warnings_for(loaded) + _name_mismatches([loaded]), handle, document.where(("case",)), judged


def _check_cases(folder: Path, framework_path: Path, problems: list[Diagnostic], warnings: list[Diagnostic],
                 jobs: int = 1, advance: Callable[[int], None] | None = None, judge=None,
                 take=None) -> list[CaseHandle]:
    """Validate every case file (in ``jobs`` processes), keeping only a handle to each: what a large
    sample needs in memory. Duplicate references are found in file-name order whatever ``jobs`` is."""
    paths = _yaml_files(folder, problems)
    if jobs > 1 and len(paths) > 50:
        import concurrent.futures
        import multiprocessing

        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            checked = pool.map(_check_case, paths, [framework_path] * len(paths), [judge] * len(paths),
                               chunksize=max(1, min(64, len(paths) // (jobs * 8))))
            return _collect(_advancing(checked, advance), problems, warnings, take)
    return _collect(_advancing((_check_case(path, framework_path, judge) for path in paths), advance),
                    problems, warnings, take)


def _collect(checked, problems: list[Diagnostic], warnings: list[Diagnostic], take) -> list[CaseHandle]:
    """The handles of checked cases, in file-name order; problems and warnings gathered; each kept
    case's judgement handed to ``take`` as it arrives."""
    handles: list[CaseHandle] = []
    first: dict[str, tuple[str, int, str]] = {}
    for case_problems, case_warnings, handle, (line, col), judged in checked:
        problems.extend(case_problems)
        warnings.extend(case_warnings)
        if handle is None:
            continue
        key = handle.reference.casefold()  # NW-001 and nw-001 are one case (and one file on many disks)
        if key in first:
            where, first_line, earlier = first[key]
            same = "" if earlier == handle.reference else f" (as {earlier!r}; references are compared ignoring case)"
            problems.append(Diagnostic(handle.display, line, col, "duplicate_case",
                                       f"case {handle.reference!r} is already in the sample{same}",
                                       f"first given in {where}:{first_line}; each case appears once"))
            continue
        first[key] = (handle.display, line, handle.reference)
        handles.append(handle)
        if take is not None and judged is not None:
            take(judged)
    return handles


def _advancing(results, advance: Callable[[int], None] | None):
    for result in results:
        yield result
        if advance is not None:
            advance(1)


def _load_folder(folder: Path, kind: str, framework: models.Framework, problems: list[Diagnostic]) -> list[Loaded]:
    loaded: list[Loaded] = []
    for path in _yaml_files(folder, problems):
        try:
            document = source.load(path)
            found = validate.kind_of(document)
            if found != kind:
                raise InputError([document.diagnostic((), "wrong_file_kind",
                                                      f"{folder.name}/ holds {kind} files; this is a {found} file",
                                                      f"move it out of {folder.name}/")])
            loaded.append(Loaded(document.slim(), validate.to_model(document, kind, framework)))
        except InputError as error:
            problems.extend(error.diagnostics)
    return loaded


def _duplicates(files: list[Loaded], field: str, code: str) -> list[Diagnostic]:
    first: dict[str, Loaded] = {}
    problems = []
    for loaded in files:
        value = getattr(loaded.model, field)
        if value in first:
            earlier = first[value].document
            line, _ = earlier.where((field,))
            problems.append(loaded.document.diagnostic(
                (field,), code, f"{field} {value!r} is already in the sample",
                f"first given in {earlier.path}:{line}; each {field} appears once"))
        else:
            first[value] = loaded
    return problems


def _second_markings(moderation: list[Loaded], references: set[str]) -> list[Diagnostic]:
    """A second marking must be of a case in the sample, and there is at most one per case."""
    problems = [loaded.document.diagnostic(
        ("case",), "unknown_case", f"second marking of case {loaded.model.case!r}, which is not in the sample",
        did_you_mean(loaded.model.case, sorted(references), "cases"))
        for loaded in moderation if loaded.model.case not in references]
    return problems + _duplicates(moderation, "case", "duplicate_marking")


def _name_mismatches(cases: list[Loaded]) -> list[Diagnostic]:
    return [loaded.document.diagnostic(
        ("case",), "file_name_mismatch",
        f"the file is named {Path(loaded.document.path).name} but holds case {loaded.model.case}",
        f"name it {loaded.model.case}.yaml so reviewers find it", severity="warning")
        for loaded in cases
        if Path(loaded.document.path).stem.lower() != loaded.model.case.lower()]
