"""In chromium: sign in, see the overview, sign out, be sent back to sign-in; CSP-clean pages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import TEST_PASSWORD
from tests.web.test_role_matrix import flat_routes

pytestmark = pytest.mark.browser


def _console_errors(tab: Any) -> list[str]:
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def _home(live_server: Any) -> str:
    """The overview at / (connectivity, issue 3); the fleet page until the overview route exists."""
    paths = {route.path for route in flat_routes(live_server.app)}
    for candidate in ("/", "/fleet"):
        if candidate in paths:
            return candidate
    return "/account"


def test_sign_in_overview_sign_out(anon_page: Any, live_server: Any) -> None:
    tab = anon_page
    errors = _console_errors(tab)
    home = _home(live_server)
    tab.goto(home)
    assert f"/login?next={home}" in tab.url
    tab.fill("input[name=username]", "admin")
    tab.fill("input[name=password]", "wrong password entirely")
    tab.click("button[type=submit]")
    assert tab.inner_text("#login-error") == "Incorrect username or password."
    tab.fill("input[name=password]", TEST_PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"**{home}")
    assert tab.title() != "" and "Error" not in tab.title()
    assert tab.locator(".userbox").inner_text().startswith("admin")
    tab.goto("/users")
    assert "admin" in tab.inner_text("#users-table")
    tab.click("button.signout")
    tab.wait_for_url("**/login?signed_out=1")
    assert "You are signed out." in tab.content()
    tab.goto(home)
    assert f"/login?next={home}" in tab.url
    # No CSP violation or script error on any page visited (htmx included).
    assert [e for e in errors if "404" not in e and "401" not in e] == []


def test_htmx_request_after_session_end_goes_to_sign_in(page: Any) -> None:
    """An HTMX request whose session ended navigates to /login (HX-Redirect) instead of swapping."""
    page.goto("/audit")
    page.context.clear_cookies()
    page.fill("input[name=actor]", "admin")
    page.click(".audit-filters button[type=submit]")
    page.wait_for_url("**/login?next=**")


def test_token_is_shown_once_in_the_browser(page: Any) -> None:
    page.goto("/account")
    page.fill("#tokens input[name=name]", "laptop")
    page.click("#tokens button[type=submit]")
    token = page.inner_text("#new-token")
    assert token.startswith("llt_")
    page.goto("/account")
    assert token not in page.content()
    assert "laptop" in page.content()
