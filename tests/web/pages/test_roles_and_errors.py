"""Navigation, banners and error pages follow who is signed in: no link that answers 403, a 404
page that knows the person, 422 pages in plain words with the valid choices (issue 19)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

NAV = {"Clusters": "/clusters", "Emergency access": "/credentials", "Fleet": "/fleet",
       "Notifications": "/notifications", "Audit": "/audit", "Users": "/users"}  # fmt: skip


def _nav_links(html: str) -> list[str]:
    nav = html[html.index('<nav class="mainnav"') : html.index("</nav>", html.index('<nav class="mainnav"'))]
    return re.findall(r'<a href="([^"]+)"', nav)


@pytest.mark.parametrize("role", ["viewer", "responder", "admin"])
def test_every_navigation_link_opens_for_its_role(client_as: Any, role: str) -> None:
    http: TestClient = client_as(role)
    links = _nav_links(http.get("/").text)
    assert "/" in links
    for href in links:
        assert http.get(href, follow_redirects=False).status_code == 200, (role, href)
    # What the role may not open is not offered.
    for href in set(NAV.values()) - set(links):
        assert http.get(href, follow_redirects=False).status_code == 403, (role, href)


def test_viewer_and_responder_see_no_admin_pages(client_as: Any) -> None:
    assert "/users" not in _nav_links(client_as("viewer").get("/").text)
    assert "/audit" not in _nav_links(client_as("responder").get("/").text)
    assert {"/users", "/audit"} <= set(_nav_links(client_as("admin").get("/").text))


@pytest.mark.parametrize("settings_overrides", [{"demo_mode": True}])
@pytest.mark.parametrize(("role", "offered"), [("viewer", False), ("responder", True), ("admin", True)])
def test_demo_banner_offers_the_rehearsal_only_to_who_may_run_it(
    app: FastAPI, client_as: Any, role: str, offered: bool
) -> None:
    from lifeline_demo import web as demo_web

    app.include_router(demo_web.router)  # what `lifeline demo` installs (a responder page)
    http: TestClient = client_as(role)
    html = http.get("/account").text
    assert "Demo fleet" in html
    assert ('href="/demo"' in html) is offered


@pytest.mark.parametrize("settings_overrides", [{"demo_mode": True}])
def test_demo_banner_without_the_demo_pages_offers_no_dead_link(client_as: Any) -> None:
    html = client_as("admin").get("/account").text
    assert "Demo fleet" in html and 'href="/demo"' not in html


def test_404_knows_who_is_signed_in(client_as: Any) -> None:
    http: TestClient = client_as("viewer", "vera")
    page = http.get("/no-such-page")
    assert page.status_code == 404
    assert "vera" in page.text and ">Sign in<" not in page.text
    links = re.findall(r'class="button[^"]*" href="([^"]+)"', page.text)
    assert links and "/" in links
    for href in links:
        assert http.get(href, follow_redirects=False).status_code == 200


def test_404_signed_out_offers_sign_in(anon_client: TestClient) -> None:
    page = anon_client.get("/no-such-page")
    assert page.status_code == 404
    assert "Sign in" in page.text


def test_422_has_no_developer_prefixes_and_offers_the_valid_choices(client: TestClient) -> None:
    page = client.get("/outposts/op-bad?range=6h")
    assert page.status_code == 422
    assert "path.outpost_id" not in page.text and "query." not in page.text
    assert "outpost_id must be" in page.text
    assert 'href="/"' in page.text


def _choices(html: str) -> list[tuple[str, str]]:
    """The error page's offered links (not the navigation's): (href, text)."""
    return re.findall(r'<a class="button[^"]*" href="([^"]+)">([^<]+)</a>', html)


def test_422_on_a_query_offers_the_page_with_default_settings(client: TestClient) -> None:
    page = client.get("/audit?since=yesterday-ish", headers={"Accept": "text/html"})
    assert page.status_code == 422
    assert "query." not in page.text
    assert ("/audit", "This page with the default settings") in _choices(page.text)


def test_422_on_a_bad_range_offers_each_valid_range(client: TestClient, session: Any) -> None:
    from tests.factories import make_outpost

    outpost = make_outpost(session)
    session.commit()
    path = f"/outposts/{outpost.outpost_id}"
    page = client.get(f"{path}?range=1y")
    assert page.status_code == 422
    valid = re.findall(r'<a href="([^"]+)" rel="nofollow">([^<]+)</a>', page.text)
    assert [text for _, text in valid] == ["6h", "24h", "7d", "30d", "90d"]
    for href, text in valid:
        assert href == f"{path}?range={text}"
        assert client.get(href).status_code == 200


def test_422_in_plain_words_for_a_malformed_number(client: TestClient) -> None:
    page = client.get("/credentials/abc")
    assert page.status_code == 422
    assert "credential_id must be a whole number (got &#39;abc&#39;)" in page.text
    assert "Input should be" not in page.text


def test_plain_messages_for_pydantic_errors() -> None:
    from app.web.errors import plain_message

    alternatives = "^(json|csv|sarif)$"
    pattern = {
        "loc": ("query", "format"),
        "msg": f"String should match pattern '{alternatives}'",
        "type": "string_pattern_mismatch",
        "input": "xml",
        "ctx": {"pattern": alternatives},
    }
    assert plain_message(pattern) == "format must be one of json, csv, sarif (got 'xml')"
    low = {"loc": ("query", "page"), "msg": "Input should be greater than or equal to 1",
           "type": "greater_than_equal", "input": "0", "ctx": {"ge": 1}}  # fmt: skip
    assert plain_message(low) == "page must be at least 1 (got '0')"
    # A kind without a plain wording keeps pydantic's message, named by the parameter.
    odd = {"loc": ("query", "x"), "msg": "Something else", "type": "odd"}
    assert plain_message(odd) == "x: Something else"
