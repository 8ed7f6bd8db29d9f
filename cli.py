"""qi: a rules-driven judgement engine for probation inspection. The command line.

A thin click layer: parse arguments, call ``engine``, render, exit. Data goes to stdout; logs,
progress and diagnostics go to stderr. Exit codes: 0 ok, 1 invalid input or a failed check,
2 usage error.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import click

from engine import diagnostics, logs, models, pipeline, rules, views
from engine import framework as frameworks
from engine import sample as samples
from engine.diagnostics import Diagnostic, InputError
from engine.evaluate import EngineError
from engine.judge import SEVERITY

log = logs.get("qi")


def _version() -> str:
    try:
        return metadata.version("qi-engine")
    except metadata.PackageNotFoundError:
        return "0+source"


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


format_option = click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
                             show_default=True, help="Output format.")
framework_option = click.option("--framework", "framework_path", type=click.Path(dir_okay=False),
                                help="Framework file to use instead of the bundled one.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="qi")
@click.option("--log-format", type=click.Choice(["human", "json"]), default="human", show_default=True,
              help="How log lines on stderr are written.")
@click.option("--log-level", type=click.Choice(logs.LEVELS), default="warning", show_default=True,
              help="Least severe log level shown.")
def cli(log_format: str, log_level: str) -> None:
    """qi judges probation case evidence against the HMI Probation Quality & Impact framework.

    Inspectors validate and run samples; quality reviewers read reasoning traces; methodology
    staff edit rule sets. Diagnostics read path:line:col: code: message (hint).
    """
    logs.configure(log_format, log_level)


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
        _report(error.diagnostics, "text", 1)
        sys.exit(1)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
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
        try:
            if path.is_dir():
                found += samples.load(path, framework_path).warnings
            else:
                found += samples.warnings_for(samples.check_file(path, framework_path))
        except InputError as error:
            found += error.diagnostics
    log.info("validated", paths=len(paths), files=checked)
    _report(found, output_format, checked)
    if diagnostics.has_errors(found):
        sys.exit(1)


rules_option = click.option("--rules", "rules_file", type=click.Path(dir_okay=False, path_type=Path),
                            help="Rule set file (default: the sample's rule set, else the bundled default).")


def _case_and_rules(case_file: Path, rules_file: Path | None):
    """Load the rule set and the case, or print diagnostics and exit 1."""
    try:
        compiled = pipeline.compiled_rules(rules_file or pipeline.rules_path(_sample_rules(case_file)))
        return compiled, pipeline.load_case(case_file, compiled)
    except InputError as error:
        _report(error.diagnostics, "text", 1)
        sys.exit(1)


def _sample_rules(case_file: Path) -> str | None:
    """The rule set id named by the sample a case file sits in, if any."""
    manifest = case_file.resolve().parent.parent / "sample.yaml"
    if case_file.resolve().parent.name != "cases" or not manifest.is_file():
        return None
    try:
        return samples.load_manifest(manifest).rules
    except InputError:
        return None


def _result(compiled, case) -> dict:
    try:
        result = pipeline.case_result(compiled, case)
    except EngineError as error:
        raise click.ClickException(f"the rules engine failed on {case.document.path}: {error}") from None
    for warning in pipeline.not_assessed_warnings(result, case):
        click.echo(warning.render(), err=True)
    log.info("evaluated", rules_fired=len(result["rules_fired"]), criteria=len(result["findings"]))
    return result


@cli.command()
@click.argument("case_file", metavar="CASE.yaml", type=click.Path(dir_okay=False, path_type=Path))
@rules_option
@format_option
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


@cli.command()
@click.argument("case_file", metavar="CASE.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--criterion", required=True, help="Criterion to explain, e.g. 3.1.")
@click.option("--why-not", "why_not", type=click.Choice(SEVERITY),
              help="Explain why the criterion was not judged this value.")
@rules_option
@format_option
def explain(case_file: Path, criterion: str, why_not: str | None, rules_file: Path | None,
            output_format: str) -> None:
    """Show the derivation of one case's finding on a criterion, down to the inspector's notes.

    With --why-not VALUE: every rule that could have concluded VALUE, and the conditions that failed.
    """
    compiled, case = _case_and_rules(case_file, rules_file)
    evaluation, judgement = pipeline.evaluate_case(compiled, case)
    if criterion not in judgement.findings:
        raise click.BadParameter(f"{criterion!r} is not a case-scoped criterion ("
                                 f"{diagnostics.did_you_mean(criterion, list(judgement.findings), 'criteria')})",
                                 param_hint="--criterion")
    tracer = pipeline.trace.Tracer(compiled, evaluation, case)
    finding = judgement.findings[criterion]
    node = tracer.why_not(criterion, why_not, finding) if why_not else tracer.finding(finding)
    if output_format == "json":
        _emit_json(node)
    else:
        click.echo(views.tree_text(node), nl=False)


@cli.command()
@click.argument("kind", type=click.Choice(sorted(models.KINDS)))
@framework_option
def schema(kind: str, framework_path: str | None) -> None:
    """Print the JSON Schema of a file kind, with the framework's vocabulary as enums."""
    _emit_json(models.json_schema(kind, _framework(framework_path)))


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


if __name__ == "__main__":
    main()
