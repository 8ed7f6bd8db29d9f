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
import urllib.parse
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

from engine.base import logs, render
from engine.base import text as texts
from engine.base.diagnostics import InputError
from engine.report import draft, wording
from engine.run import final
from engine.serve import login, pages, security, workbench
from engine.store import accounts, backend, review
from engine.tools import handbook

HERE = Path(__file__).resolve().parent
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Case references as the case-file format allows them; anything else in a URL is not a case.
CASE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

environment = render.environment.overlay(loader=jinja2.ChoiceLoader([
    jinja2.PackageLoader("engine.serve", "templates"), render.environment.loader]))
environment.globals = {**render.environment.globals, "label": pages.plain, "may": accounts.may,
                       "maker": lambda r: wording.maker(r if isinstance(r, dict) else dataclasses.asdict(r)),
                       "decision_kinds": review.DECISIONS, "finding_values": review.FINDINGS[:3],
                       "agreement_words": wording.agreement_words, "what_if_summary": wording.what_if_summary,
                       "review_account": draft.review_account, "figure": draft.figure}

TEMPLATES = ("layout.html.j2", "_trace.html.j2", "_review.html.j2", "runs.html.j2", "run.html.j2", "case.html.j2",
             "review.html.j2", "queue.html.j2", "rules.html.j2", "try.html.j2", "error.html.j2", "login.html.j2",
             "users.html.j2")
LIMITS = {"reason": 4000, "case": 80, "criterion": 20, "decision": 20, "finding": 20, "name": 64,
          "password": accounts.MAX_PASSWORD, "next": 2000, "role": 20, "state": 10}
#: Paths open without a login (everything else needs one when the store has accounts).
PUBLIC = ("/login",)
log = logs.get("qi.serve")


@dataclasses.dataclass
class Workspace:
    """What every request needs: the store, the mode, the samples a change can be tried on."""

    reader: pages.Reader
    read_only: bool
    samples: list[Path]
    tokens: security.Tokens = dataclasses.field(default_factory=security.Tokens)
    #: The store's key, when its chain is keyed: decisions and sign-offs are links of that chain.
    key: bytes | None = None
    #: Cookies only over HTTPS: set when the workspace is served beyond this machine (behind a proxy
    #: that speaks HTTPS); a request that arrived over HTTPS gets them anyway.
    secure: bool = False
    sessions: login.Sessions = dataclasses.field(default_factory=login.Sessions)
    throttle: login.Throttle = dataclasses.field(default_factory=login.Throttle)

    def actor_of(self, request: Request) -> accounts.Actor | None:
        """Who is making the request: the logged-in account (as the store holds it now), None if
        nobody is logged in; on a store without accounts, the operating-system user running qi (on a
        shared store without accounts, nobody: it only ever records accounts)."""
        store = self.reader.store()
        if not accounts.enabled(store):
            return None if store.backend.shared else accounts.local_actor(store)
        token = request.cookies.get(login.COOKIE)
        session = self.sessions.find(token)
        if session is None:
            return None
        now = accounts.current(store, session.actor.name)
        if now != (session.actor, session.stamp):  # disabled, removed, another role or password: log in again
            self.sessions.end(token)
            return None
        return session.actor

    def cookie_secure(self, request: Request) -> bool:
        return self.secure or request.url.scheme == "https"


def _workspace(request: Request) -> Workspace:
    return request.app.state.workspace


def _actor(request: Request) -> accounts.Actor | None:
    return request.scope.get("state", {}).get("actor")


class LoginRequired:
    """ASGI middleware: on a store with accounts, every page but the login page needs a logged-in
    account (a GET is sent to the login page, anything else refused with 403). The request's
    actor is left in ``request.state.actor`` for the views."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        workspace: Workspace = scope["app"].state.workspace
        scope.setdefault("state", {})["actor"] = None
        path = scope["path"]
        try:
            actor = workspace.actor_of(request)
            unserved = actor is None and not path.startswith("/static/") and not accounts.enabled(workspace.reader.store())
        except (*backend.DatabaseError, InputError) as error:  # the store cannot be opened or read now
            await unavailable(request, error)(scope, receive, send)
            return
        scope["state"]["actor"] = actor
        if unserved:
            response = page(request, "error.html.j2", status=403, status_code=403,  # a shared store, no accounts yet
                            message="this shared store has no accounts yet, and shows nothing without them: "
                                    "add them with qi users add NAME --role ROLE --password-file FILE")
            await response(scope, receive, send)
            return
        if actor is None and path not in PUBLIC and not path.startswith("/static/"):
            if scope["method"] in ("GET", "HEAD"):
                target = path + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
                response = RedirectResponse(f"/login?next={urllib.parse.quote(target, safe='')}", status_code=303)
            else:
                response = page(request, "error.html.j2", status=403, status_code=403,
                                message="log in first: this workspace has accounts")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _permit(request: Request, action: str) -> accounts.Actor:
    """The request's actor, if its role allows ``action``; 403 otherwise (the review stage checks
    again inside its write)."""
    actor = _actor(request)
    if not accounts.may(actor, action):
        raise HTTPException(403, f"your role does not allow this: only {' or '.join(r.replace('_', ' ') for r in accounts.PERMISSIONS[action])} may {accounts.ACTIONS[action]}")
    return actor


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
        path=request.url.path, actor=_actor(request), **context)
    response = HTMLResponse(html, status)
    if new:
        response.set_cookie(security.COOKIE, cookie, httponly=True, samesite="strict", path="/",
                            secure=workspace.cookie_secure(request))
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


async def decide(request: Request) -> Response:
    """Record a reviewer's decision through engine.store.review (as ``qi review`` does), then go
    back to the case or the queue the form was on."""
    workspace = _workspace(request)
    form = await security.checked_form(request, workspace.tokens, workspace.read_only)
    by = _permit(request, "decide")
    run = request.path_params["run"]
    seq = workspace.reader.seq(run)
    given = _fields(form, "case", "criterion", "decision", "finding", "reason")
    back_to_case = form.get("back") == "case" and CASE_REF.fullmatch(given["case"]) is not None
    try:
        review.record_decision(workspace.reader.store(), seq, given["case"], given["criterion"], given["decision"],
                               by, given["reason"] or None,
                               (given["finding"] or None) if given["decision"] == "override" else None,
                               key=workspace.key)
    except InputError as error:
        return _refused(request, run, error, given["case"] if back_to_case else None)
    target = (f"/runs/{run}/cases/{given['case']}#finding-{given['criterion']}" if back_to_case
              else f"/runs/{run}/review")
    return RedirectResponse(target, status_code=303)


async def sign_off(request: Request) -> Response:
    """Sign the run off through engine.store.review (refused, with what is open, while anything is)."""
    workspace = _workspace(request)
    await security.checked_form(request, workspace.tokens, workspace.read_only)
    by = _permit(request, "signoff")
    run = request.path_params["run"]
    seq = workspace.reader.seq(run)
    try:
        final.signoff(workspace.reader.store(), seq, by, key=workspace.key)
    except InputError as error:
        return _refused(request, run, error, None)
    return RedirectResponse(f"/runs/{run}/review", status_code=303)


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
    if request.method in ("GET", "HEAD"):
        return page(request, "try.html.j2", name=name, text=workbench.load_text(name), samples=list(samples),
                    chosen=next(iter(samples), None), outcome=None)
    form = await security.checked_form(request, workspace.tokens, workspace.read_only)
    _permit(request, "try")
    text = form.get("text")
    chosen = form.get("sample") or None
    if not isinstance(text, str) or (chosen is not None and chosen not in samples):
        raise HTTPException(400, "the form needs the rule set text and one of the samples listed")
    text = text.replace("\r\n", "\n")  # browsers send textarea lines with CRLF
    outcome = await run_in_threadpool(workbench.attempt, name, text, samples[chosen] if chosen else None)
    return page(request, "try.html.j2", name=name, text=text, samples=list(samples), chosen=chosen, outcome=outcome)


def _next(value: object) -> str:
    """Where to go after logging in: a path of this workspace, never another site."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")) \
            and len(value) <= LIMITS["next"] and not any(c in value for c in "\r\n\\"):
        return value
    return "/"


async def login_page(request: Request) -> Response:
    """GET: the login form. POST: check the account and password; start a session (303 to where
    the person was going) or say the login failed (the same words whatever failed)."""
    workspace = _workspace(request)
    store = workspace.reader.store()
    form = None if request.method in ("GET", "HEAD") else \
        await security.checked_form(request, workspace.tokens, read_only=False)  # a read-only workspace has logins too
    if not accounts.enabled(store):
        return RedirectResponse("/", status_code=303)  # nobody logs in to a store without accounts
    if form is None:
        return page(request, "login.html.j2", next=_next(request.query_params.get("next")), name="")
    given = _fields(form, "name", "password", "next")
    target, name = _next(given["next"]), given["name"].strip()
    client = request.client.host if request.client else "unknown"
    wait = workspace.throttle.attempt(name, client)  # counted now, before the password is checked
    if wait > 0:
        log.warning("login refused: too many failures", account=texts.printable(name)[:64], client=client)
        return page(request, "login.html.j2", status=429, next=target, name=name,
                    errors=[f"Too many failed logins: try again in {max(1, round(wait / 60))} minute"
                            f"{'s' * (round(wait / 60) > 1)}."])
    def check() -> tuple[accounts.Actor, str]:
        return accounts.log_in(workspace.reader.store(), name, given["password"])  # the thread's own connection

    try:
        actor, stamp = await run_in_threadpool(check)  # argon2 takes tens of milliseconds: not on the event loop
    except InputError as error:
        log.warning("login failed", account=texts.printable(name)[:64], client=client)
        return page(request, "login.html.j2", status=403, next=target, name=name,
                    errors=[d.message for d in error.diagnostics])
    workspace.throttle.succeeded(name, client)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(login.COOKIE, workspace.sessions.start(actor, stamp), httponly=True, samesite="lax", path="/",
                        secure=workspace.cookie_secure(request))
    log.info("login", account=actor.name, role=actor.role)
    return response


async def logout(request: Request) -> Response:
    workspace = _workspace(request)
    await security.checked_form(request, workspace.tokens, read_only=False)
    workspace.sessions.end(request.cookies.get(login.COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(login.COOKIE, path="/", httponly=True, samesite="lax", secure=workspace.cookie_secure(request))
    return response


def _users_page(request: Request, status: int = 200, errors: list[str] = ()) -> Response:
    return page(request, "users.html.j2", status=status, errors=list(errors), roles=accounts.ROLES,
                people=accounts.accounts(_workspace(request).reader.store()))


async def users(request: Request) -> Response:
    """GET: the accounts (an administrator's page). POST: add one, as ``qi users add`` does."""
    workspace = _workspace(request)
    if request.method in ("GET", "HEAD"):
        _permit(request, "users")
        return _users_page(request)
    form = await security.checked_form(request, workspace.tokens, workspace.read_only)
    by = _permit(request, "users")
    given = _fields(form, "name", "role", "password")
    try:
        accounts.add(workspace.reader.store(), given["name"].strip(), given["role"], given["password"], by)
    except InputError as error:
        return _users_page(request, 400, [d.message for d in error.diagnostics])
    log.info("account added", account=given["name"].strip(), role=given["role"], by=by.name)
    return RedirectResponse("/users", status_code=303)


async def change_user(request: Request) -> Response:
    """Give an account another role, or disable or enable it (never one's own: nobody locks
    themselves out or raises themselves)."""
    workspace = _workspace(request)
    form = await security.checked_form(request, workspace.tokens, workspace.read_only)
    by = _permit(request, "users")
    name = request.path_params["name"]
    given = _fields(form, "role", "state")
    if by.via == accounts.ACCOUNT and name == by.name:
        return _users_page(request, 400, ["Your own account is changed by another administrator, or with qi users."])
    if given["state"] not in ("enabled", "disabled"):
        raise HTTPException(400, "state must be enabled or disabled")
    store = workspace.reader.store()
    try:
        accounts.change(store, name, given["role"], given["state"] == "disabled", by)
    except InputError as error:
        return _users_page(request, 400, [d.message for d in error.diagnostics])
    log.info("account changed", account=name, role=given["role"], state=given["state"], by=by.name)
    return RedirectResponse("/users", status_code=303)


async def not_found(request: Request, error: pages.NotFound) -> Response:
    return page(request, "error.html.j2", status=404, status_code=404, message=str(error))


def unavailable(request: Request, error: BaseException) -> Response:
    """A database error (a server restarted, a connection dropped, a lock waited on too long): the
    thread's connection is closed, so the next page opens the store afresh, and this one says so."""
    _workspace(request).reader.forget()
    log.warning("store unavailable", error=type(error).__name__)
    why = error.diagnostics[0].message if isinstance(error, InputError) else type(error).__name__
    return page(request, "error.html.j2", status=503, status_code=503,
                message=f"store_unavailable: the audit store cannot be read now ({why}); try again in a moment")


async def database_error(request: Request, error: BaseException) -> Response:
    return unavailable(request, error)


async def http_error(request: Request, error: HTTPException) -> Response:
    return page(request, "error.html.j2", status=error.status_code, status_code=error.status_code,
                message=error.detail)


def create(db_path: str | Path, read_only: bool = False, samples: list[Path] = (),
           hosts: list[str] = LOOPBACK, key: bytes | None = None, secure: bool = False) -> Starlette:
    """The workspace application on the audit store at ``db_path``. Requests must name one of
    ``hosts`` (a page on another site reaching the server through DNS rebinding is refused).
    ``secure``: cookies are sent over HTTPS only."""
    routes = [
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
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
        Route("/users", users, methods=["GET", "POST"]),
        Route("/users/{name}", change_user, methods=["POST"]),
        Route("/rules/{name}/handbook", handbook_page),
        Route("/rules/{name}/try", try_change, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes,
                    middleware=[Middleware(security.Headers),
                                Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
                                Middleware(LoginRequired)],
                    exception_handlers={pages.NotFound: not_found, HTTPException: http_error,
                                        **{kind: database_error for kind in backend.DatabaseError}})
    app.state.workspace = Workspace(pages.Reader(db_path, key, read_only), read_only, list(samples), key=key,
                                    secure=secure)
    for template in TEMPLATES:  # compiled now, not on someone's first page
        environment.get_template(template)
    return app


def serve(db_path: Path, host: str, port: int, read_only: bool, samples: list[Path], key: bytes | None = None,
          allow_hosts: list[str] = ()) -> None:
    """Run the workspace until interrupted (uvicorn, no access log: URLs name cases). Requests may
    name this machine, the address served on, or one of ``allow_hosts`` (a proxy's public name);
    beyond this machine, cookies go over HTTPS only."""
    import uvicorn

    hosts = list(LOOPBACK) if host in LOOPBACK else [*LOOPBACK, host] if host not in ("0.0.0.0", "::") else ["*"]
    app = create(db_path, read_only, samples, [*hosts, *allow_hosts], key,
                 secure=not is_loopback(host) or bool(allow_hosts))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def warn(host: str, allow_hosts=()) -> str:
    where = f"as {', '.join(allow_hosts)}" if allow_hosts else f"on {host}, not this machine's loopback"
    return (f"serving {where}: every page needs a login, and cookies are sent over HTTPS only, so put a "
            "reverse proxy that speaks HTTPS in front (README, \"A team's workspace\")")

