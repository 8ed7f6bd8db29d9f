"""What keeps the workspace safe to open in a browser: CSRF tokens on every form, strict
response headers on every response, and POSTs refused without a token or in read-only mode.

The CSRF token is bound to a random cookie (``SameSite=Strict``, ``HttpOnly``) by an HMAC under a
secret made when the app starts: a page on another site can neither read the token nor forge it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "qi_csrf"
FIELD = "csrf"
#: Largest form accepted (a rule set edited in the browser is at most 1 MiB, as on disk).
MAX_FORM_BYTES = 2 * 1024 * 1024

#: No script of any kind, styles and forms only from the workspace itself, never framed.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # not no-referrer: browsers would then post "Origin: null"
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class Headers:
    """ASGI middleware: the security headers on every response, error pages included. A view that
    must relax the CSP (the standalone handbook's own style element) sets its own header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in HEADERS if name not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Tokens:
    """CSRF tokens: an HMAC of the browser's cookie under this app's secret."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)

    def token(self, cookie: str) -> str:
        return hmac.new(self._secret, cookie.encode(), hashlib.sha256).hexdigest()

    def cookie_for(self, request: Request) -> tuple[str, bool]:
        """The browser's cookie, or a new one (and True: the response must set it)."""
        cookie = request.cookies.get(COOKIE, "")
        if len(cookie) == 43 and cookie.replace("-", "").replace("_", "").isalnum():
            return cookie, False
        return secrets.token_urlsafe(32), True

    def valid(self, request: Request, submitted: object) -> bool:
        cookie = request.cookies.get(COOKIE)
        return (isinstance(submitted, str) and bool(cookie)
                and hmac.compare_digest(self.token(cookie), submitted))


async def checked_form(request: Request, tokens: Tokens, read_only: bool) -> FormData:
    """The posted form, after every check a POST must pass: not read-only (403), same origin (403),
    of a stated size that is not too large (411, 413), a valid CSRF token (403). Every POST view
    reads its form through this."""
    if read_only:
        raise HTTPException(403, "this workspace is read-only: nothing can be recorded or tried here")
    origin = request.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
        raise HTTPException(403, "the form was posted from another site")
    length = request.headers.get("content-length")
    if length is None:
        raise HTTPException(411, "a form must say its length")
    if not length.isdigit() or int(length) > MAX_FORM_BYTES:
        raise HTTPException(413, f"the form is larger than {MAX_FORM_BYTES // (1024 * 1024)} MiB")
    form = await request.form(max_files=0, max_fields=50, max_part_size=MAX_FORM_BYTES)
    if not tokens.valid(request, form.get(FIELD)):
        raise HTTPException(403, "the form's security token is missing or stale: reload the page and submit again")
    return form
