"""Full-page screenshots of the overview, an Outpost page and a cluster page at 1440x900 and 390x844 in
Debian's chromium, compared with the PNGs in tests/web/pages/screenshots/ (issue 19), so a layout
regression shows as an image diff. `LIFELINE_UPDATE_SCREENSHOTS=1` (`make screenshots`) rewrites
the references instead of comparing.

The fleet, its names and the clock are fixed: time-machine stops `datetime.now` and `time.time`
in the whole process (the live server's thread included) at FROZEN_AT, so ages, "since", the
charts' ticks and the database's own timestamps are the same on every run."""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path
from typing import Any

import pytest
import time_machine
from PIL import Image, ImageDraw

from tests.conftest import TEST_PASSWORD, LiveServer, create_account
from tests.factories import add_poll_run, add_samples, make_outpost, outpost_id
from tests.support.screenshots import CHANNEL_TOLERANCE, check_screenshot, compare_images
from tests.web.readiness.test_clusters import seed as seed_cluster

REFERENCES = Path(__file__).resolve().parent / "screenshots"
# Read at import: the autouse environment fixture removes every LIFELINE_* variable before a test.
UPDATE = os.environ.get("LIFELINE_UPDATE_SCREENSHOTS", "") == "1"
SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
# A Monday afternoon, not on the hour: the chart ticks fall on round hours before it.
FROZEN_AT = dt.datetime(2026, 11, 30, 14, 37, tzinfo=dt.UTC)
STILL = "*, *::before, *::after { animation: none !important; transition: none !important; caret-color: transparent !important; }"  # noqa: E501
PLANT_7 = outpost_id(0x7A)
PLANT_9 = outpost_id(0x9B)
CLUSTER = "plant9-local"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The site-probe vantage defaults to the host name, which the pages show.
    return {"vantage": "plant-7-noc"}


def _seed(live_server: LiveServer) -> None:
    """Four Outposts (connected with a past outage, disconnected now, degraded, never reported), a
    poll a moment ago and a cluster on the disconnected Outpost with readiness findings."""
    from app.services.connectivity.status import refresh_states

    now = FROZEN_AT
    day_and_a_half = now - dt.timedelta(hours=30)
    with live_server.session_factory() as session:
        plant7 = make_outpost(session, name="Plant 7, rack A", oid=PLANT_7)
        outage = [1.0] * 1800
        outage[600:640] = [0.0] * 40  # 40 minutes, 20 h ago
        add_samples(session, plant7, day_and_a_half, outage)
        plant9 = make_outpost(session, name="Plant 9, rack B", oid=PLANT_9)
        add_samples(session, plant9, day_and_a_half, [1.0] * 1765 + [0.0] * 35)
        depot = make_outpost(session, name="Depot 3, loading bay", oid=outpost_id(0xD3), region="us-east-1")
        add_samples(session, depot, now - dt.timedelta(hours=6), [1.0] * 348 + [0.6] * 12)
        harbour = make_outpost(session, name="Harbour 1", oid=outpost_id(0x41), region="eu-west-1")
        refresh_states(session, [plant7, plant9, depot, harbour], now)
        add_poll_run(session, finished_at=now - dt.timedelta(seconds=40))
        seed_cluster(session, CLUSTER).outpost_pk = plant9.id
        create_account(session, "admin", "admin")
        session.commit()


def _signed_in_tab(browser: Any, live_server: LiveServer, size: str) -> Any:
    width, height = SIZES[size]
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": height},
        device_scale_factor=1,
        color_scheme="light",
        reduced_motion="reduce",
        locale="en-GB",
        timezone_id="UTC",
    )
    tab = context.new_page()
    tab.set_default_timeout(30_000)  # a loaded 2-core machine renders the 6,000 px page slowly
    tab.goto("/login?next=/account")
    tab.fill("input[name=username]", "admin")
    tab.fill("input[name=password]", TEST_PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url("**/account")
    return tab


def _screenshot(tab: Any, path: str) -> bytes:
    response = tab.goto(path, wait_until="networkidle")
    assert response is not None and response.status == 200, f"{path} answered {response and response.status}"
    tab.add_style_tag(content=STILL)
    tab.evaluate("document.fonts.ready.then(() => undefined)")
    tab.mouse.move(0, 0)
    shot: bytes = tab.screenshot(full_page=True, animations="disabled", caret="hide", scale="css")
    return shot


@pytest.mark.browser
@pytest.mark.parametrize("size", list(SIZES))
def test_pages_match_their_reference_screenshots(browser: Any, live_server: LiveServer, size: str) -> None:
    # name: (path, the page's heading), so a reference never shows a sign-in or an error page.
    pages = {
        "overview": ("/", "Outpost connectivity"),
        "outpost": (f"/outposts/{PLANT_9}", "Plant 9, rack B"),
        "cluster": (f"/clusters/{CLUSTER}", CLUSTER),
    }
    failures: list[str] = []
    with time_machine.travel(FROZEN_AT, tick=False):
        _seed(live_server)
        tab = _signed_in_tab(browser, live_server, size)
        try:
            for name, (path, heading) in pages.items():
                png = _screenshot(tab, path)
                assert heading in tab.locator("h1").first.inner_text(), f"{path} shows {tab.url}"
                failure = check_screenshot(png, REFERENCES / f"{name}-{size}.png", update=UPDATE)
                if failure:
                    failures.append(failure)
        finally:
            tab.context.close()
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------- the comparison can fail


def _page_like(width: int = 300, height: int = 200) -> Image.Image:
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, width - 10, 40), fill=(30, 60, 120))
    for row in range(60, height - 10, 20):
        draw.line((20, row, width - 40, row), fill=(40, 40, 40), width=2)
    return image


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_identical_and_slightly_noisy_images_match() -> None:
    reference = _page_like()
    assert compare_images(reference.copy(), reference).changed == 0
    noisy = reference.copy()
    # Anti-aliasing noise: every pixel of a strip a few levels off, within the per-channel tolerance.
    for x in range(300):
        r, g, b = noisy.getpixel((x, 100))  # type: ignore[misc]
        noisy.putpixel((x, 100), (max(r - CHANNEL_TOLERANCE, 0), g, b))
    assert compare_images(noisy, reference).matches()


def test_a_moved_block_fails_and_leaves_the_actual_and_a_diff(tmp_path: Path) -> None:
    reference_path = tmp_path / "refs" / "page-desktop.png"
    reference = _page_like()
    assert check_screenshot(_png(reference), reference_path, update=True) is None
    assert check_screenshot(_png(reference), reference_path, update=False, failures_dir=tmp_path) is None

    moved = reference.copy()
    ImageDraw.Draw(moved).rectangle((200, 120, 260, 180), fill=(200, 30, 30))  # 61x61 of 60,000 px
    diff = compare_images(moved, reference)
    assert diff.changed == 61 * 61 and not diff.matches()
    assert diff.image.getpixel((230, 150)) == (255, 0, 255)
    assert diff.image.getpixel((5, 5)) != (255, 0, 255)

    message = check_screenshot(_png(moved), reference_path, update=False, failures_dir=tmp_path)
    assert message is not None and "3721 of 60000 pixels differ (6.20%" in message
    assert str(tmp_path / "page-desktop.actual.png") in message
    assert str(tmp_path / "page-desktop.diff.png") in message
    with Image.open(tmp_path / "page-desktop.diff.png") as written:
        assert written.getpixel((230, 150)) == (255, 0, 255)
    # A later run that matches again clears what the failure left.
    assert check_screenshot(_png(reference), reference_path, update=False, failures_dir=tmp_path) is None
    assert not (tmp_path / "page-desktop.diff.png").exists()


def test_a_different_size_fails_even_when_the_common_part_matches(tmp_path: Path) -> None:
    reference_path = tmp_path / "page-phone.png"
    check_screenshot(_png(_page_like(300, 200)), reference_path, update=True)
    taller = Image.new("RGB", (300, 201), "white")
    taller.paste(_page_like(300, 200))
    message = check_screenshot(_png(taller), reference_path, update=False, failures_dir=tmp_path)
    assert message is not None and "size 300x201, reference 300x200" in message


def test_a_missing_reference_fails_and_says_how_to_make_it(tmp_path: Path) -> None:
    message = check_screenshot(_png(_page_like()), tmp_path / "none.png", update=False, failures_dir=tmp_path)
    assert message is not None and "make screenshots" in message
    assert (tmp_path / "none.actual.png").exists()
