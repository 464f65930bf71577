"""One vocabulary across pages: states spelled the same on the fleet page as on the overview,
counts that agree with their nouns, headings that follow the credential's status, labelled time
zones, and an account's password age that is true."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import TEST_PASSWORD
from tests.factories import add_poll_run, make_outposts


def test_fleet_page_spells_states_like_the_overview(client: TestClient, session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    outpost.state = "DISCONNECTED"
    outpost.state_since = dt.datetime.now(dt.UTC)
    session.commit()
    fleet = client.get("/fleet").text
    overview = client.get("/").text
    assert ">Disconnected</span>" in fleet and ">DISCONNECTED<" not in fleet
    assert ">Disconnected</span>" in overview


def test_counts_agree_with_their_nouns(client: TestClient, session: Session) -> None:
    make_outposts(session, 1)
    add_poll_run(session, finished_at=dt.datetime.now(dt.UTC), requests=1, items=1)
    session.commit()
    body = client.get("/").text
    assert "1 datapoint, 1 CloudWatch request)" in body
    assert "1 CloudWatch requests" not in body


def test_audit_time_filters_say_utc(client: TestClient) -> None:
    body = client.get("/audit").text
    assert "from (UTC)" in body and "until (UTC)" in body


def test_password_age_is_true(client: TestClient, session: Session) -> None:
    body = client.get("/account").text
    assert "password set at creation, never changed" in body
    changed = client.post(
        "/account/password",
        data={"current_password": TEST_PASSWORD, "new_password": "a-new-long-password-42",
              "new_password_confirm": "a-new-long-password-42"},
        follow_redirects=False,
    )  # fmt: skip
    assert changed.status_code == 303, changed.text
    session.expire_all()
    after = client.get("/account").text
    assert "password changed" in after and "never changed" not in after
