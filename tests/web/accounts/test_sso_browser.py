"""In chromium, against the real oidc-provider: the whole SSO sign-in and sign-out (issue 18)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app.integrations.vault import generate_data_key
from app.main import create_app
from app.models.account import User
from tests.conftest import DatabaseServer, LiveServer, _serve_in_thread, make_settings
from tests.support.oidc_provider import OidcServer

pytestmark = pytest.mark.browser


@pytest.fixture
def sso_live_server(
    database_server: DatabaseServer, oidc_server: OidcServer, browser_sso_port: int
) -> Iterator[LiveServer]:
    """The dashboard on the port the provider knows as a redirect URI, SSO on."""
    base = f"http://127.0.0.1:{browser_sso_port}"
    settings = make_settings(
        database_server.create_migrated("sso-live"),
        **oidc_server.settings(),
        base_url=base,
        data_key=generate_data_key(),
    )
    application = create_app(settings)
    server, thread = _serve_in_thread(application, browser_sso_port)
    try:
        yield LiveServer(base, application, settings, application.state.session_factory)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _loopback_only(route: Any) -> None:
    if urlsplit(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort()


def test_whole_sso_sign_in_and_sign_out_in_a_browser(
    browser: Any, sso_live_server: LiveServer, oidc_server: OidcServer
) -> None:
    context = browser.new_context(base_url=sso_live_server.url)
    # Loopback only: the provider's development pages link web fonts from the internet; refuse them.
    context.route("**/*", _loopback_only)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    errors: list[str] = []

    def on_console(msg: Any) -> None:
        if msg.type == "error" and str(msg.location.get("url", "")).startswith(sso_live_server.url):
            errors.append(msg.text)

    tab.on("console", on_console)
    try:
        tab.goto("/")
        assert "/login?next=/" in tab.url
        tab.click("#sso-sign-in")
        # The provider's own pages: log in, then consent if it asks.
        tab.wait_for_url(f"{oidc_server.issuer}/interaction/**")
        tab.fill("input[name=login]", "bob")
        tab.fill("input[name=password]", "anything")
        tab.click("button[type=submit]")
        tab.wait_for_load_state()
        if tab.url.startswith(oidc_server.issuer) and tab.locator("button[type=submit]").count():
            tab.click("button[type=submit]")  # consent
        tab.wait_for_url(f"{sso_live_server.url}/")
        assert tab.locator(".userbox-name").inner_text() == "bob"
        assert tab.locator(".userbox .role-badge").inner_text().lower() == "responder"
        assert "Error" not in tab.title()
        with sso_live_server.session_factory() as db:
            user = db.scalars(select(User).where(User.username_key == "bob")).one()
            assert user.is_sso and user.role == "responder" and user.password_hash is None

        # Sign out: Lifeline's session ends, the provider offers its sign-out, then back to sign-in.
        tab.click("button.signout")
        tab.wait_for_url(f"{oidc_server.issuer}/session/end**")
        tab.click("button[name=logout][value=yes]")
        tab.wait_for_url(f"{sso_live_server.url}/login?signed_out=1")
        assert "You are signed out." in tab.content()
        tab.goto("/")
        assert "/login?next=/" in tab.url
        # No CSP violation or script error on Lifeline's pages (the 401/404 of a sign-in redirect aside).
        assert [e for e in errors if "404" not in e and "401" not in e] == [], errors
    finally:
        context.close()
