"""The workspace's web application: routes, rendering and the server that runs it.

Pages are rendered on the server with the report templates' Jinja2 environment (autoescaped:
every value from a case, note or rule file is shown as text) overlaid with this stage's
templates; no page carries a script, and the Content-Security-Policy forbids any. Forms work
with plain HTML; every POST goes through :func:`security.checked_form`.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import re
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from engine.base import render
from engine.base.diagnostics import InputError
from engine.report import draft, wording
from engine.run import final
from engine.serve import pages, security, workbench
from engine.store import review
from engine.tools import handbook

HERE = Path(__file__).resolve().parent
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Case references as the case-file format allows them; anything else in a URL is not a case.
CASE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

environment = render.environment.overlay(loader=jinja2.ChoiceLoader([
    jinja2.PackageLoader("engine.serve", "templates"), render.environment.loader]))
environment.globals = {**render.environment.globals, "label": pages.plain,
                       "decision_kinds": review.DECISIONS, "finding_values": review.FINDINGS[:3],
                       "agreement_words": wording.agreement_words, "what_if_summary": wording.what_if_summary,
                       "review_account": draft.review_account, "figure": draft.figure}

TEMPLATES = ("layout.html.j2", "_trace.html.j2", "_review.html.j2", "runs.html.j2", "run.html.j2", "case.html.j2",
             "review.html.j2", "queue.html.j2", "rules.html.j2", "try.html.j2", "error.html.j2")
#: Remembers who is reviewing in this browser, to fill in the next form (never trusted: it is a default).
REVIEWER_COOKIE = "qi_reviewer"
LIMITS = {"reason": 4000, "reviewer": 200, "case": 80, "criterion": 20, "decision": 20, "finding": 20}


@dataclasses.dataclass
class Workspace:
    """What every request needs: the store, the mode, the samples a change can be tried on."""

    reader: pages.Reader
    read_only: bool
    samples: list[Path]
    tokens: security.Tokens = dataclasses.field(default_factory=security.Tokens)
    #: The store's key, when its chain is keyed: decisions and sign-offs are links of that chain.
    key: bytes | None = None


def _workspace(request: Request) -> Workspace:
    return request.app.state.workspace


def page(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    """A page rendered in the layout, with a CSRF token for its forms (setting the cookie the
    token is bound to if the browser has none yet)."""
    workspace = _workspace(request)
    cookie, new = workspace.tokens.cookie_for(request)
    context.setdefault("errors", [])
    if isinstance(context.get("r"), dict):  # figures in traces stated at the run's own confidence
        confidence = context["r"].get("aggregates", {}).get("confidence", 0.95)
        context.setdefault("figure", functools.partial(draft.figure, confidence=confidence))
    context.setdefault("names", wording.Names(context["r"] if isinstance(context.get("r"), dict) else {}))
    html = environment.get_template(template).render(
        read_only=workspace.read_only, csrf=workspace.tokens.token(cookie), csrf_field=security.FIELD,
        path=request.url.path, reviewer=request.cookies.get(REVIEWER_COOKIE, "")[:LIMITS["reviewer"]], **context)
    response = HTMLResponse(html, status)
    if new:
        response.set_cookie(security.COOKIE, cookie, httponly=True, samesite="strict", path="/")
    return response


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    if not raw.isdigit() or len(raw) > 9:
        raise HTTPException(400, "page must be a whole number")
    return int(raw)


async def runs(request: Request) -> Response:
    return page(request, "runs.html.j2", **pages.runs_list(_workspace(request).reader))


async def run(request: Request) -> Response:
    view = pages.run_page(_workspace(request).reader, request.path_params["run"], _page_number(request))
    return page(request, "run.html.j2", **view)


async def chart(request: Request) -> Response:
    """The run's chart of % sufficient per criterion and provider, as SVG (an image: the page that
    shows it carries no script, and the image none either)."""
    drawn = pages.criteria_chart(_workspace(request).reader, request.path_params["run"])
    if drawn is None:
        raise HTTPException(404, "no figures to chart")
    return Response(drawn, media_type="image/svg+xml")


async def lines_chart(request: Request) -> Response:
    """One standard's chart of its lines met per provider, as SVG (as :func:`chart`)."""
    drawn = pages.criteria_chart(_workspace(request).reader, request.path_params["run"],
                                 request.path_params["standard"])
    if drawn is None:
        raise HTTPException(404, "no such standard with figures to chart")
    return Response(drawn, media_type="image/svg+xml")


async def case(request: Request) -> Response:
    reference = request.path_params["case"]
    if not CASE_REF.fullmatch(reference):
        raise HTTPException(404, "not a case reference")
    view = pages.case_page(_workspace(request).reader, request.path_params["run"], reference)
    return page(request, "case.html.j2", **view)


async def review_index(request: Request) -> Response:
    return page(request, "review.html.j2", queues=pages.queues(_workspace(request).reader))


async def queue(request: Request) -> Response:
    return page(request, "queue.html.j2", **pages.review_queue(_workspace(request).reader, request.path_params["run"]))


def _fields(form, *names: str) -> dict[str, str]:
    """Text fields of a posted form (absent ones empty), refusing any longer than its limit."""
    found = {}
    for name in names:
        value = form.get(name, "")
        if not isinstance(value, str) or len(value) > LIMITS[name]:
            raise HTTPException(400, f"{name} must be text of at most {LIMITS[name]} characters")
        found[name] = value.replace("\r\n", "\n")
    return found


def _refused(request: Request, run: int, error: InputError, case_ref: str | None) -> Response:
    """The page the form was on, again, saying why nothing was recorded (400)."""
    errors = [d.message for d in error.diagnostics]  # the hints name command-line options
    reader = _workspace(request).reader
    if case_ref is not None:
        return page(request, "case.html.j2", status=400, errors=errors, **pages.case_page(reader, run, case_ref))
    return page(request, "queue.html.j2", status=400, errors=errors, **pages.review_queue(reader, run))


def _remember(response: Response, reviewer: str) -> Response:
    response.set_cookie(REVIEWER_COOKIE, reviewer.strip(), httponly=True, samesite="strict", path="/")
    return response


async def decide(request: Request) -> Response:
    """Record a reviewer's decision through engine.store.review (as ``qi review`` does), then go
    back to the case or the queue the form was on."""
    workspace = _workspace(request)
    form = await security.checked_form(request, workspace.tokens, workspace.read_only)
    run = request.path_params["run"]
    seq = workspace.reader.seq(run)
    given = _fields(form, "case", "criterion", "decision", "finding", "reason", "reviewer")
    back_to_case = form.get("back") == "case" and CASE_REF.fullmatch(given["case"]) is not None
    try:
        review.record_decision(workspace.reader.store(), seq, given["case"], given["criterion"], given["decision"],
                               given["reviewer"], given["reason"] or None,
                               (given["finding"] or None) if given["decision"] == "override" else None,
                               key=workspace.key)
    except InputError as error:
        return _refused(request, run, error, given["case"] if back_to_case else None)
    target = (f"/runs/{run}/cases/{given['case']}#finding-{given['criterion']}" if back_to_case
              else f"/runs/{run}/review")
    return _remember(RedirectResponse(target, status_code=303), given["reviewer"])


async def sign_off(request: Request) -> Response:
    """Sign the run off through engine.store.review (refused, with what is open, while anything is)."""
    workspace = _workspace(request)
    form = await security.checked_form(request, workspace.tokens, workspace.read_only)
    run = request.path_params["run"]
    seq = workspace.reader.seq(run)
    given = _fields(form, "reviewer")
    try:
        final.signoff(workspace.reader.store(), seq, given["reviewer"], key=workspace.key)
    except InputError as error:
        return _refused(request, run, error, None)
    return _remember(RedirectResponse(f"/runs/{run}/review", status_code=303), given["reviewer"])


def _rule_set(request: Request) -> str:
    name = request.path_params["name"]
    if name not in workbench.rule_sets():
        raise HTTPException(404, "no bundled rule set of that name")
    return name


async def rules_index(request: Request) -> Response:
    return page(request, "rules.html.j2", rule_sets=list(workbench.rule_sets()))


async def handbook_page(request: Request) -> Response:
    """The methodology handbook, as ``qi rules doc --format html`` writes it: a page of its own
    whose one style element is allowed by its hash (still no script of any kind)."""
    try:
        loaded = workbench.handbook_source(_rule_set(request))
    except InputError as error:
        raise HTTPException(500, f"the bundled rule set does not load: {error.diagnostics[0].render()}") from None
    html = handbook.as_html(loaded)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                      for s in re.findall(r"<style>(.*?)</style>", html, flags=re.S))
    policy = security.CSP.replace("style-src 'self'", f"style-src 'self' {hashes}".rstrip())
    return HTMLResponse(html, headers={"content-security-policy": policy})


async def try_change(request: Request) -> Response:
    """GET: the form, holding the bundled rule set. POST: lint, rule tests and diff of the edit."""
    workspace = _workspace(request)
    name = _rule_set(request)
    samples = workbench.bundled_samples(workspace.samples)
    if request.method == "GET":
        return page(request, "try.html.j2", name=name, text=workbench.load_text(name), samples=list(samples),
                    chosen=next(iter(samples), None), outcome=None)
    form = await security.checked_form(request, workspace.tokens, workspace.read_only)
    text = form.get("text")
    chosen = form.get("sample") or None
    if not isinstance(text, str) or (chosen is not None and chosen not in samples):
        raise HTTPException(400, "the form needs the rule set text and one of the samples listed")
    text = text.replace("\r\n", "\n")  # browsers send textarea lines with CRLF
    outcome = await run_in_threadpool(workbench.attempt, name, text, samples[chosen] if chosen else None)
    return page(request, "try.html.j2", name=name, text=text, samples=list(samples), chosen=chosen, outcome=outcome)


async def not_found(request: Request, error: pages.NotFound) -> Response:
    return page(request, "error.html.j2", status=404, status_code=404, message=str(error))


async def http_error(request: Request, error: HTTPException) -> Response:
    return page(request, "error.html.j2", status=error.status_code, status_code=error.status_code,
                message=error.detail)


def create(db_path: str | Path, read_only: bool = False, samples: list[Path] = (),
           hosts: list[str] = LOOPBACK, key: bytes | None = None) -> Starlette:
    """The workspace application on the audit store at ``db_path``. Requests must name one of
    ``hosts`` (a page on another site reaching the server through DNS rebinding is refused)."""
    routes = [
        Route("/", runs),
        Route("/runs/{run:int}", run),
        Route("/runs/{run:int}/cases/{case}", case),
        Route("/runs/{run:int}/charts/criteria.svg", chart),
        Route("/runs/{run:int}/charts/lines-{standard}.svg", lines_chart),
        Route("/review", review_index),
        Route("/runs/{run:int}/review", queue),
        Route("/runs/{run:int}/decisions", decide, methods=["POST"]),
        Route("/runs/{run:int}/signoff", sign_off, methods=["POST"]),
        Route("/rules", rules_index),
        Route("/rules/{name}/handbook", handbook_page),
        Route("/rules/{name}/try", try_change, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes,
                    middleware=[Middleware(security.Headers),
                                Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))],
                    exception_handlers={pages.NotFound: not_found, HTTPException: http_error})
    app.state.workspace = Workspace(pages.Reader(db_path, key, read_only), read_only, list(samples), key=key)
    for template in TEMPLATES:  # compiled now, not on someone's first page
        environment.get_template(template)
    return app


def serve(db_path: Path, host: str, port: int, read_only: bool, samples: list[Path], key: bytes | None = None) -> None:
    """Run the workspace until interrupted (uvicorn, no access log: URLs name cases)."""
    import uvicorn

    hosts = list(LOOPBACK) if host in LOOPBACK else [*LOOPBACK, host] if host not in ("0.0.0.0", "::") else ["*"]
    app = create(db_path, read_only, samples, hosts, key)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def warn(host: str) -> str:
    return (f"warning: serving on {host}, not 127.0.0.1: anyone who can reach this machine on the network can read "
            "every run, case and inspector's note in the store (and record decisions unless --read-only); "
            "there are no user accounts")

