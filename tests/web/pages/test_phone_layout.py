"""The phone layout (issue 19): at 390x844 the overview, clusters, credentials and access pages show
each row as a card, the first one on the first screen, with no sideways scroll of the page; the
banner, navigation and filters fold away. At 1440x900 the same tables are still tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from app.models.fleet import Outpost
from tests.conftest import TEST_PASSWORD, LiveServer, create_account
from tests.factories import add_credential, add_poll_run, add_samples, make_cluster, make_outpost

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
# Each page and the selector of its table: each row becomes a card on a phone.
PAGES = {
    "/": "table.overview-table",
    "/clusters": "table.readiness-clusters",
    "/credentials": "table.cred-table",
    "/access": "table.access-table",
}
USER = "phone-admin"


def _seed(live_server: LiveServer) -> None:
    """Two Outposts, one cut off (so the banner and the row's way in show), a cluster, a credential."""
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    with live_server.session_factory() as session:
        down = make_outpost(
            session,
            name="Plant 9, rack B",
            state="DISCONNECTED",
            state_since=now - dt.timedelta(minutes=40),
            last_sample_at=now,
        )
        add_samples(session, down, now - dt.timedelta(hours=6), [1.0] * 200 + [0.0] * 160)
        up = make_outpost(session, name="Plant 7, rack A", state="CONNECTED", last_sample_at=now)
        add_samples(session, up, now - dt.timedelta(hours=6), [1.0] * 360)
        cluster = make_cluster(session, "edge-1")
        cluster.outpost_pk = down.id
        add_credential(session, cluster, "breakglass", 30)
        add_poll_run(session, finished_at=now)
        create_account(session, USER, "admin")
        session.commit()


def _signed_in(browser: Any, live_server: LiveServer, viewport: dict[str, int]) -> Iterator[Any]:
    _seed(live_server)
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.goto("/login?next=/account")
    tab.fill("input[name=username]", USER)
    tab.fill("input[name=password]", TEST_PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url("**/account")
    yield tab
    context.close()


@pytest.fixture
def phone(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    yield from _signed_in(browser, live_server, PHONE)


@pytest.fixture
def desktop(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    yield from _signed_in(browser, live_server, DESKTOP)


def _box(tab: Any, selector: str) -> dict[str, float]:
    box = tab.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not rendered"
    return dict(box)


def _display(tab: Any, selector: str) -> str:
    return str(tab.locator(selector).first.evaluate("element => getComputedStyle(element).display"))


@pytest.mark.parametrize("path", list(PAGES))
def test_phone_shows_the_first_card_on_the_first_screen(phone: Any, path: str) -> None:
    phone.goto(path)
    phone.wait_for_load_state("networkidle")
    table = PAGES[path]
    first = phone.locator(f"{table} tbody tr").first
    assert first.is_visible()
    box = _box(phone, f"{table} tbody tr")
    assert box["y"] < PHONE["height"], f"{path}: the first card starts at y={box['y']}"
    # A card, not a table row: as wide as the content column, and the column headers are hidden.
    assert _display(phone, f"{table} tbody tr") != "table-row"
    assert not phone.locator(f"{table} thead").is_visible()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{path}: the page scrolls sideways ({width} px wide)"
    # Every cell of the card fits the screen's width (none hidden off to the right).
    for cell in phone.locator(f"{table} tbody tr").first.locator("td").all():
        if cell.is_visible():
            cell_box = cell.bounding_box()
            assert cell_box is not None and cell_box["x"] + cell_box["width"] <= PHONE["width"], (
                f"{path}: {cell.get_attribute('data-label')} ends at {cell_box}"
            )


def test_phone_outpost_card_shows_state_since_and_strip_on_the_first_screen(phone: Any) -> None:
    phone.goto("/")
    card = "table.overview-table tbody tr:first-child"
    assert phone.locator(card).get_attribute("data-state") == "DISCONNECTED"
    for part in (".badge.disconnected", "td[data-label='Since']", ".strip"):
        box = _box(phone, f"{card} {part}")
        assert phone.locator(f"{card} {part}").first.is_visible(), part
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"{part} at {box}"
        assert box["y"] + box["height"] <= PHONE["height"], f"{part} below the first screen: {box}"
    assert "ago" in phone.locator(f"{card} td[data-label='Since']").inner_text()
    # The strip keeps its time axis in the card (the table's header, which has it, is hidden).
    axis = phone.locator(f"{card} .strip-axis.card-axis")
    assert axis.is_visible() and len(axis.locator("span").all()) >= 3
    for tick in axis.locator("span").all():
        tick_box = tick.bounding_box()
        assert (
            tick_box is not None
            and tick_box["x"] >= 0
            and tick_box["x"] + tick_box["width"] <= PHONE["width"]
        )
    # The card's first line is the Outpost, well up the screen: the header, banner and filters fold.
    assert _box(phone, card)["y"] < 600


def test_phone_folds_the_navigation_and_the_filters(phone: Any) -> None:
    phone.goto("/")
    nav = _box(phone, ".mainnav")
    assert nav["height"] < 50, f"the navigation takes {nav['height']} px"
    # The navigation scrolls sideways inside itself; the page does not.
    assert phone.evaluate("() => document.querySelector('.mainnav').scrollWidth") > nav["width"]
    assert phone.locator(".mainnav a[href='/users']").count() == 1
    # The current page's link is scrolled into the row, even when it is far along it.
    phone.goto("/users")
    current = _box(phone, ".mainnav a[aria-current=page]")
    assert current["x"] >= 0 and current["x"] + current["width"] <= PHONE["width"], current
    phone.goto("/")
    state_filter = phone.locator(".overview-filters select[name=state]")
    assert not state_filter.is_visible()
    phone.locator(".filters-fold > summary").click()
    assert state_filter.is_visible()
    state_filter.select_option("DISCONNECTED")
    phone.wait_for_url("**state=DISCONNECTED**")
    assert phone.locator("table.overview-table tbody tr").count() == 1


@pytest.mark.parametrize("path", list(PAGES))
def test_desktop_keeps_the_tables(desktop: Any, path: str) -> None:
    desktop.goto(path)
    table = PAGES[path]
    assert desktop.locator(f"{table} thead").is_visible()
    assert _display(desktop, f"{table} tbody tr") == "table-row"
    headers = desktop.locator(f"{table} thead th")
    assert headers.count() > 3 and all(h.is_visible() for h in headers.all())
    # Filters stay open on the desktop, without a disclosure to click.
    for summary in desktop.locator(".filters-fold > summary").all():
        assert not summary.is_visible()
    for dropdown in desktop.locator(".filters-fold select").all():
        assert dropdown.is_visible()


def test_phone_outpost_and_cluster_pages_do_not_scroll_sideways(phone: Any, live_server: LiveServer) -> None:
    """Pages that keep their tables (uptime, incidents, findings) scroll them inside, not the page."""
    with live_server.session_factory() as session:
        outpost = session.scalars(select(Outpost).where(Outpost.name == "Plant 9, rack B")).one()
        paths = [f"/outposts/{outpost.outpost_id}", "/clusters/edge-1"]
    for path in paths:
        phone.goto(path)
        phone.wait_for_load_state("networkidle")
        assert phone.locator("main h1").first.is_visible(), path
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path}: the page scrolls sideways ({width} px wide)"
