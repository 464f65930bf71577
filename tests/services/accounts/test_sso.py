"""ID token verification with real tokens from a real provider: tampered, wrong audience, wrong nonce."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from app.services.accounts.sso import OidcConfig, OidcProvider, SsoRefused, role_for
from tests.conftest import make_settings
from tests.fixtures.sso import TEST_ORIGIN
from tests.support.oidc_provider import OidcServer, idp_login


def _provider(server: OidcServer, database_url: str, client_id: str = "lifeline") -> OidcProvider:
    settings = make_settings(database_url, base_url=TEST_ORIGIN, **server.settings(client_id))
    config = OidcConfig.from_settings(settings)
    assert config is not None
    return OidcProvider(config)


def _raw_tokens(provider: OidcProvider, session: Session, user: str = "alice") -> tuple[dict[str, Any], str]:
    """A genuine token response for `provider`'s client, and the nonce it was asked with."""
    now = dt.datetime.now(dt.UTC)
    url, state = provider.begin(session, next_path="/", now=now)
    with httpx.Client(follow_redirects=False, timeout=10) as idp:
        back = httpx.URL(idp_login(idp, url, user, stop_at=TEST_ORIGIN))
    login = provider.take_login(session, state=back.params["state"], cookie_state=state, now=now)
    with provider._client() as client:
        token = client.fetch_token(
            provider.metadata()["token_endpoint"], code=back.params["code"], code_verifier=login.code_verifier
        )
    return dict(token), login.nonce


def _tamper(id_token: str) -> str:
    header, payload, signature = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = ["lifeline-admins", "made-up"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_genuine_token_verifies(oidc_server: OidcServer, database_url: str, session: Session) -> None:
    provider = _provider(oidc_server, database_url)
    token, nonce = _raw_tokens(provider, session)
    claims = provider.verify_id_token(
        token["id_token"], nonce=nonce, access_token=token["access_token"], now=dt.datetime.now(dt.UTC)
    )
    assert claims["sub"] == "alice" and claims["aud"] == "lifeline"


def test_tampered_token_is_refused(oidc_server: OidcServer, database_url: str, session: Session) -> None:
    provider = _provider(oidc_server, database_url)
    token, nonce = _raw_tokens(provider, session)
    with pytest.raises(SsoRefused, match="signature does not verify"):
        provider.verify_id_token(_tamper(token["id_token"]), nonce=nonce, now=dt.datetime.now(dt.UTC))


def test_token_for_another_application_is_refused(
    oidc_server: OidcServer, database_url: str, session: Session
) -> None:
    other = _provider(oidc_server, database_url, client_id="other-app")
    token, nonce = _raw_tokens(other, session)
    lifeline = _provider(oidc_server, database_url)
    with pytest.raises(SsoRefused, match="wrong audience"):
        lifeline.verify_id_token(token["id_token"], nonce=nonce, now=dt.datetime.now(dt.UTC))


def test_replayed_nonce_is_refused(oidc_server: OidcServer, database_url: str, session: Session) -> None:
    provider = _provider(oidc_server, database_url)
    token, _nonce = _raw_tokens(provider, session)
    with pytest.raises(SsoRefused, match="nonce does not match"):
        provider.verify_id_token(token["id_token"], nonce="another-sign-in", now=dt.datetime.now(dt.UTC))


def test_expired_token_is_refused(oidc_server: OidcServer, database_url: str, session: Session) -> None:
    provider = _provider(oidc_server, database_url)
    token, nonce = _raw_tokens(provider, session)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    with pytest.raises(SsoRefused, match="expired"):
        provider.verify_id_token(token["id_token"], nonce=nonce, now=later)


def test_role_mapping_takes_the_highest_role() -> None:
    mapping = {"admin": ("a",), "responder": ("r",), "viewer": ("v",)}
    assert role_for(["v", "r"], mapping) == "responder"
    assert role_for(["a", "v"], mapping) == "admin"
    assert role_for("v", mapping) == "viewer"
    assert role_for(["x"], mapping) is None
    assert role_for(None, mapping) is None


def test_secret_is_never_in_the_config_repr(oidc_server: OidcServer, database_url: str) -> None:
    provider = _provider(oidc_server, database_url)
    assert "lifeline-secret" not in repr(provider.config)
