"""Single sign-on with an OpenID Connect provider (issue 18): authorization code + PKCE through Authlib.

Authlib's `OAuth2Client` builds the authorization URL (S256 code challenge) and redeems the code;
the ID token is verified with joserfc (Authlib's JOSE library) and Authlib's `CodeIDToken` rules:
signature against the issuer's JWKS, `iss`, `aud`, `exp`/`iat`, `nonce`, `azp`, `at_hash`.

State, nonce and PKCE verifier live in Lifeline's own table (`sso_logins`), not in a signed cookie:
a state is used once and deleted, so a replayed callback finds nothing; the browser must also
carry the state in a cookie, so a callback link cannot be planted in someone else's browser.

Discovery and JWKS are cached for `LIFELINE_OIDC_CACHE_MINUTES`; when a refresh fails the last good
copy is kept, so a short IdP blip does not fail sign-ins in flight (their token is still verified
with the cached keys), and existing Lifeline sessions never depend on the IdP at all. A new sign-in
first probes the IdP, so nobody is sent to an IdP that does not answer.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.integrations.vault import Vault, VaultError
from app.models.account import SsoLogin, User
from app.models.base import utcnow
from app.services.accounts.sessions import hash_secret
from app.services.audit import Actor, ClientInfo, Outcome, record_audit
from app.services.errors import Conflict, Forbidden, Unavailable
from app.settings import Settings

LOGIN_LIFETIME = dt.timedelta(minutes=10)
# Clock skew allowed on exp/iat between Lifeline and the IdP.
LEEWAY_SECONDS = 60
# After a failed fetch, wait this long before asking the IdP again (the page stays fast).
FAILURE_HOLD_SECONDS = 15.0
PROBE_TIMEOUT_SECONDS = 2.0
ROLE_ORDER = ("admin", "responder", "viewer")

IDP_UNREACHABLE = "Your identity provider did not answer; break-glass accounts can still sign in."


class IdpUnreachable(Unavailable):
    """The IdP did not answer (discovery, JWKS or token endpoint)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(IDP_UNREACHABLE)
        self.detail = detail


class SsoRefused(Forbidden):
    """The callback or the ID token did not pass a check; the message says which, for the person."""


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    scopes: str
    role_claim: str
    groups: Mapping[str, tuple[str, ...]]
    timeout: float
    cache_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """The SSO configuration, or None when SSO is off (no issuer set)."""
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_client_id:
            raise Conflict("LIFELINE_OIDC_ISSUER is set but LIFELINE_OIDC_CLIENT_ID is empty.")
        secret = ""
        if settings.oidc_client_secret is not None:
            secret = settings.oidc_client_secret.get_secret_value()
        elif settings.oidc_client_secret_file is not None:
            try:
                secret = settings.oidc_client_secret_file.read_text().strip()
            except OSError as exc:
                raise Conflict(
                    f"LIFELINE_OIDC_CLIENT_SECRET_FILE: cannot read {settings.oidc_client_secret_file}: "
                    f"{exc.strerror}"
                ) from None
        return cls(
            issuer=settings.oidc_issuer.rstrip("/"),
            client_id=settings.oidc_client_id,
            client_secret=secret,
            redirect_uri=settings.base_url.rstrip("/") + "/sso/callback",
            scopes=settings.oidc_scopes,
            role_claim=settings.oidc_role_claim,
            groups={
                "admin": tuple(settings.oidc_admin_groups),
                "responder": tuple(settings.oidc_responder_groups),
                "viewer": tuple(settings.oidc_viewer_groups),
            },
            timeout=settings.oidc_timeout_seconds,
            cache_seconds=settings.oidc_cache_minutes * 60.0,
        )


def role_for(groups: Any, mapping: Mapping[str, tuple[str, ...]]) -> str | None:
    """The highest role any of the person's groups maps to, or None."""
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list | tuple):
        return None
    names = {str(g) for g in groups}
    for role in ROLE_ORDER:
        if names.intersection(mapping.get(role, ())):
            return role
    return None


@dataclass
class _Cached:
    value: dict[str, Any] | None = None
    fetched_at: float = 0.0
    failed_at: float = 0.0


class OidcProvider:
    """The IdP as Lifeline sees it: cached discovery and JWKS, the authorize URL, the code exchange."""

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._metadata = _Cached()
        self._jwks = _Cached()
        self._lock = threading.Lock()
        self._probe_failed_at = 0.0

    # ------------------------------------------------------------ discovery and keys

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = httpx2.get(url, timeout=self.config.timeout)
            response.raise_for_status()
            data = response.json()
        except (httpx2.HTTPError, ValueError) as exc:
            raise IdpUnreachable(f"{url}: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise IdpUnreachable(f"{url}: not a JSON object")
        return data

    def _cached(self, cache: _Cached, url_of: Any, *, force: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            fresh = cache.value is not None and now - cache.fetched_at < self.config.cache_seconds
            if fresh and not force:
                return cache.value  # type: ignore[return-value]
            if cache.failed_at and now - cache.failed_at < FAILURE_HOLD_SECONDS:
                if cache.value is not None:
                    return cache.value
                raise IdpUnreachable("recent failure")
        try:
            value = self._get_json(url_of())
        except IdpUnreachable:
            with self._lock:
                cache.failed_at = time.monotonic()
                if cache.value is not None and not force:
                    return cache.value  # the last good copy outlives a short blip
            raise
        with self._lock:
            cache.value, cache.fetched_at, cache.failed_at = value, time.monotonic(), 0.0
        return value

    def metadata(self) -> dict[str, Any]:
        data = self._cached(self._metadata, lambda: self.config.issuer + "/.well-known/openid-configuration")
        if str(data.get("issuer", "")).rstrip("/") != self.config.issuer:
            raise Conflict(
                f"The IdP's discovery document names issuer {data.get('issuer')!r}, "
                f"but LIFELINE_OIDC_ISSUER is {self.config.issuer!r}."
            )
        return data

    def jwks(self, *, force: bool = False) -> dict[str, Any]:
        return self._cached(self._jwks, lambda: self.metadata()["jwks_uri"], force=force)

    def reachable(self) -> bool:
        """Whether the IdP answers now: a live, short probe of discovery (a failure is remembered for
        a few seconds, so a page never waits on a dead IdP twice in a row). The sign-in page and
        /sso/start ask it: sending someone to an IdP that does not answer helps nobody."""
        now = time.monotonic()
        with self._lock:
            if self._probe_failed_at and now - self._probe_failed_at < FAILURE_HOLD_SECONDS:
                return False
        try:
            url = self.config.issuer + "/.well-known/openid-configuration"
            response = httpx2.get(url, timeout=min(self.config.timeout, PROBE_TIMEOUT_SECONDS))
            response.raise_for_status()
            data = response.json()
        except (httpx2.HTTPError, ValueError):
            with self._lock:
                self._probe_failed_at = time.monotonic()
            return False
        if isinstance(data, dict):
            with self._lock:
                self._metadata.value, self._metadata.fetched_at = data, time.monotonic()
        return True

    def end_session_url(
        self, post_logout_redirect_uri: str, *, id_token_hint: str | None = None
    ) -> str | None:
        """RP-initiated logout: the IdP's `end_session_endpoint` with `id_token_hint` (when Lifeline
        kept the ID token) and `post_logout_redirect_uri`; None when the IdP advertises none."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except (IdpUnreachable, Conflict):
            return None
        if not endpoint:
            return None
        params: dict[str, str] = {
            "client_id": self.config.client_id,
            "post_logout_redirect_uri": post_logout_redirect_uri,
        }
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        return f"{endpoint}?{httpx2.QueryParams(params)}"

    def _client(self) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            scope=self.config.scopes,
            redirect_uri=self.config.redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 (a method name)
            timeout=self.config.timeout,
        )

    # ------------------------------------------------------------ the flow

    def begin(
        self,
        session: Session,
        *,
        next_path: str,
        purpose: str = "sign_in",
        user_id: int | None = None,
        max_age: int | None = None,
        now: dt.datetime | None = None,
    ) -> tuple[str, str]:
        """Record a sign-in in flight; returns (authorization URL, raw state for the browser cookie)."""
        now = now or utcnow()
        if not self.reachable():
            raise IdpUnreachable("discovery probe failed")
        metadata = self.metadata()
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = generate_token(64)
        extra: dict[str, Any] = {"nonce": nonce}
        if max_age is not None:
            extra |= {"max_age": max_age, "prompt": "login"}
        with self._client() as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"], state=state, code_verifier=verifier, **extra
            )
        session.execute(delete(SsoLogin).where(SsoLogin.expires_at <= now))
        session.add(
            SsoLogin(
                state_hash=hash_secret(state),
                nonce=nonce,
                code_verifier=verifier,
                next_path=next_path[:2000],
                purpose=purpose,
                user_id=user_id,
                created_at=now,
                expires_at=now + LOGIN_LIFETIME,
            )
        )
        session.flush()
        return str(url), state

    def take_login(
        self, session: Session, *, state: str, cookie_state: str | None, now: dt.datetime
    ) -> SsoLogin:
        """The sign-in in flight for this state, removed so it can never be used again."""
        if not state or len(state) > 128:
            raise SsoRefused("The sign-in reply carries no state; start the sign-in again.")
        login = session.scalar(select(SsoLogin).where(SsoLogin.state_hash == hash_secret(state)))
        if login is None:
            raise SsoRefused(
                "This sign-in reply was already used or is unknown (a replayed or forged state). "
                "Start the sign-in again."
            )
        session.delete(login)
        session.flush()
        if login.expires_at <= now:
            raise SsoRefused("This sign-in took longer than 10 minutes; start it again.")
        if not cookie_state or not secrets.compare_digest(cookie_state, state):
            raise SsoRefused(
                "This sign-in reply was not started in this browser (state does not match); start it again."
            )
        return login

    def redeem(self, *, code: str, login: SsoLogin, now: dt.datetime) -> dict[str, Any]:
        """Exchange the code (with the PKCE verifier) and return the verified ID token claims."""
        return self.redeem_tokens(code=code, login=login, now=now)[0]

    def redeem_tokens(self, *, code: str, login: SsoLogin, now: dt.datetime) -> tuple[dict[str, Any], str]:
        """Like `redeem`, also returning the raw ID token (kept sealed for RP-initiated logout)."""
        metadata = self.metadata()
        try:
            with self._client() as client:
                token = client.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=login.code_verifier,
                )
        except httpx2.TransportError as exc:
            raise IdpUnreachable(f"token endpoint: {type(exc).__name__}") from None
        except Exception as exc:  # authlib's OAuthError and HTTP errors: the IdP refused the code
            reason = getattr(exc, "error", type(exc).__name__)
            raise SsoRefused(
                f"The identity provider refused the sign-in code ({reason}); start the sign-in again."
            ) from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SsoRefused("The identity provider sent no ID token.")
        claims = self.verify_id_token(
            id_token, nonce=login.nonce, access_token=token.get("access_token"), now=now
        )
        return claims, id_token

    def verify_id_token(
        self, id_token: str, *, nonce: str, access_token: str | None = None, now: dt.datetime
    ) -> dict[str, Any]:
        """Signature (JWKS), issuer, audience, expiry, nonce: any failure is an SsoRefused naming it."""
        metadata = self.metadata()
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=[a for a in algorithms if a != "none"], strict_check_header=False)
        try:
            try:
                decoded = jwt.decode(id_token, _key_set(self.jwks()), registry=registry)
            except InvalidKeyIdError:
                # The IdP rotated its keys: refetch once.
                decoded = jwt.decode(id_token, _key_set(self.jwks(force=True)), registry=registry)
        except JoseError as exc:
            raise SsoRefused(
                f"The ID token's signature does not verify ({exc.error}); it was altered or not "
                "signed by your identity provider."
            ) from None
        except ValueError:
            raise SsoRefused("The ID token is malformed.") from None
        params: dict[str, Any] = {"nonce": nonce, "client_id": self.config.client_id}
        if access_token:
            params["access_token"] = access_token
        options = {
            "iss": {"essential": True, "value": self.config.issuer},
            "aud": {"essential": True, "value": self.config.client_id},
        }
        claims = CodeIDToken(decoded.claims, decoded.header, options, params)
        try:
            claims.validate(now=int(now.timestamp()), leeway=LEEWAY_SECONDS)
        except JoseError as exc:
            raise SsoRefused(_claim_message(exc)) from None
        return dict(claims)


def _key_set(jwks: dict[str, Any]) -> KeySet:
    return KeySet.import_key_set(jwks)  # type: ignore[arg-type]


def _claim_message(exc: JoseError) -> str:
    text = str(exc.description or exc.error)
    claim = getattr(exc, "claim", None) or ""
    if exc.error == "expired_token" or claim == "exp":
        return "The ID token has expired; start the sign-in again (and check this server's clock)."
    if claim == "aud":
        return "The ID token was issued for another application (wrong audience)."
    if claim == "iss":
        return "The ID token comes from another issuer than LIFELINE_OIDC_ISSUER."
    if claim == "nonce":
        return "The ID token's nonce does not match this sign-in (a replayed token)."
    return f"The ID token was refused: {text}."


# ---------------------------------------------------------------- accounts


def _username_for(session: Session, claims: Mapping[str, Any]) -> str:
    base = str(claims.get("preferred_username") or claims.get("email") or claims["sub"]).strip().lower()
    base = "".join(c if c.isalnum() or c in "._-@" else "-" for c in base)[:56] or "sso-user"
    name, n = base, 1
    while session.scalar(select(User.id).where(User.username_key == name)) is not None:
        n += 1
        name = f"{base}-{n}"
    return name


def sign_in_with_claims(
    session: Session,
    config: OidcConfig,
    claims: Mapping[str, Any],
    *,
    client: ClientInfo,
    now: dt.datetime,
) -> User:
    """The account for verified claims: created on first sign-in, role re-applied every time."""
    subject = f"{config.issuer} {claims['sub']}"
    role = role_for(claims.get(config.role_claim), config.groups)
    user = session.scalar(select(User).where(User.sso_subject == subject))
    label = str(claims.get("preferred_username") or claims.get("email") or claims["sub"])
    if user is not None and user.disabled:
        _deny(session, label, "disabled", client, now)
        raise SsoRefused(f"The account {user.username!r} is disabled in Lifeline; ask an admin.")
    if role is None:
        _deny(session, label, "no mapped group", client, now)
        raise SsoRefused(
            f"Your identity provider account is in no group Lifeline maps to a role "
            f"(claim {config.role_claim!r}); ask an admin to add you to one."
        )
    if user is None:
        username = _username_for(session, claims)
        user = User(
            username=username,
            username_key=username,
            password_hash=None,
            role=role,
            sso_subject=subject,
            created_at=now,
            password_changed_at=now,
        )
        session.add(user)
        session.flush()
        record_audit(
            session,
            actor=Actor(name=username, user_id=user.id, role=role),
            action="user.create",
            target=f"user:{username}",
            client=client,
            details={"role": role, "source": "sso", "issuer": config.issuer},
            now=now,
        )
    elif user.role != role:
        old = user.role
        user.role = role
        record_audit(
            session,
            actor=Actor(name=user.username, user_id=user.id, role=role),
            action="user.role_change",
            target=f"user:{user.username}",
            client=client,
            details={"from": old, "to": role, "source": "sso groups"},
            now=now,
        )
    user.last_sign_in_at = now
    record_audit(
        session,
        actor=Actor(name=user.username, user_id=user.id, role=user.role),
        action="auth.sign_in",
        target=f"user:{user.username}",
        client=client,
        details={"method": "sso"},
        now=now,
    )
    session.flush()
    return user


def check_reauth_claims(
    user: User,
    config: OidcConfig,
    claims: Mapping[str, Any],
    *,
    asked_at: dt.datetime,
    now: dt.datetime,
) -> None:
    """A fresh IdP sign-in for re-authentication: the same person, who typed their credentials at the
    IdP after Lifeline asked (`auth_time` no earlier than the re-auth request, minus clock leeway).
    An IdP that ignores `max_age=0`/`prompt=login` and answers from its own session is refused."""
    if user.sso_subject != f"{config.issuer} {claims.get('sub')}":
        raise SsoRefused("You signed in at the identity provider as someone else; sign in as yourself.")
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int | float) or isinstance(auth_time, bool):
        raise SsoRefused(
            "The identity provider did not say when you signed in (no auth_time), so this is no fresh "
            "sign-in; try again, or use your authenticator app's code."
        )
    if auth_time < asked_at.timestamp() - LEEWAY_SECONDS or auth_time > now.timestamp() + LEEWAY_SECONDS:
        raise SsoRefused(
            "The identity provider did not ask for your password again (its sign-in is older than this "
            "confirmation); try again, or use your authenticator app's code."
        )


def seal_id_token(vault: Vault | None, id_token: str, *, session_token_hash: str) -> str | None:
    """The ID token sealed for the session row (None without a data key: logout then sends client_id only)."""
    if vault is None:
        return None
    return vault.seal(id_token.encode(), context=f"id_token:{session_token_hash}")


def open_id_token(vault: Vault | None, sealed: str | None, *, session_token_hash: str) -> str | None:
    if vault is None or not sealed:
        return None
    try:
        return vault.open(sealed, context=f"id_token:{session_token_hash}").decode()
    except VaultError:
        return None


def _deny(session: Session, label: str, reason: str, client: ClientInfo, now: dt.datetime) -> None:
    record_audit(
        session,
        actor=Actor(name=label[:64]),
        action="auth.sign_in",
        target=f"user:{label[:64]}",
        outcome=Outcome.denied,
        client=client,
        details={"method": "sso", "reason": reason},
        now=now,
    )
