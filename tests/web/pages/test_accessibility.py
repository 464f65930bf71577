"""axe-core (npm, tests/js, injected by Playwright, never served by Lifeline) on every page, signed
in as each role, in light and dark, at desktop and phone sizes: no serious or critical violation of
WCAG 2.2 A/AA (issue 19). Also: the skip link is the first Tab stop and lands on the content."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, TEST_PASSWORD, LiveServer, create_account
from tests.factories import add_credential, add_poll_run, add_samples, make_cluster, make_outpost

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "js" / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
ROLES = ("viewer", "responder", "admin")
FIXED_PAGES = (
    "/",
    "/clusters",
    "/credentials",
    "/access",
    "/fleet",
    "/notifications",
    "/audit",
    "/users",
    "/account",
    "/account/totp",
    "/sign-in-policy",
    "/credential-policy",
)


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        message = f"{AXE} is missing: run `make test-deps` (npm ci in tests/js)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return AXE.read_text()


def _seed(live_server: LiveServer) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    with live_server.session_factory() as session:
        up = make_outpost(session, name="Plant 7, rack A", state="CONNECTED", last_sample_at=now)
        add_samples(session, up, now - dt.timedelta(hours=6), [1.0] * 360)
        down = make_outpost(session, name="Plant 9, rack B", state="DISCONNECTED", last_sample_at=now)
        add_samples(session, down, now - dt.timedelta(hours=6), [1.0] * 200 + [0.0] * 160)
        # On the disconnected Outpost: the banner, the row's Get in link and the access panel show.
        cluster = make_cluster(session, "edge-1")
        cluster.outpost_pk = down.id
        # A credential, so the credentials table (a list of cards on a phone) is checked too.
        add_credential(session, cluster, "breakglass", 30)
        add_poll_run(session, finished_at=now)
        for role in ROLES:
            create_account(session, f"axe-{role}", role)
        session.commit()
        return {"outpost": up.outpost_id, "down": down.outpost_id, "cluster": "edge-1"}


def _violations(tab: Any, axe_source: str) -> list[str]:
    # Evaluated through the DevTools protocol: the page's CSP (script-src 'self') stays as served.
    tab.evaluate(axe_source + "\n;undefined")
    result = tab.evaluate(
        """async () => {
          const r = await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}, resultTypes: ['violations']});
          return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
            .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)
            ;
        }"""
    )
    return list(result)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_axe_violation_on_any_page(
    browser: Any, live_server: LiveServer, axe_source: str, scheme: str, size: str
) -> None:
    ids = _seed(live_server)
    width, height = SIZES[size]
    failures: list[str] = []
    for role in (None, *ROLES):
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}, color_scheme=scheme
        )
        tab = context.new_page()
        tab.set_default_timeout(10_000)
        try:
            tab.goto("/login")
            pages = ["/login", "/no-such-page"]
            if role is not None:
                tab.fill("input[name=username]", f"axe-{role}")
                tab.fill("input[name=password]", TEST_PASSWORD)
                tab.click("button[type=submit]")
                tab.wait_for_url(lambda url: "/login" not in url)
                pages = [
                    *FIXED_PAGES,
                    f"/outposts/{ids['outpost']}",
                    f"/outposts/{ids['outpost']}?range=7d",
                    f"/clusters/{ids['cluster']}",
                    f"/outposts/{ids['down']}",
                    f"/access?outpost={ids['down']}",
                    "/outposts/op-bad",
                    "/no-such-page",
                ]
            for path in pages:
                response = tab.goto(path)
                if response is not None and response.status == 403:
                    continue  # not this role's page (the role tests check the navigation hides it)
                for line in _violations(tab, axe_source):
                    failures.append(f"{role or 'signed out'} {scheme} {size} {path}: {line}")
        finally:
            context.close()
    assert not failures, "\n".join(failures)


def test_skip_link_is_the_first_tab_stop(page: Any, live_server: LiveServer) -> None:
    _seed(live_server)
    page.goto("/")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => [document.activeElement.className, document.activeElement.textContent]")
    assert focused == ["skip-link", "Skip to the content"]
    page.keyboard.press("Enter")
    assert page.evaluate("() => location.hash") == "#main"
    # The strip's details open from the keyboard too (no information in tooltips alone).
    page.focus(".strip-details summary")
    page.keyboard.press("Enter")
    assert page.locator(".strip-details[open] li").first.is_visible()
