"""The Fleet page in Debian's chromium: the HTMX form shows field errors, then adds the Outpost."""

from __future__ import annotations

from typing import Any

import pytest

from app.db import session_scope
from app.services.fleet import inventory
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

OP_A = "op-0123456789abcdef0"


def test_add_outpost_through_the_form(page: Any, live_server: LiveServer) -> None:
    page.goto("/fleet")
    assert page.locator(".fleet-empty h2").inner_text() == "No Outposts yet"

    form = page.locator("#outpost-form")
    form.locator("input[name=outpost_id]").fill("op-bad")
    form.locator("input[name=region]").fill("us-west-2")
    form.locator("button[type=submit]").click()
    # HTMX swaps the 422 form in place: the page is not reloaded and the input is kept.
    error = page.locator("#outpost-form .field-error").first
    error.wait_for()
    assert "'op-bad' is not an Outpost ID" in error.inner_text()
    assert page.locator("#outpost-form .field-error").nth(1).inner_text() == "Name must not be empty"
    assert page.locator("#outpost-form input[name=region]").input_value() == "us-west-2"

    page.locator("#outpost-form input[name=outpost_id]").fill(OP_A)
    page.locator("#outpost-form input[name=name]").fill("Plant 7, rack A")
    page.locator("#outpost-form button[type=submit]").click()
    page.wait_for_url("**/fleet?notice=*")
    assert page.locator(".flash.ok").inner_text() == f"Added Outpost {OP_A}."
    row = page.locator("#fleet-outposts tbody tr").first
    assert OP_A in row.inner_text() and "manual" in row.inner_text()

    with session_scope(live_server.session_factory) as session:
        outpost = inventory.get_outpost_or_none(session, OP_A)
        assert outpost is not None and outpost.name == "Plant 7, rack A"

    # Remove asks for confirmation (static/js/app.js, no inline script).
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#fleet-outposts button", has_text="Remove").click()
    page.wait_for_url("**/fleet?notice=Removed*")
    assert page.locator(".fleet-empty").is_visible()
