"""qi: a rules-driven judgement engine for probation inspection. The command line.

A thin click layer: parse arguments, call ``engine``, render, exit. Data goes to stdout; logs,
progress and diagnostics go to stderr. Exit codes: 0 ok, 1 invalid input or a failed check,
2 usage error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import re
import sys
from pathlib import Path

import click

from engine.base import diagnostics, logs
from engine.base.diagnostics import Diagnostic, InputError
from engine.base import resources, text as texts
from engine.base.resources import data_dir
from engine.check import cache as case_cache
from engine.check import framework as frameworks
from engine.check import models, rules
from engine.check import sample as samples
from engine.evaluate.evaluate import EngineError
from engine.judge import whatif
from engine.judge.judge import SEVERITY
from engine.report import ratings as rating_views
from engine.report import report, views
from engine.run import final, pipeline, run
from engine.report import redact as redactor
from engine.store import accounts, review, store
from engine.tools import diff as differ
from engine.tools import files
from engine.tools import export as exporter
from engine.tools import generate, handbook, lint, ruletest, template, workbook
from engine.tools import junit as ruletest_junit

log = logs.get("qi")


def _emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _report(found: list[Diagnostic], output_format: str, checked: int) -> None:
    """Print diagnostics (text on stderr, or JSON on stdout) and a one-line summary on stderr."""
    found = diagnostics.sort(found)
    errors = sum(d.severity == "error" for d in found)
    warnings = len(found) - errors
    if output_format == "json":
        _emit_json({"checked": checked, "errors": errors, "warnings": warnings,
                    "diagnostics": [d.as_dict() for d in found]})
    else:
        for diagnostic in found:
            click.echo(diagnostic.render(), err=True)
    click.echo(f"checked {checked} file{'s' * (checked != 1)}: {errors} error{'s' * (errors != 1)}, "
               f"{warnings} warning{'s' * (warnings != 1)}", err=True)


class Failed(click.ClickException):
    """A check failed, after what it found was printed: exit 1, with an optional last word on stderr."""

    exit_code = 1

    def __init__(self, message: str = "") -> None:
        super().__init__(message)

    def show(self, file=None) -> None:
        if self.message:
            click.echo(self.message, err=True)


class Invalid(Failed):
    """Invalid input: every diagnostic (``path:line:col: code: message (hint)``) and the summary
    line on stderr, exit 1."""

    def __init__(self, error: InputError, checked: int) -> None:
        super().__init__()
        self.diagnostics, self.checked = error.diagnostics, checked

    def show(self, file=None) -> None:
        _report(self.diagnostics, "text", self.checked)


class Input(click.Path):
    """A path qi reads. A name as outputs give it for bundled data (``rules/…``, ``cases/…``) that
    does not exist here is the bundled file, wherever qi is installed (see resources.locate)."""

    def convert(self, value, param, ctx):
        return super().convert(value if isinstance(value, Path) and value.exists()
                               else str(resources.locate(value)), param, ctx)


format_option = click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
                             show_default=True, help="Output format.")
def _prefer_framework(context, parameter, value):
    """``--framework FILE``: that file comes first when anything names its framework."""
    if value:
        frameworks.prefer(value)
    return value


framework_option = click.option("--framework", "framework_path", type=Input(dir_okay=False), callback=_prefer_framework,
                                help="Framework file to use instead of the bundled one.")
#: ``--framework FILE`` where the framework is the one the inputs name: the file is found first.
framework_search_option = click.option(
    "--framework", type=Input(dir_okay=False), expose_value=False, callback=_prefer_framework,
    help=f"A framework file to use for the framework the inputs name (looked for before the sample's or rule "
         f"set's folder, ${frameworks.PATH_VARIABLE} and the bundled frameworks).")


def _quiet() -> bool:
    """Whether -q was given: errors only, so input warnings are counted, not shown."""
    context = click.get_current_context(silent=True)
    return context is not None and context.find_root().meta.get("qi.logging", {}).get("quiet") == -1


def _set_logging(ctx: click.Context, param: click.Parameter, value) -> None:
    """Apply a logging option wherever it is given (before or after the subcommand); the last
    one given wins, and an explicit --log-level beats -q / -v."""
    if value is None or value == 0 or value is False:
        return
    settings = ctx.find_root().meta.setdefault("qi.logging", {"format": "human", "level": None, "quiet": 0})
    if param.name == "log_format":
        settings["format"] = value
    elif param.name == "log_level":
        settings["level"] = value
    elif param.name == "quiet":
        settings["quiet"] = -1
    elif param.name == "verbose":
        settings["quiet"] = value
    by_count = {-1: "error", 0: "warning", 1: "info"}.get(settings["quiet"], "debug")
    logs.configure(settings["format"], settings["level"] or by_count)


LOGGING_OPTIONS = [
    click.Option(["--log-format"], type=click.Choice(["human", "json"]), callback=_set_logging, expose_value=False,
                 help="How log lines on stderr are written (default: human)."),
    click.Option(["--log-level"], type=click.Choice(logs.LEVELS), callback=_set_logging, expose_value=False,
                 help="Least severe log level shown (default: warning)."),
    click.Option(["-q", "--quiet"], is_flag=True, callback=_set_logging, expose_value=False,
                 help="Show errors only (log level error)."),
    click.Option(["-v", "--verbose"], count=True, callback=_set_logging, expose_value=False,
                 help="Show more: -v info, -vv debug."),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(run.tool_version(), prog_name="qi")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """qi judges probation case evidence against the HMI Probation Quality & Impact framework.

    Inspectors validate and run samples; quality reviewers read reasoning traces; methodology
    staff edit rule sets. Diagnostics read path:line:col: code: message (hint).

    Logging options (--log-format, --log-level, -q, -v) work before or after the subcommand.
    Shell completion: eval "$(_QI_COMPLETE=bash_source qi)" (zsh_source, fish_source).
    """
    if "qi.logging" not in ctx.meta:  # no logging option before the subcommand: the defaults
        logs.configure("human", "warning")
    frameworks.forget_preferred()  # a --framework given to an earlier command in this process does not carry over


@cli.group()
def framework() -> None:
    """Read the inspection framework: standards, criteria and items."""


@framework.command("show")
@click.argument("node_id", metavar="[ID]", required=False)
@format_option
@framework_option
def framework_show(node_id: str | None, output_format: str, framework_path: str | None) -> None:
    """Show the framework tree, or one standard, criterion or item (e.g. 3, 3.1, 3.1.a)."""
    fw = _framework(framework_path)
    if node_id is not None and fw.find(node_id) is None:
        raise click.BadParameter(f"{node_id!r} is not in framework {fw.id} {fw.version} "
                                 f"({diagnostics.did_you_mean(node_id, fw.ids(), 'ids')})", param_hint="ID")
    if output_format == "json":
        _emit_json(frameworks.as_json(fw, node_id))
    else:
        click.echo(frameworks.as_text(fw, node_id), nl=False)


def _framework(framework_path: str | None) -> models.Framework:
    try:
        return frameworks.load(framework_path or frameworks.default_path())
    except InputError as error:
        raise Invalid(error, 1) from None


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=Input(path_type=Path))
@format_option
@framework_option
def validate(paths: tuple[Path, ...], output_format: str, framework_path: str | None) -> None:
    """Validate case files, organisation files, sample manifests, frameworks and sample folders.

    Every problem in every file is reported in one pass. Exit 0 when all are valid, 1 when not.
    """
    found: list[Diagnostic] = []
    checked = 0
    for path in paths:
        checked += len(samples.files(path)) if path.is_dir() else 1
        if not path.exists() and str(path) != "-":
            found.append(_no_such_path(path))
            continue
        try:
            if path.is_dir():
                found += samples.load(path, framework_path).warnings
            else:
                found += samples.warnings_for(files.check_any(path, framework_path))
        except InputError as error:
            found += error.diagnostics
    log.info("validated", paths=len(paths), files=checked)
    _report(found, output_format, checked)
    if diagnostics.has_errors(found):
        raise Failed()


def _no_such_path(path: Path) -> Diagnostic:
    """A diagnostic for a path that does not exist, naming the closest one that does."""
    parent = path.parent
    close = difflib.get_close_matches(path.name, sorted(p.name for p in parent.iterdir()), n=1) if parent.is_dir() else []
    hint = f"did you mean {parent / close[0]}?" if close else (
        "check the path" if parent.is_dir() else f"{parent} does not exist either")
    return Diagnostic(str(path), 1, 1, "unreadable_file", "there is no such file or folder", hint)


def _sample_folder(sample_dir: Path) -> None:
    """Usage errors for what is not a sample folder, with the command that was probably meant."""
    if not sample_dir.exists():
        raise click.BadParameter(f"{sample_dir} does not exist ({_no_such_path(sample_dir).hint})",
                                 param_hint="SAMPLE_DIR")
    if sample_dir.is_file():
        raise click.BadParameter(f"{sample_dir} is a file, not a sample folder; to judge one case file, "
                                 f"run: qi evaluate {sample_dir}", param_hint="SAMPLE_DIR")
    if not (sample_dir / "sample.yaml").exists() and (sample_dir.resolve().parent / "sample.yaml").is_file():
        parent = sample_dir.parent if str(sample_dir.parent) not in ("", ".") or sample_dir.name else sample_dir
        raise click.BadParameter(f"{sample_dir} is a folder inside a sample; run the sample itself: "
                                 f"qi run {parent}", param_hint="SAMPLE_DIR")


rules_option = click.option("--rules", "rules_file", type=Input(dir_okay=False, path_type=Path),
                            help="Rule set file (default: the sample's rule set, else the bundled default).")


def _case_and_rules(case_file: Path, rules_file: Path | None):
    """Load the rule set and the case, or print diagnostics and exit 1."""
    try:
        compiled = pipeline.compiled_rules(rules_file or _case_rules(case_file))
        return compiled, pipeline.load_case(case_file, compiled)
    except InputError as error:
        raise Invalid(error, 1) from None


def _case_rules(case_file: Path) -> Path:
    """The rule set for a case file: the one its sample names, else the one for its sample's
    framework (the default framework's, outside a sample)."""
    manifest = samples.enclosing_manifest(case_file) if case_file.resolve().parent.name == "cases" else None
    if manifest is not None:
        return pipeline.rules_path(manifest.rules, None, (manifest.framework.id, manifest.framework.version))
    return pipeline.rules_path(None, None, _default_framework_key())


def _default_framework_key() -> tuple[str, str]:
    framework = frameworks.load(frameworks.default_path())
    return framework.id, framework.version


def _result(compiled, case) -> dict:
    try:
        result, found = pipeline.case_outcome(compiled, case)
    except EngineError as error:
        raise click.ClickException(f"the rules engine failed on {case.document.path}: {error}") from None
    for warning in found:
        click.echo(warning.render(), err=True)
    log.info("evaluated", rules_fired=len(result["rules_fired"]), criteria=len(result["findings"]))
    return result


@cli.command()
@click.argument("case_file", metavar="CASE.yaml", type=Input(dir_okay=False, path_type=Path))
@rules_option
@format_option
@framework_search_option
def evaluate(case_file: Path, rules_file: Path | None, output_format: str) -> None:
    """Judge one case: a finding per criterion, enablers and barriers, each with its rules.

    Criteria no rule concluded on are reported not_assessed, with a warning on stderr.
    """
    compiled, case = _case_and_rules(case_file, rules_file)
    result = _result(compiled, case)
    if output_format == "json":
        _emit_json(result)
    else:
        click.echo(views.result_text(result), nl=False)


class StoreLocation(click.ParamType):
    """``--db``: an SQLite file's path, or a PostgreSQL database's ``postgresql://`` URL (kept as
    written: a path would lose one of its slashes)."""

    name = "PATH|URL"

    def convert(self, value, param, ctx):
        if isinstance(value, Path) or not store.looks_like_url(value):
            return Path(value)
        return value  # a URL: checked (and any other than postgresql:// refused) when the store is opened


db_option = click.option("--db", "db_path", type=StoreLocation(),
                         help="Audit store: an SQLite file, or postgresql://USER@HOST/DATABASE for a team's shared "
                              "store (default: $QI_DB, else $XDG_DATA_HOME/qi/qi.db, i.e. ~/.local/share/qi/qi.db).")


key_option = click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
                          help=f"Key of a keyed (HMAC) chain, kept outside the store (default: "
                               f"${store.KEY_FILE_VARIABLE}, else ${store.KEY_VARIABLE}).")


def _open_store(db_path: Path | None) -> store.Store:
    """The audit store, opened read-only: a missing file or one that is not a qi store exits 1."""
    try:
        return store.Store.open(db_path or store.default_path())
    except InputError as error:
        raise Invalid(error, 0) from None


def _open_store_to_write(db_path: Path | None) -> store.Store:
    """An existing audit store, opened to record decisions and sign-offs (never created here)."""
    try:
        return store.Store.open(db_path or store.default_path(), writable=True)
    except InputError as error:
        raise Invalid(error, 0) from None


def _store_key(key_file: Path | None) -> bytes | None:
    try:
        return store.load_key(key_file)
    except InputError as error:
        raise Invalid(error, 0) from None


def _no_reviewer(context, parameter, value):
    if value is not None:
        raise click.BadParameter("a typed name is no longer recorded: a store with accounts records the account "
                                 "given by --as NAME --password-file FILE, a store without them your "
                                 "operating-system user")
    return value


def account_options(command):
    """``--as NAME --password-file FILE``: who records a decision or sign-off (a store with accounts)."""
    command = click.option("--reviewer", hidden=True, expose_value=False, callback=_no_reviewer)(command)
    command = click.option("--password-file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
                           help="The account's password, on the file's first line (- reads standard input).")(command)
    return click.option("--as", "account", metavar="NAME",
                        help="The store's account that records this (a store with accounts needs one; without "
                             "them, your operating-system user is recorded).")(command)


def _actor(audit: store.Store, account: str | None, password_file: Path | None) -> accounts.Actor:
    """The account given (authenticated), else the operating-system user of a store without accounts."""
    try:
        if account is None:
            if password_file is not None:
                raise click.BadParameter("is given without --as NAME", param_hint="--password-file")
            return accounts.local_actor(audit)
        if password_file is None:
            raise click.BadParameter("--as needs the account's password", param_hint="--password-file")
        return accounts.authenticate(audit, account, accounts.read_password(password_file, new=False))
    except InputError as error:
        if any(d.code == "login_failed" for d in error.diagnostics):
            log.warning("login failed", account=texts.printable(account or "")[:64])
        raise Invalid(error, 0) from None


@cli.command()
@click.argument("case_file", metavar="[CASE.yaml]", required=False, type=Input(dir_okay=False, path_type=Path))
@click.option("--criterion", required=True, help="Criterion to explain, e.g. 3.1.")
@click.option("--why-not", "why_not", type=click.Choice(SEVERITY),
              help="Explain why the criterion was not judged this value.")
@click.option("--run", "run_ref", help="Explain from a stored run (its id or number), without re-evaluating.")
@click.option("--case", "case_ref", help="With --run: the case reference, e.g. NW-014.")
@click.option("--what-if", "what_if", is_flag=True,
              help="List the smallest sets of answer changes that would change the finding.")
@click.option("--max-changes", type=click.IntRange(1, 6), default=whatif.MAX_CHANGES, show_default=True,
              help="With --what-if: the largest change set searched for.")
@rules_option
@db_option
@format_option
@framework_search_option
def explain(case_file: Path | None, criterion: str, why_not: str | None, run_ref: str | None, case_ref: str | None,
            what_if: bool, max_changes: int, rules_file: Path | None, db_path: Path | None,
            output_format: str) -> None:
    """Show the derivation of one case's finding on a criterion, down to the inspector's notes.

    Either from a case file (evaluated now), or from a stored run: --run RUN_ID --case REF.
    With --why-not VALUE: every rule that could have concluded VALUE, and the conditions that failed.
    With --what-if: the smallest sets of answer changes that would change the finding, found by an
    exact search; in JSON a list of {"changes": [{"item", "from", "to"}], "finding"}.
    """
    if what_if and why_not:
        raise click.UsageError("give --what-if or --why-not, not both")
    if run_ref is not None:
        if case_file is not None or case_ref is None or why_not is not None:
            raise click.UsageError("with --run give --case REF and --criterion, but no case file or --why-not")
        _explain_stored(run_ref, case_ref, criterion, what_if, max_changes, db_path, output_format)
        return
    if case_file is None:
        raise click.UsageError("give a case file, or --run RUN_ID --case REF")
    compiled, case = _case_and_rules(case_file, rules_file)
    if what_if:
        _what_if(compiled, case, criterion, max_changes, output_format)
        return
    evaluation, judgement = pipeline.evaluate_case(compiled, case)
    _known_criterion(criterion, judgement.findings, "a case-scoped criterion", compiled.loaded.framework)
    tracer = pipeline.trace.Trace(compiled, evaluation, case)
    finding = judgement.findings[criterion]
    _emit_tree(tracer.why_not(criterion, why_not, finding) if why_not else tracer.finding(finding), output_format)


def _explain_stored(run_ref: str, case_ref: str, criterion: str, what_if: bool, max_changes: int,
                    db_path: Path | None, output_format: str) -> None:
    """qi explain --run: the stored trace of a case's finding, or a what-if on the stored case."""
    with _open_store(db_path) as audit:
        try:
            seq = audit.find(run_ref)
            result = audit.case_result(seq, case_ref)
            stored = audit.report(seq) if what_if else None
        except InputError as error:
            raise Invalid(error, 0) from None
    if what_if:
        try:
            compiled, case = pipeline.stored_case(stored, result)
        except InputError as error:
            raise Invalid(error, 1) from None
        _what_if(compiled, case, criterion, max_changes, output_format)
        return
    _known_criterion(criterion, result["findings"], "a criterion of the stored case")
    _emit_tree(result["findings"][criterion]["trace"], output_format)


def _known_criterion(criterion: str, findings: dict, what: str, framework=None) -> None:
    if criterion in findings:
        return
    standard = framework.standard_of(criterion) if framework is not None else None
    if standard is not None and standard.scope == "case" and criterion in {c.id for c in standard.criteria}:
        answered = f"the {standard.population} population" if standard.population else "the main sample"
        raise click.BadParameter(f"this case does not answer {criterion!r}: standard {standard.id} is answered by "
                                 f"cases of {answered}", param_hint="--criterion")
    raise click.BadParameter(f"{criterion!r} is not {what} ("
                             f"{diagnostics.did_you_mean(criterion, list(findings), 'criteria')})",
                             param_hint="--criterion")


def _emit_tree(node: dict, output_format: str) -> None:
    _emit_json(node) if output_format == "json" else click.echo(views.tree_text(node), nl=False)


def _what_if(compiled, case, criterion: str, max_changes: int, output_format: str) -> None:
    evaluation, judgement = pipeline.evaluate_case(compiled, case)
    _known_criterion(criterion, judgement.findings, "a case-scoped criterion", compiled.loaded.framework)
    found = whatif.what_if(compiled, evaluation.fact, criterion, judgement.findings[criterion].value,
                           max_changes=max_changes)
    if output_format == "json":
        _emit_json(found.as_list())
    else:
        click.echo(views.what_if_text(found.as_dict()), nl=False)


redact_option = click.option("--redact", is_flag=True,
                             help="Publishable output: no case references, file paths, notes or reasons, none of "
                                  "the inspectors' internal sections, no diversity group under the minimum size.")


@cli.command("run")
@click.argument("sample_dir", metavar="SAMPLE_DIR", type=Input(path_type=Path))
@rules_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the reports (default: qi-reports/SAMPLE_ID).")
@db_option
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes evaluating cases; results are identical whatever the number.")
@click.option("--redact", is_flag=True,
              help="Publishable reports: no case references, file paths, notes or internal sections (and no "
                   "trace.jsonl), no diversity group under the minimum size.")
@key_option
@format_option
@framework_search_option
def run_command(sample_dir: Path, rules_file: Path | None, out_dir: Path | None, db_path: Path | None,
                jobs: int, redact: bool, key_file: Path | None, output_format: str) -> None:
    """Run the whole sample: validate, judge every case and provider, aggregate, apply the sample
    rules, write report.json, report.md, report.html, report.docx and trace.jsonl (not with
    --redact), and record the run.

    Invalid input gives diagnostics and no run at all.
    """
    prepared = _prepared(sample_dir, rules_file, jobs)
    quiet = _quiet()
    for warning in [] if quiet else prepared.sample.warnings:
        click.echo(warning.render(), err=True)
    out = out_dir or Path("qi-reports") / prepared.sample.manifest.model.id
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} exists and is not a folder", param_hint="--out")
    result, summary = _recorded(prepared, out, db_path, jobs, redact, _store_key(key_file))
    log.info("run recorded", run=summary.run_id, seq=summary.seq, cases=summary.cases)
    shown = {w.render() for w in prepared.sample.warnings}
    judged = [w for w in (Diagnostic(**w) for w in result["warnings"]) if w.render() not in shown]  # while judging
    for warning in [] if quiet else judged:
        click.echo(warning.render(), err=True)
    if quiet and (prepared.sample.warnings or judged):
        count = len(prepared.sample.warnings) + len(judged)
        click.echo(f"{count} warning{'s' * (count != 1)} not shown (-q): run without -q to see them", err=True)
    if output_format == "json":
        _emit_json({**dataclasses.asdict(summary), "headline": _headline(result),
                    "rating_method": rating_views.method(result),
                    "reports": [str(out / name) for name in report.files(redact)]})
        return
    click.echo(f"run {summary.run_id} (#{summary.seq}): {summary.cases} cases, sample {summary.sample_id}, "
               f"rule set {summary.ruleset}; store head {summary.head}")
    click.echo(views.headline_text(result), nl=False)
    for name in report.files(redact):
        click.echo(f"  {out / name}")


def _prepared(sample_dir: Path, rules_file: Path | None, jobs: int) -> run.Prepared:
    """The sample validated, its rule set compiled and every case judged, with a progress bar; bad
    input exits with its diagnostics."""
    _sample_folder(sample_dir)
    inputs = samples.files(sample_dir) if sample_dir.is_dir() else []
    try:
        with views.progress(sum(1 for p in inputs if p.parent.name == "cases"), "validating cases") as advance:
            return run.prepare(sample_dir, rules_file, jobs, advance)  # each case judged as it validates
    except InputError as error:
        raise Invalid(error, len(inputs) or 1) from None
    except EngineError as error:
        raise click.ClickException(f"the rules engine failed: {error}") from None


def _recorded(prepared: run.Prepared, out: Path, db_path: Path | None, jobs: int, redact: bool,
              key: bytes | None) -> tuple[dict, object]:
    """The run's result, its reports written to ``out`` and the run recorded in the store, all or
    nothing."""
    try:
        audit = store.Store.open_for_writing(db_path or store.default_path())
    except InputError as error:
        raise Invalid(error, 0) from None
    with audit:
        try:
            result = run.run(prepared, jobs)  # the cases were judged in prepare
        except EngineError as error:
            raise click.ClickException(f"the rules engine failed: {error}") from None
        fields = [d.id for d in prepared.sample.framework.vocabulary.diversity] if redact else None
        try:
            with views.status(f"writing reports to {out} and recording the run"):
                return result, run.publish(result, out, audit, fields, key, jobs)
        except InputError as error:
            raise Invalid(error, 0) from None
        except OSError as error:
            raise click.ClickException(f"could not write the reports to {out}: {error.strerror or error}; "
                                       "no run was recorded and no report was replaced") from None


def _headline(result: dict) -> list[dict]:
    """Per case-scoped standard, overall and per provider: % sufficient with its interval (where
    computed) and, only when the rule set issues bands, the rating as shown (band or why none)."""
    shown = rating_views.cells(result)
    rows = []
    for standard in result["standards"]:
        if standard["scope"] != "case":
            continue
        target = f"standard {standard['id']}"
        groups = result["aggregates"]["targets"][target]["groups"]
        cells = {}
        for key, name in [("all", "all")] + [(f"provider:{p}", p) for p in result["sample"]["providers"]]:
            cells[name] = {"percent": groups.get(key, {}).get("percent"), "interval": groups.get(key, {}).get("interval")}
            if shown:
                cells[name]["rating"] = rating_views.cell(shown, target, key) or None
        rows.append({"standard": standard["id"], "title": standard["title"], "groups": cells})
    return rows


@cli.group()
def runs() -> None:
    """Read the audit store (never changing it): list, show and verify recorded runs, print the head."""


@runs.command("list")
@db_option
@format_option
def runs_list(db_path: Path | None, output_format: str) -> None:
    """List recorded runs, oldest first."""
    with _open_store(db_path) as audit:
        try:
            rows = audit.runs()
        except InputError as error:
            raise Invalid(error, 0) from None
    if output_format == "json":
        _emit_json([dataclasses.asdict(r) for r in rows])
        return
    for row in rows:
        click.echo(f"{row.seq:>4}  {row.run_id}  {row.created_at}  {row.sample_id}  {row.ruleset}  "
                   f"{row.cases} cases  {row.hash[:12]}")


@runs.command("show")
@click.argument("run_ref", metavar="RUN_ID")
@db_option
@format_option
@redact_option
@key_option
def runs_show(run_ref: str, db_path: Path | None, output_format: str, redact: bool, key_file: Path | None) -> None:
    """Show a recorded run: its inputs, rule set and figures from the final findings (its id, a
    prefix of it, or its number), the consistency between engine and inspectors, and each
    finding's review state. What could not be checked or computed is warned about on stderr."""
    key = _store_key(key_file)
    with _open_store(db_path) as audit:
        try:
            stored = final.final_report(audit, audit.find(run_ref), key, strict=False)
        except InputError as error:
            raise Invalid(error, 0) from None
    for warning in stored.content["review"].get("warnings", []):
        click.echo(f"warning: {texts.printable(warning)}", err=True)
    stored = redactor.report(stored.content, _diversity_fields(stored)) if redact else stored.content
    if output_format == "json":
        _emit_json(stored)
    elif redact:  # the consistency figures, moderation list and review are the inspectors' own
        click.echo(views.run_text(stored), nl=False)
        click.echo("consistency, moderation and review: not shown when redacted\n", nl=False)
    else:
        click.echo(views.run_text(stored), nl=False)
        click.echo(views.consistency_text(stored["consistency"], stored["review"]), nl=False)
        click.echo(views.review_text(stored["review"]), nl=False)


@runs.command("signoff")
@click.argument("run_ref", metavar="RUN_ID")
@account_options
@db_option
@key_option
def runs_signoff(run_ref: str, account: str | None, password_file: Path | None, db_path: Path | None,
                 key_file: Path | None) -> None:
    """Sign a run off: the sign-off names the sha256 of the final report it signs, and who signed
    (a QA lead's account, or the operating-system user of a store without accounts). Refused (exit 1,
    listing what is open) while any engine–inspector disagreement or challenge lacks a decision."""
    key = _store_key(key_file)
    with _open_store_to_write(db_path) as audit:
        by = _actor(audit, account, password_file)
        try:
            done = final.signoff(audit, audit.find(run_ref), by, key=key)
        except review.OpenItems as refused:
            for diagnostic in refused.diagnostics:
                click.echo(diagnostic.render(), err=True)
            raise Failed(f"sign-off refused: {len(refused.items)} finding{'s' * (len(refused.items) != 1)} open") from None
        except InputError as error:
            raise Invalid(error, 0) from None
    click.echo(f"run {done.seq} signed off by {texts.printable(by.described)} at {done.at}: final report "
               f"sha256:{done.report_sha256} (sign-off {done.id}, {done.hash[:12]})")


@cli.command("review")
@click.argument("run_ref", metavar="RUN_ID")
@click.option("--case", "case_ref", required=True, help="Case reference (or organisation:PROVIDER).")
@click.option("--criterion", required=True, help="Criterion, e.g. 3.3.")
@click.option("--decision", required=True, type=click.Choice(review.DECISIONS), help="The reviewer's decision.")
@click.option("--finding", type=click.Choice(review.FINDINGS[:3]), help="With override: the finding that replaces "
              "the engine's.")
@click.option("--reason", help="Why (required for challenge and override).")
@account_options
@db_option
@key_option
def review_command(run_ref: str, case_ref: str, criterion: str, decision: str, finding: str | None,
                   reason: str | None, account: str | None, password_file: Path | None, db_path: Path | None,
                   key_file: Path | None) -> None:
    """Record a reviewer's decision on a stored finding: agree, challenge or override.

    Decisions are append-only and hash-chained; a later decision on a finding supersedes an
    earlier one, and the history is kept. Each names who decided: a reviewer's or QA lead's
    account (--as), or the operating-system user of a store without accounts.
    """
    key = _store_key(key_file)
    with _open_store_to_write(db_path) as audit:
        by = _actor(audit, account, password_file)
        try:
            made = review.record_decision(audit, audit.find(run_ref), case_ref, criterion, decision, by,
                                          reason, finding, key=key)
        except InputError as error:
            raise Invalid(error, 0) from None
    final = f", final finding {made.finding}" if made.finding else ""
    click.echo(f"run {made.seq}: {made.decision} on {texts.printable(made.case)} {texts.printable(made.criterion)} "
               f"by {texts.printable(by.described)}{final} (decision {made.id}, {made.hash[:12]})")


@cli.command("report")
@click.argument("run_ref", metavar="RUN_ID")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the reports.")
@db_option
@redact_option
@key_option
def report_command(run_ref: str, out_dir: Path, db_path: Path | None, redact: bool, key_file: Path | None) -> None:
    """Re-render a stored run's reports from the audit store as its reviewers decided: every figure
    from the final findings (the override where one exists, with the engine's value and the
    reason). Refused when the store's chain does not check out (under the key, when given)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise click.BadParameter(f"{out_dir} exists and is not a folder", param_hint="--out")
    key = _store_key(key_file)
    with _open_store(db_path) as audit:
        try:
            stored = final.final_report(audit, audit.find(run_ref), key)
            for warning in stored.content["review"].get("warnings", []):
                click.echo(f"warning: {texts.printable(warning)}", err=True)
            fields = _diversity_fields(stored) if redact else None
            written = report.write(stored, out_dir, fields)
        except InputError as error:
            raise Invalid(error, 0) from None
        except OSError as error:
            raise click.ClickException(f"could not write the reports to {out_dir}: {error.strerror or error}") from None
    for path in written:
        click.echo(f"  {path}")


def _diversity_fields(stored: dict) -> list[str]:
    """The diversity characteristics of the framework a stored run used."""
    known = frameworks.bundled()
    path = known.get((stored["framework"]["id"], stored["framework"]["version"]))
    return [d.id for d in frameworks.load(path).vocabulary.diversity] if path else []


@runs.command("head")
@db_option
def runs_head(db_path: Path | None) -> None:
    """Print the store's head, LINK:HASH: the newest record of any kind — run, decision or sign-off
    (0:000… when empty). Keep it outside the store: `qi runs verify --expect-head LINK:HASH` fails
    if records up to it were lost or rewritten."""
    with _open_store(db_path) as audit:
        try:
            head = audit.head()
        except InputError as error:
            raise Invalid(error, 0) from None
    click.echo(head)


def _head(context, parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            store.parse_head(value)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
    return value


@runs.command("verify")
@db_option
@click.option("--expect-head", metavar="LINK:HASH", callback=_head,
              help="A head printed by `qi runs head` or recorded in a report.json: fail if it was lost or rewritten.")
@key_option
@format_option
def runs_verify(db_path: Path | None, expect_head: str | None, key_file: Path | None, output_format: str) -> None:
    """Recompute every run's hash and the chain between runs, check the findings against the hashed
    results, look for missing runs and stray rows, and check every reviewer's decision and sign-off;
    exit 1 naming each problem."""
    key = _store_key(key_file)
    with _open_store(db_path) as audit:
        with audit.snapshot():
            problems = audit.verify(expect_head, key) + review.verify(audit, key)
        count = len(audit.runs()) if not problems else 0
    if output_format == "json":
        _emit_json({"store": audit.where, "runs": count, "verified": not problems,
                    "problems": [p.diagnostic.as_dict() for p in problems]})
        if problems:
            raise Failed()
        return
    if problems:
        for problem in problems:
            click.echo(problem.diagnostic.render(), err=True)
        first = next((p.seq for p in problems if p.seq is not None), None)
        where = f"run {first}" if first is not None else "the store as a whole"
        raise Failed(f"verify failed: {len(problems)} problem{'s' * (len(problems) != 1)}; first mismatch at {where}")
    keyed = " (keyed chain)" if key else ""
    click.echo(f"{count} run{'s' * (count != 1)} verified{keyed}: every hash, the chain between them and "
               f"every finding match, with their decisions and sign-offs" + (f"; head {expect_head} found" if expect_head else ""))


@cli.group("rules")
def rules_group() -> None:
    """Tools for methodology staff: lint rule sets, run rule tests with coverage, diff and document."""


@rules_group.command("lint")
@click.argument("files", nargs=-1, type=Input(dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@format_option
@framework_search_option
def rules_lint(files: tuple[Path, ...], strict: bool, output_format: str) -> None:
    """Check rule sets (default: the bundled ones): errors exit 1, warnings alone exit 0."""
    paths = list(files) or sorted(data_dir("rules").glob("*.yaml"))
    found = [d for path in paths for d in lint.lint(path)]
    _report(found, output_format, len(paths))
    if diagnostics.has_errors(found) or (strict and found):
        raise Failed()


@rules_group.command("test")
@click.argument("paths", nargs=-1, type=Input(path_type=Path))
@click.option("--coverage", "show_coverage", is_flag=True, help="Print rule, condition and item coverage.")
@click.option("--fail-under", type=click.FloatRange(0, 100), help="Fail if rule coverage is below this %.")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the results as JUnit XML, for CI systems.")
@click.option("--mutants", "with_mutants", is_flag=True,
              help="Remove each rule in turn and negate each top-level condition; list mutants no test detects "
                   "(exit 1 if a rule-removal mutant survives).")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes judging mutants (the results are the same whatever it is).")
@format_option
@framework_search_option
def rules_test(paths: tuple[Path, ...], show_coverage: bool, fail_under: float | None, junit_file: Path | None,
               with_mutants: bool, jobs: int, output_format: str) -> None:
    """Run rule tests (default: the bundled rules/tests): each a note, a small case or sample, and
    the findings, enablers, barriers, ratings or recommendations expected."""
    with views.progress(None, "judging mutants") if with_mutants else contextlib.nullcontext() as advance:
        results = ruletest.check(list(paths) or [data_dir("rules") / "tests"], fail_under, with_mutants, jobs, advance)
    if junit_file is not None:
        try:
            ruletest_junit.write(results.outcomes, results.problems, junit_file)
        except OSError as error:
            raise click.ClickException(f"could not write {junit_file}: {error.strerror or error}") from None
    if output_format == "json":
        _emit_json(results.as_dict())
    else:
        out, err = results.text(show_coverage)
        for line in err:
            click.echo(line, err=True)
        click.echo("\n".join(out))
    if results.failing:
        raise Failed()


@rules_group.command("diff")
@click.argument("old", type=Input(dir_okay=False, path_type=Path))
@click.argument("new", type=Input(dir_okay=False, path_type=Path))
@click.option("--sample", "sample_dir", required=True, type=Input(file_okay=False, path_type=Path),
              help="The sample to judge under both rule sets.")
@click.option("--format", "output_format", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True)
@framework_search_option
def rules_diff(old: Path, new: Path, sample_dir: Path, output_format: str, jobs: int) -> None:
    """What a rule change does to a sample: every finding, enabler, barrier, rating and
    recommendation that changes, with the rules responsible on each side."""
    cases = [p for p in samples.files(sample_dir) if p.parent.name == "cases"] if sample_dir.is_dir() else []
    try:
        with views.progress(len(cases), "judging cases under both rule sets") as advance:
            result = differ.compare(old, new, sample_dir, jobs, advance)
    except InputError as error:
        raise Invalid(error, 2 + len(samples.files(sample_dir) if sample_dir.is_dir() else [])) from None
    except EngineError as error:
        raise click.ClickException(f"the rules engine failed: {error}") from None
    if output_format == "json":
        _emit_json(result)
    else:
        click.echo(differ.as_markdown(result), nl=False)


@rules_group.command("show")
@click.argument("location", metavar="FILE[:LINE]")
def rules_show(location: str) -> None:
    """Open a file a trace names, e.g. rules/hmip-qi-adult-2.0.yaml:785: print where it is (on
    stderr) and the rule or entry that starts at that line (the whole file without a line).
    Bundled files are named by their place in the repository and found wherever qi is installed."""
    name, _, line_text = location.rpartition(":")
    if not (name and line_text.isdigit()):
        name, line_text = location, ""
    path = resources.locate(name)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise click.BadParameter(f"cannot open {name}: {getattr(error, 'strerror', None) or error}",
                                 param_hint="FILE[:LINE]") from None
    start = int(line_text) if line_text else 1
    if not 1 <= start <= len(lines):
        raise click.BadParameter(f"{name} has {len(lines)} lines, not {start}", param_hint="FILE[:LINE]")
    click.echo(f"{path.resolve()}:{start}", err=True)
    shown = lines[start - 1:] if not line_text else [lines[start - 1]]
    if line_text:
        indent = len(lines[start - 1]) - len(lines[start - 1].lstrip(" -"))
        for following in lines[start:]:
            if following.strip() and len(following) - len(following.lstrip(" ")) < indent + (
                    0 if lines[start - 1].lstrip().startswith("- ") else 1):
                break
            shown.append(following)
    click.echo("\n".join(shown).rstrip("\n"))


@rules_group.command("doc")
@click.argument("file", required=False, type=Input(dir_okay=False, path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["md", "html"]), default="md", show_default=True)
@framework_search_option
def rules_doc(file: Path | None, output_format: str) -> None:
    """The methodology handbook: for each standard and criterion, the framework text beside the
    rules that implement it, in plain English; the sample rules and rating bands; unread items."""
    try:
        loaded = rules.load(file or pipeline.rules_path(framework=_default_framework_key()))
    except InputError as error:
        raise Invalid(error, 1) from None
    click.echo(handbook.as_html(loaded) if output_format == "html" else handbook.as_markdown(loaded), nl=False)


@cli.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but this machine's loopback needs accounts in the store "
                   "(qi users add) and HTTPS in front (cookies are then sent over HTTPS only).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port to listen on.")
@click.option("--read-only", is_flag=True, help="Serve pages only: no forms, every POST refused.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="A name requests may give for this workspace besides its own address: the public name a "
                   "reverse proxy passes on (repeatable; needs accounts, and cookies go over HTTPS only).")
@click.option("--sample", "sample_dirs", multiple=True, type=Input(file_okay=False, exists=True, path_type=Path),
              help="A sample to try rule changes on, besides the bundled examples (repeatable).")
@key_option
@framework_search_option
def serve(db_path: Path | None, host: str, port: int, read_only: bool, allow_hosts: tuple[str, ...],
          sample_dirs: tuple[Path, ...], key_file: Path | None) -> None:
    """The web workspace on the audit store: runs, cases and their reasoning, the handbook, and
    "try a change" for rule sets. Open the address it prints in a browser; Ctrl-C stops it."""
    from engine.serve import app as web

    path = db_path or store.default_path()
    with _open_store(path) as audit:  # a store that cannot be opened is reported now, not on the first page
        where, shared, has_accounts = audit.where, audit.backend.shared, accounts.enabled(audit)
    for folder in sample_dirs:
        if not (folder / "sample.yaml").is_file():
            raise click.BadParameter(f"{folder} has no sample.yaml", param_hint="--sample")
    for name in allow_hosts:
        if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}|\*\.[A-Za-z0-9.-]{1,251}", name):
            raise click.BadParameter(f"{name!r} is not a host name", param_hint="--allow-host")
    beyond = not web.is_loopback(host) or bool(allow_hosts)
    if (beyond or shared) and not has_accounts:
        why = (f"serving {'as ' + allow_hosts[0] if allow_hosts else 'on ' + host}, beyond this machine,"
               if beyond else "a shared PostgreSQL store is served")
        raise Invalid(InputError([Diagnostic(where, 1, 1, "accounts_required",
                                             f"{why} needs accounts: this store has none, so anyone who reached "
                                             "it could read every case and record decisions",
                                             "add them with qi users add NAME --role ROLE --password-file FILE"
                                             + (", or serve on 127.0.0.1" if beyond and not shared else ""))]), 0)
    if beyond:
        click.echo(web.warn(host, allow_hosts), err=True)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"qi workspace on http://{shown}:{port}/ — store {where}{' (read-only)' * read_only}; Ctrl-C stops it")
    web.serve(path, host, port, read_only, list(sample_dirs), _store_key(key_file), list(allow_hosts))


@cli.group("sample")
def sample_group() -> None:
    """Work with samples: generate realistic synthetic ones."""


@sample_group.command("generate")
@click.option("--cases", "count", type=click.IntRange(1, 1_000_000), required=True, help="Number of cases.")
@click.option("--seed", type=int, default=2016, show_default=True, help="Same seed, same files.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="An empty or new folder for the sample.")
@click.option("--profile", "profile_file", type=Input(dir_okay=False, path_type=Path),
              help="Generation profile (default: the bundled cases/profiles one).")
@framework_search_option
def sample_generate(count: int, seed: int, out_dir: Path, profile_file: Path | None) -> None:
    """Generate a realistic synthetic sample, valid by construction: providers, the framework's
    case fields and diversity in the profile's proportions, answers correlated as practice is."""
    try:
        profile, fw = generate.load_profile(profile_file or generate.default_profile())
        with views.progress(count, "generating cases"):
            written = generate.generate(profile, fw, count, seed, out_dir)
    except InputError as error:
        raise Invalid(error, 1) from None
    log.info("sample generated", cases=count, seed=seed)
    click.echo(f"wrote {len(written)} files to {out_dir}")


@cli.group("cases")
def cases_group() -> None:
    """Spreadsheets in and out: a sample as a case-assessment workbook, and a workbook as YAML."""


@cases_group.command("export")
@click.argument("sample_dir", metavar="SAMPLE_DIR", type=Input(path_type=Path))
@click.option("--to", "out_file", required=True, metavar="FILE.xlsx", type=click.Path(dir_okay=False, path_type=Path),
              help="The workbook to write: .xlsx (or .csv for the case rows alone).")
@framework_search_option
def cases_export(sample_dir: Path, out_file: Path) -> None:
    """Write a sample as a case-assessment workbook: one row per case, context columns, an answer,
    note and sources column per framework item (answers from a drop-down, the framework text as
    header comments), an instructions sheet, and the organisation evidence and sample manifest."""
    if out_file.suffix.lower() not in (".xlsx", ".csv"):
        raise click.BadParameter(f"{out_file} must end in .xlsx (or .csv for the case rows alone)",
                                 param_hint="--to")
    try:
        written = workbook.export(sample_dir, out_file)
    except InputError as error:
        raise Invalid(error, len(samples.files(sample_dir)) if sample_dir.is_dir() else 1) from None
    except OSError as error:
        raise click.ClickException(f"could not write {out_file}: {error.strerror or error}") from None
    log.info("workbook written", file=str(written))
    click.echo(f"wrote {written}")


@cases_group.command("import")
@click.argument("book", metavar="FILE.xlsx|FILE.csv", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, metavar="SAMPLE_DIR", type=click.Path(file_okay=False, path_type=Path),
              help="A new or empty folder for the sample's YAML files.")
@framework_option
def cases_import(book: Path, out_dir: Path, framework_path: str | None) -> None:
    """Turn a case-assessment workbook into the sample's YAML files: sample.yaml, cases/*.yaml and
    organisation/*.yaml (a .csv of case rows gives cases/ only). Problems read
    FILE.xlsx:Cases!C12: code: message (hint), all in one pass; nothing is written unless the
    whole workbook is valid."""
    fw = _framework(framework_path)
    try:
        imported = workbook.import_workbook(book, out_dir, fw)
    except InputError as error:
        raise Invalid(error, 1) from None
    except OSError as error:
        raise click.ClickException(f"could not write {out_dir}: {error.strerror or error}") from None
    _report(imported.warnings, "text", 1)
    click.echo(f"wrote {imported.cases} case file{'s' * (imported.cases != 1)} and {imported.organisations} "
               f"organisation file{'s' * (imported.organisations != 1)} to {imported.out}")


@cli.group("case")
def case_group() -> None:
    """Start a case file."""


@case_group.command("new")
@click.argument("reference", metavar="REF")
@click.option("--provider", required=True, help="The provider supervising the case (from the framework vocabulary).")
@click.option("--set", "chosen", multiple=True, metavar="FIELD=VALUE",
              help="A value of a case field with one value, by its dotted name in the framework's case_file, e.g. "
                   "sentence.type=licence (repeatable).")
@framework_option
def case_new(reference: str, provider: str, chosen: tuple[str, ...], framework_path: str | None) -> None:
    """Print a complete case file to fill in: every case-scoped framework item with its text and
    the allowed answers. It validates once every null is filled in (or its line deleted)."""
    fw = _framework(framework_path)
    try:
        pairs = [given.split("=", 1) for given in chosen]
        if any(len(pair) != 2 or not pair[0] for pair in pairs):
            raise ValueError("--set takes FIELD=VALUE, e.g. sentence.type=licence")
        twice = sorted({name for name, _ in pairs if [n for n, _ in pairs].count(name) > 1})
        if twice:
            raise ValueError(f"--set gives {', '.join(twice)} more than once")
        text = template.case_template(fw, reference, provider, dict(pairs))
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    click.echo(text, nl=False)


@cli.command("export")
@click.argument("run_ref", metavar="RUN")
@click.option("--to", "out_file", required=True, metavar="FILE.xlsx|FILE.csv",
              type=click.Path(dir_okay=False, path_type=Path), help="The file to write: .xlsx, or .csv.")
@db_option
@click.option("--redact", is_flag=True,
              help="Publishable tables: no case (findings per organisation only), no case references or notes, no "
                   "diversity group under the minimum size.")
@key_option
def export_command(run_ref: str, out_file: Path, db_path: Path | None, redact: bool, key_file: Path | None) -> None:
    """Export a run's results as spreadsheet tables: case x criterion findings, aggregates per
    group, gaps and ratings. RUN is a stored run (its id, a prefix, or its number) or a report folder.
    A .csv target writes one file per table (FILE.csv holds the findings). No cell is a formula."""
    if out_file.suffix.lower() not in exporter.FORMATS:
        raise click.BadParameter(f"{out_file} must end in .xlsx or .csv", param_hint="--to")
    as_path = Path(run_ref)
    if as_path.exists():
        report_file = as_path / "report.json" if as_path.is_dir() else as_path
        try:
            stored = json.loads(report_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise click.ClickException(f"cannot read {report_file} as a run's report.json: {error}") from None
    else:
        with _open_store(db_path) as audit:
            try:
                stored = final.final_report(audit, audit.find(run_ref), _store_key(key_file)).content
            except InputError as error:
                raise Invalid(error, 0) from None
    if redact and not stored.get("redacted"):
        stored = redactor.report(stored, _diversity_fields(stored))
    try:
        written = exporter.write(stored, out_file)
    except OSError as error:
        raise click.ClickException(f"could not write {out_file}: {error.strerror or error}") from None
    for path in written:
        click.echo(f"wrote {path}")


@cli.group("users")
def users_group() -> None:
    """The store's accounts: who may decide, sign off, try rule changes or manage accounts. Once a
    store has one, every decision and sign-off is recorded by an account (whoever can write the
    store's file, or its database, manages them)."""


def _password_file_option(command):
    return click.option("--password-file", required=True, type=click.Path(dir_okay=False, allow_dash=True,
                        path_type=Path), help="The password, on the file's first line (- reads standard input); "
                        f"{accounts.MIN_PASSWORD} characters or more.")(command)


def admin_options(command):
    """``--as ADMIN --admin-password-file FILE``: the administrator making the change, once the
    store has one."""
    command = click.option("--admin-password-file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
                           help="The administrator's password, on the file's first line.")(command)
    return click.option("--as", "admin", metavar="ADMIN",
                        help="The administrator making the change (needed once the store has one).")(command)


def _accounts_change(db_path: Path | None, admin: str | None, admin_password: Path | None, change,
                     create: bool = False) -> None:
    try:
        opened = (store.Store.open_for_writing if create else store.Store.open)(
            db_path or store.default_path(), **({} if create else {"writable": True}))
        with opened as audit:
            by = None
            if admin is not None or admin_password is not None:
                if admin is None or admin_password is None:
                    raise click.UsageError("--as and --admin-password-file go together")
                by = _actor(audit, admin, admin_password)
            change(audit, by)
    except InputError as error:
        raise Invalid(error, 0) from None


@users_group.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(accounts.ROLES), help="What the account may do.")
@_password_file_option
@admin_options
@db_option
def users_add(name: str, role: str, password_file: Path, admin: str | None, admin_password_file: Path | None,
              db_path: Path | None) -> None:
    """Add an account (the store is created if there is none)."""
    problems = accounts.name_problems(store.shown(db_path or store.default_path()), name)
    try:
        password = accounts.read_password(password_file)
    except InputError as error:
        problems += error.diagnostics
    if problems:
        raise Invalid(InputError(problems), 0)
    _accounts_change(db_path, admin, admin_password_file, lambda audit, by: accounts.add(audit, name, role, password, by),
                     create=True)
    click.echo(f"account {name} added: {role.replace('_', ' ')}")


def _password(password_file: Path) -> str:
    try:
        return accounts.read_password(password_file)
    except InputError as error:
        raise Invalid(error, 0) from None


@users_group.command("list")
@db_option
@format_option
def users_list(db_path: Path | None, output_format: str) -> None:
    """The accounts, their roles and whether each is disabled (never a password or its hash)."""
    with _open_store(db_path) as audit:
        found = accounts.accounts(audit)
    if output_format == "json":
        _emit_json({"accounts": [a.as_dict() for a in found]})
        return
    if not found:
        click.echo("no accounts: decisions and sign-offs are recorded under the operating-system user")
    for account in found:
        click.echo(f"{texts.printable(account.name):<24} {texts.printable(account.role):<12} "
                   f"{'disabled' if account.disabled else 'enabled':<9} since {texts.printable(account.created_at)}")


@users_group.command("disable")
@click.argument("name")
@admin_options
@db_option
def users_disable(name: str, admin: str | None, admin_password_file: Path | None, db_path: Path | None) -> None:
    """Disable an account: it can no longer log in or record anything; what it recorded stays."""
    _accounts_change(db_path, admin, admin_password_file, lambda audit, by: accounts.set_disabled(audit, name, True, by))
    click.echo(f"account {name} disabled")


@users_group.command("enable")
@click.argument("name")
@admin_options
@db_option
def users_enable(name: str, admin: str | None, admin_password_file: Path | None, db_path: Path | None) -> None:
    """Enable a disabled account again."""
    _accounts_change(db_path, admin, admin_password_file,
                     lambda audit, by: accounts.set_disabled(audit, name, False, by))
    click.echo(f"account {name} enabled")


@users_group.command("passwd")
@click.argument("name")
@_password_file_option
@admin_options
@db_option
def users_passwd(name: str, password_file: Path, admin: str | None, admin_password_file: Path | None,
                 db_path: Path | None) -> None:
    """Set an account's password (its sessions in the workspace end)."""
    password = _password(password_file)
    _accounts_change(db_path, admin, admin_password_file,
                     lambda audit, by: accounts.set_password(audit, name, password, by))
    click.echo(f"password of {name} changed")


@users_group.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(accounts.ROLES))
@admin_options
@db_option
def users_role(name: str, role: str, admin: str | None, admin_password_file: Path | None,
               db_path: Path | None) -> None:
    """Give an account another role (its sessions in the workspace end: it logs in again)."""
    _accounts_change(db_path, admin, admin_password_file, lambda audit, by: accounts.set_role(audit, name, role, by))
    click.echo(f"account {name} is now {role.replace('_', ' ')}")


@cli.group("cache")
def cache_group() -> None:
    """The validated-case cache: each case file parsed and validated once, found again by its
    content ($QI_CACHE_DIR, else $XDG_CACHE_HOME/qi, i.e. ~/.cache/qi; QI_CACHE=off turns it off)."""


@cache_group.command("info")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def cache_info(output_format: str) -> None:
    """Where the cache is, how many case and evaluation entries it holds and their size against
    its limit."""
    found = case_cache.info()
    if output_format == "json":
        _emit_json(found)
        return
    if not found["enabled"]:
        click.echo(f"the validated-case cache is off ({case_cache.SWITCH_VARIABLE}=off)")
        return
    if not found["usable"]:
        click.echo(f"{found['folder']}: not used — its folder is not yours, or others may write to it "
                   f"(choose another with ${case_cache.FOLDER_VARIABLE})")
        return
    mib = lambda n: f"{n / 1024 / 1024:.1f} MiB"  # noqa: E731
    click.echo(f"{found['folder']}: {found['entries']} case entries, {found['evaluations']} evaluation entries, "
               f"{mib(found['bytes'])} (limit {mib(found['limit_bytes'])}, ${case_cache.LIMIT_VARIABLE})")


@cache_group.command("clear")
def cache_clear() -> None:
    """Remove every entry of the cache, case and evaluation entries alike (the case files
    themselves are untouched)."""
    removed = case_cache.clear()
    click.echo(f"removed {removed} entr{'y' if removed == 1 else 'ies'}")


@cli.command()
@click.argument("kind", type=click.Choice(sorted(files.SCHEMAS)))
@framework_option
def schema(kind: str, framework_path: str | None) -> None:
    """Print the JSON Schema of a file kind, with the framework's vocabulary as enums."""
    _emit_json(models.json_schema(files.SCHEMAS[kind], _framework(framework_path)))


def _add_logging_options(command: click.Command) -> None:
    """Every command and group accepts the logging options, so `qi run X -v` works like `qi -v run X`."""
    command.params.extend(LOGGING_OPTIONS)
    for child in getattr(command, "commands", {}).values():
        _add_logging_options(child)


_add_logging_options(cli)


def main() -> None:
    """Console entry point: run the CLI, turning Ctrl-C and internal errors into short messages."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("qi: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("qi: interrupted", err=True)
        sys.exit(130)
    except Exception as error:  # a bug in qi, not bad input: say so plainly; details at debug level
        # never the exception's message or locals: they can quote a case (notes, diversity values)
        frames = logs.where(error)
        log.debug("internal error", error=type(error).__name__, frames=frames)
        click.echo(f"qi: internal error: {type(error).__name__} at {frames[-1] if frames else 'unknown place'} "
                   "(please report it with the command you ran; --log-level debug shows where)", err=True)
        sys.exit(70)


if __name__ == "__main__":
    main()
