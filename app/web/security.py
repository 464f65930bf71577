"""The access policy: every route declares the role it needs, here and nowhere else.

`requires(Role.x)` is a FastAPI dependency that returns the signed-in `Principal` or refuses the
request; `requires_recent_auth(Role.x)` also wants the password confirmed in the last few minutes;
`public()` marks the few routes open without sign-in; `metrics_access()` guards /metrics with an
optional token. A route with none of them fails the role-matrix test.

Who is asking: `Authorization: Bearer <API token>` on `/api/...` (no cookies, so no CSRF), else the
session cookie. Every state-changing request carries a CSRF token (form field `csrf_token` or header
`X-CSRF-Token`), checked here too, so no route can forget it. `SecurityMiddleware` adds the
security headers and gives every request its CSRF token for the templates.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.orm import joinedload
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db_reader import ReaderBusy, SignInReader
from app.models.account import WebSession
from app.models.base import utcnow
from app.services.accounts.backoff import BackoffPolicy
from app.services.accounts.policies import may_need_totp_enrolment, must_enrol_totp
from app.services.accounts.sessions import (
    SessionPolicy,
    SignedIn,
    has_recent_auth,
    resolve_session,
    session_lookup,
    signed_in_from,
)
from app.services.accounts.tokens import LiveToken, live_token_from, resolve_token, token_lookup
from app.services.audit import Actor, ClientInfo, Via
from app.settings import Settings
from app.web.deps import DbSession

SESSION_COOKIE = "lifeline_session"
CSRF_COOKIE = "lifeline_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# Scripts only from our own origin: no inline scripts or handlers, no eval. Inline style attributes
# stay allowed (server-rendered bars and plots set widths with them); they cannot run code.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


class Role(enum.StrEnum):
    viewer = "viewer"
    responder = "responder"
    admin = "admin"

    @property
    def rank(self) -> int:
        return {"viewer": 1, "responder": 2, "admin": 3}[self.value]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True)
class Principal:
    """Who is making the request: a signed-in user, or an API token acting for its owner."""

    user_id: int | None
    username: str
    role: Role
    via_token: bool = False
    session_id: int | None = None
    token_id: int | None = None

    def can(self, role: Role) -> bool:
        return self.role.allows(role)


# ---------------------------------------------------------------- helpers for handlers


def now_utc(request: Request) -> dt.datetime:
    """The current time; tests replace `app.state.clock` to move time."""
    clock: Callable[[], dt.datetime] = getattr(request.app.state, "clock", utcnow)
    return clock()


def actor_of(principal: Principal, request: Request) -> Actor:
    """The service-layer actor for this request: the person, how they came, and from where."""
    return Actor(
        name=principal.username,
        user_id=principal.user_id,
        role=principal.role.value,
        via=Via.token if principal.via_token else Via.browser,
        token_id=principal.token_id,
        client=client_info(request),
    )


def client_info(request: Request) -> ClientInfo:
    """Client address and user agent for the audit trail and the back-off.

    The TCP peer is the client, unless the peer is one of `LIFELINE_TRUSTED_PROXIES`: then the
    right-most X-Forwarded-For address that is not itself a trusted proxy (a client can prepend
    anything; only what the proxies appended is believed).
    """
    peer = request.client.host if request.client else None
    return ClientInfo(
        address=client_address(peer, request.headers, _trusted(request)),
        user_agent=request.headers.get("user-agent"),
    )


def _trusted(request: Request) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    cached = getattr(request.app.state, "trusted_proxies", None)
    if cached is None:
        cached = parse_proxies(_settings(request).trusted_proxies)
        request.app.state.trusted_proxies = cached
    return cached  # type: ignore[no-any-return]


def parse_proxies(values: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _in(address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(
    peer: str | None, headers: Any, trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> str | None:
    if peer is None or not trusted or not _in(peer, trusted):
        return peer
    forwarded = ",".join(headers.getlist("x-forwarded-for")) if hasattr(headers, "getlist") else ""
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from the proxy chain: the proxy itself is what we know
    return peer


def session_policy(settings: Settings) -> SessionPolicy:
    return SessionPolicy.from_settings(settings)


def backoff_policy(settings: Settings) -> BackoffPolicy:
    return BackoffPolicy(
        free_attempts=settings.login_free_attempts,
        base_seconds=settings.login_backoff_base_seconds,
        max_seconds=settings.login_backoff_max_seconds,
        window=dt.timedelta(minutes=settings.login_failure_window_minutes),
    )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def cookie_secure(request: Request) -> bool:
    mode = _settings(request).session_cookie_secure
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


def set_session_cookie(request: Request, response: Response, raw: str) -> None:
    settings = _settings(request)
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=settings.session_max_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
        path="/",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=cookie_secure(request)
    )


def safe_next(target: str | None, default: str = "/") -> str:
    """A same-site path to return to after sign-in (never another host: no open redirect)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or parts.path.startswith(("/login", "/logout", "/reauth")):
        return default
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _return_path(request: Request) -> str:
    """Where to come back to: this page for GET, the page the form was on otherwise."""
    if request.method in SAFE_METHODS and not _is_htmx(request):
        return safe_next(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    source = request.headers.get("HX-Current-URL") or ""
    if not source and request.method in SAFE_METHODS:
        source = str(request.url)
    source = source or request.headers.get("referer") or "/"
    parts = urlsplit(source)
    if parts.netloc and parts.netloc != request.url.netloc:
        return "/"
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))


# ---------------------------------------------------------------- CSRF


def csrf_token_for_session(raw_session: str) -> str:
    """The CSRF token of a signed-in session: derived from the secret cookie, so nothing to store."""
    return hashlib.sha256(b"lifeline-csrf:" + raw_session.encode()).hexdigest()


def expected_csrf_token(cookies: dict[str, str]) -> str | None:
    raw_session = cookies.get(SESSION_COOKIE)
    if raw_session:
        return csrf_token_for_session(raw_session)
    # Before sign-in (the login form): a double-submit cookie.
    return cookies.get(CSRF_COOKIE) or None


async def csrf_protect(request: Request) -> None:
    """Refuse a state-changing request without the right CSRF token (bearer-token API calls exempt)."""
    if request.method in SAFE_METHODS:
        return
    if _is_api(request) and _bearer(request):
        return
    expected = expected_csrf_token(dict(request.cookies))
    supplied = request.headers.get(CSRF_HEADER)
    if not supplied:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            supplied = value if isinstance(value, str) else None
    if not expected or not supplied or not hmac.compare_digest(expected, supplied):
        raise HTTPException(
            403,
            "The form's security token is missing or out of date (CSRF check). Reload the page, try again.",
        )


# ---------------------------------------------------------------- who is asking


class SignInRequired(Exception):
    """Raised for a request without a valid session; turned into a redirect to /login."""

    def __init__(self, next_path: str, *, expired: bool) -> None:
        self.next_path = next_path
        self.expired = expired


class ReauthRequired(Exception):
    """Raised when the password must be confirmed first; turned into a redirect to /reauth."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class TotpEnrolmentRequired(Exception):
    """A break-glass admin without TOTP while it is required: enrolment comes first (issue 18)."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


# What a session held at TOTP enrolment may still reach (starting the set-up may ask for the password).
ENROLMENT_PATHS = ("/account/totp", "/logout", "/reauth")


def _may_hold_for_enrolment(request: Request, principal: Principal) -> bool:
    """Whether `_hold_for_enrolment` has to read the policy (no I/O; almost every request: no)."""
    if principal.via_token or request.url.path.startswith(ENROLMENT_PATHS):
        return False
    signed_in = signed_in_of(request)
    return signed_in is not None and may_need_totp_enrolment(
        signed_in, sso_on=bool(_settings(request).oidc_issuer)
    )


def _hold_for_enrolment(request: Request, db: Any, principal: Principal) -> None:
    """Asked when `_may_hold_for_enrolment` says so: reads the policy (I/O, in the thread pool)."""
    signed_in = signed_in_of(request)
    if signed_in is None:
        return
    settings = _settings(request)
    if must_enrol_totp(
        db, signed_in, sso_on=bool(settings.oidc_issuer), setting=settings.break_glass_totp_required
    ):
        raise TotpEnrolmentRequired(_return_path(request))


def current_principal(request: Request, db: Any) -> Principal | None:
    """Resolve the principal (cached per request); raises 401 for a bad bearer token on the API."""
    if hasattr(request.state, "principal_resolved"):
        principal: Principal | None = request.state.principal
        return principal
    now = now_utc(request)
    bearer = _bearer(request)
    if _is_api(request) and bearer:
        return _settle_token(request, resolve_token(db, bearer, now=now))
    raw = request.cookies.get(SESSION_COOKIE)
    signed_in = resolve_session(db, raw, policy=session_policy(_settings(request)), now=now) if raw else None
    return _settle_session(request, signed_in)


async def resolve_principal(request: Request, db: Any) -> Principal | None:
    """`current_principal` for the role dependencies. With a sign-in reader (`app.db_reader`) the
    lookup runs on the event loop; without one (a test's shared connection), or when SQLite's
    reader meets a lock, it runs through `current_principal` in the thread pool. An ended session
    (idle, too old, account disabled) is refused either way; its row is left to the retention job
    (`purge_expired_sessions`): the refusal rolls the request's transaction back, so deleting it
    here would not land.

    Every request reads the row: a session ended or a token revoked in another process is refused
    at its next request (no cached sign-in, since this dashboard hands out cluster-admin access)."""
    if hasattr(request.state, "principal_resolved"):
        principal: Principal | None = request.state.principal
        return principal
    reader: SignInReader | None = getattr(request.app.state, "sign_in_reader", None)
    if reader is not None:
        now = now_utc(request)
        bearer = _bearer(request)
        try:
            if _is_api(request) and bearer:
                lookup = token_lookup(bearer)
                row = await reader.read_one(*lookup) if lookup else None
                return _settle_token(request, None if row is None else live_token_from(row, now=now))
            raw = request.cookies.get(SESSION_COOKIE)
            lookup = session_lookup(raw) if raw else None
            row = await reader.read_one(*lookup) if lookup else None
        except ReaderBusy:  # SQLite met a lock: wait for it in the thread pool, not on the loop
            return await run_in_threadpool(current_principal, request, db)
        policy = session_policy(_settings(request))
        return _settle_session(request, None if row is None else signed_in_from(row, policy=policy, now=now))
    return await run_in_threadpool(current_principal, request, db)


def _settle_token(request: Request, token: LiveToken | None) -> Principal:
    if token is None:
        raise HTTPException(
            401,
            "The API token is not valid (unknown, expired or revoked).",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    principal = Principal(token.user_id, token.username, Role(token.role), True, token_id=token.id)
    _settle(request, principal)
    return principal


def _settle_session(request: Request, signed_in: SignedIn | None) -> Principal | None:
    if signed_in is None:
        return _settle(request, None)
    request.state.signed_in = signed_in
    principal = Principal(
        signed_in.user_id, signed_in.username, Role(signed_in.role), False, session_id=signed_in.id
    )
    return _settle(request, principal)


def _settle(request: Request, principal: Principal | None) -> Principal | None:
    request.state.principal = principal
    request.state.principal_resolved = True
    return principal


def signed_in_of(request: Request) -> SignedIn | None:
    """The request's browser session as the sign-in check read it (None for an API token or nobody)."""
    signed_in: SignedIn | None = getattr(request.state, "signed_in", None)
    return signed_in


def web_session_of(request: Request, db: Any) -> WebSession | None:
    """The request's session row with its user, loaded for what changes it or reads its secrets
    (confirming the password, the SSO ID token); every other use reads `signed_in_of`."""
    signed_in = signed_in_of(request)
    if signed_in is None:
        return None
    web_session: WebSession | None = db.get(WebSession, signed_in.id, options=[joinedload(WebSession.user)])
    return web_session


def recent_auth(request: Request) -> bool:
    """Whether this browser session confirmed the password within `LIFELINE_REAUTH_MINUTES`."""
    signed_in = signed_in_of(request)
    return signed_in is not None and has_recent_auth(
        signed_in, policy=session_policy(_settings(request)), now=now_utc(request)
    )


def requires(role: Role) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the request must come from a user or token with at least `role`."""

    async def dependency(request: Request, db: DbSession, _csrf: None = Depends(csrf_protect)) -> Principal:
        principal = await resolve_principal(request, db)
        if principal is None:
            if _is_api(request):
                raise HTTPException(
                    401,
                    "Sign in or send `Authorization: Bearer <token>`.",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            raise SignInRequired(_return_path(request), expired=SESSION_COOKIE in request.cookies)
        if not principal.role.allows(role):
            raise HTTPException(
                403,
                f"This needs the {role.value} role; {principal.username} is {principal.role.value}.",
            )
        if _may_hold_for_enrolment(request, principal):
            await run_in_threadpool(_hold_for_enrolment, request, db, principal)
        return principal

    dependency.__lifeline_role__ = role  # type: ignore[attr-defined]
    return dependency


def download_landing(request: Request) -> str:
    """Where a file download resumes after the password confirmation: the page of the thing the file
    belongs to, asked to start the download (`/credentials/7/kubeconfig` -> `/credentials/7?download=
    kubeconfig`). Returning to the file URL itself would leave the person on the confirmation form
    while the file arrives; this way they are back where the action is, and the file still comes."""
    parent, _, artifact = request.url.path.rstrip("/").rpartition("/")
    return safe_next(f"{parent}?{urlencode({'download': artifact})}")


def requires_recent_auth(
    role: Role, *, landing: Callable[[Request], str] | None = None
) -> Callable[..., Awaitable[Principal]]:
    """Dependency: like `requires(role)`, and a browser session must have confirmed its password in the
    last `LIFELINE_REAUTH_MINUTES` (sign-in counts). API tokens pass: the token is the proof.

    `landing` chooses where a plain browser GET comes back to after confirming (downloads: see
    `download_landing`); otherwise it is the page itself, or the page the form was on."""

    signed_in = Depends(requires(role))

    # The default-value form: an Annotated[...] naming the closure's `role` could not be resolved
    # from this module's globals under `from __future__ import annotations`.
    async def dependency(request: Request, principal: Principal = signed_in) -> Principal:
        if principal.via_token:
            return principal
        if not recent_auth(request):
            plain_get = request.method in SAFE_METHODS and not _is_htmx(request)
            raise ReauthRequired(landing(request) if landing and plain_get else _return_path(request))
        return principal

    dependency.__lifeline_role__ = role  # type: ignore[attr-defined]
    dependency.__lifeline_reauth__ = True  # type: ignore[attr-defined]
    return dependency


# The role dependencies every route module uses: declared here once, one name per policy.
Viewer = Annotated[Principal, Depends(requires(Role.viewer))]
Responder = Annotated[Principal, Depends(requires(Role.responder))]
Admin = Annotated[Principal, Depends(requires(Role.admin))]
# Handing out or changing access needs a password typed in the last few minutes (tokens are exempt).
RecentViewer = Annotated[Principal, Depends(requires_recent_auth(Role.viewer))]
RecentResponder = Annotated[Principal, Depends(requires_recent_auth(Role.responder))]
RecentAdmin = Annotated[Principal, Depends(requires_recent_auth(Role.admin))]
# A credential file (kubeconfig, bundle): after the confirmation the person lands on the credential's
# page, which starts the download, never on a confirmation page saved as the file.
RecentDownload = Annotated[Principal, Depends(requires_recent_auth(Role.responder, landing=download_landing))]


def public() -> Callable[..., Awaitable[None]]:
    """Dependency marking a route that needs no sign-in (/login, /healthz). CSRF still applies."""

    async def dependency(request: Request, _csrf: None = Depends(csrf_protect)) -> None:
        if not hasattr(request.state, "principal"):
            request.state.principal = None

    dependency.__lifeline_role__ = "public"  # type: ignore[attr-defined]
    return dependency


def metrics_access() -> Callable[..., Awaitable[None]]:
    """Dependency for /metrics: open unless `LIFELINE_METRICS_TOKEN` is set, then that bearer token."""

    async def dependency(request: Request) -> None:
        expected = _settings(request).metrics_token
        if expected is None:
            return
        supplied = _bearer(request) or ""
        if not hmac.compare_digest(supplied.encode(), expected.get_secret_value().encode()):
            raise HTTPException(
                401,
                "Send `Authorization: Bearer <LIFELINE_METRICS_TOKEN>`.",
                headers={"WWW-Authenticate": "Bearer"},
            )

    dependency.__lifeline_role__ = "metrics"  # type: ignore[attr-defined]
    return dependency


# ---------------------------------------------------------------- wiring


def _redirect(request: Request, location: str) -> Response:
    if _is_htmx(request):
        # htmx follows HX-Redirect with a full navigation before looking at the status.
        return Response(status_code=401, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def _wants_json(request: Request) -> bool:
    return _is_api(request) or "application/json" in request.headers.get("accept", "")


def install(app: FastAPI) -> None:
    """Add the security middleware and the sign-in / re-auth redirects to the app."""
    if not hasattr(app.state, "clock"):
        app.state.clock = utcnow

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "Sign in first."}, status_code=401)
        location = "/login?next=" + quote(exc.next_path, safe="/")
        if exc.expired:
            location += "&expired=1"
        response = _redirect(request, location)
        if exc.expired:
            clear_session_cookie(request, response)
        return response

    @app.exception_handler(ReauthRequired)
    async def reauth_required(request: Request, exc: ReauthRequired) -> Response:
        location = "/reauth?next=" + quote(exc.next_path, safe="/")
        if _wants_json(request):
            return JSONResponse(
                {"detail": "Confirm your password first.", "reauth_url": location}, status_code=401
            )
        return _redirect(request, location)

    @app.exception_handler(TotpEnrolmentRequired)
    async def totp_enrolment_required(request: Request, exc: TotpEnrolmentRequired) -> Response:
        location = "/account/totp?required=1&next=" + quote(exc.next_path, safe="/")
        if _wants_json(request):
            return JSONResponse({"detail": "Set up TOTP first.", "enrolment_url": location}, status_code=403)
        return _redirect(request, location)

    app.add_middleware(SecurityMiddleware)


def own_url(location: str, base_url: str, host: str) -> str:
    """A redirect target that never names a host the request's Host header chose: an absolute URL on
    the request's Host that is not LIFELINE_BASE_URL's becomes its path (relative to this site).
    Every redirect passes here, so `url_for` (built from Host) cannot send anyone to a forged host;
    redirects to another site (the identity provider) are left alone."""
    parts = urlsplit(location)
    if not parts.scheme and not parts.netloc:
        return location
    base = urlsplit(base_url)
    if parts.netloc.lower() != host.lower() or (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
        return location
    path = parts.path if parts.path.startswith("/") else "/" + parts.path
    return path + (f"?{parts.query}" if parts.query else "")


def content_security_policy(settings: Settings | None) -> str:
    """The CSP; with SSO on, `form-action` also names the IdP's origin: sign-out is a form POST that
    redirects to the IdP's end-session endpoint, and browsers apply form-action to that redirect."""
    issuer = getattr(settings, "oidc_issuer", None) if settings is not None else None
    if not issuer:
        return CONTENT_SECURITY_POLICY
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    return CONTENT_SECURITY_POLICY.replace("form-action 'self'", f"form-action 'self' {origin}")


class SecurityMiddleware:
    """Security headers on every response; the CSRF token for every request (pure ASGI: streams pass)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookies = dict(request.cookies)
        token = expected_csrf_token(cookies)
        new_cookie = None
        if token is None:
            token = new_cookie = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_token"] = token
        https = request.url.scheme == "https"
        mode = scope["app"].state.settings.session_cookie_secure if "app" in scope else "auto"
        secure = mode == "always" or (mode == "auto" and https)
        is_static = scope["path"].startswith("/static/")
        base_url = scope["app"].state.settings.base_url if "app" in scope else ""
        host = request.headers.get("host", "")
        csp = content_security_policy(scope["app"].state.settings if "app" in scope else None)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", csp)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if https:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
                if not is_static:
                    # Pages show who holds which credential: never keep them in shared caches.
                    headers.setdefault("Cache-Control", "no-store")
                for name in ("location", "hx-redirect"):
                    if name in headers:
                        headers[name] = own_url(headers[name], base_url, host)
                if new_cookie is not None and not is_static:
                    cookie = f"{CSRF_COOKIE}={new_cookie}; Path=/; HttpOnly; SameSite=Lax"
                    headers.append("Set-Cookie", cookie + ("; Secure" if secure else ""))
            await send(message)

        await self.app(scope, receive, send_wrapper)
