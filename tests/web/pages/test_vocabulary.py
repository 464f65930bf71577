"""One vocabulary across pages: states spelled the same on the fleet page as on the overview,
counts that agree with their nouns, headings that follow the credential's status, labelled time
zones, and an account's password age that is true."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import TEST_PASSWORD
from tests.factories import add_poll_run, make_outposts

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
# A printed value followed by a word ending in "s": a count with a fixed plural ("1 attempts").
COUNT_THEN_PLURAL = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}\s+([A-Za-z][A-Za-z-]*s)\b")
# Words after a value that are no plural noun: units and verbs ("12.5 ms", "demo-dashboard says").
NOT_PLURALS = {"ms", "says", "is", "expires", "pass"}


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


def test_no_template_prints_a_count_with_a_fixed_plural() -> None:
    """A count goes through the `plural` filter ("1 attempt", "2 attempts"), never "{{ n }} attempts"."""
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        name = path.relative_to(TEMPLATES).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for found in COUNT_THEN_PLURAL.finditer(line):
                if found.group(2) not in NOT_PLURALS:
                    offenders.append(f"{name}:{number}: {found.group(0)}")
    assert not offenders, "\n".join(offenders)
    # The detector finds what it is for.
    assert COUNT_THEN_PLURAL.search("<p>{{ d.attempts }} attempts</p>")
    assert not COUNT_THEN_PLURAL.search('<p>{{ d.attempts|plural("attempt") }}</p>')


def test_one_outpost_in_the_fleet_is_singular(client: TestClient, session: Session) -> None:
    make_outposts(session, 1)
    session.commit()
    body = client.get("/?state=DISCONNECTED").text
    assert "1 Outpost in the fleet, none in state Disconnected" in body


# An absolute time kept in a `title` attribute only: no keyboard or touch access.
TIME_IN_TITLE_ONLY = re.compile(r'title="\{\{[^}"]*\|\s*utc\s*\}\}"')


def test_no_absolute_time_lives_only_in_a_title() -> None:
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        name = path.relative_to(TEMPLATES).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if TIME_IN_TITLE_ONLY.search(line):
                offenders.append(f"{name}:{number}: {line.strip()[:120]}")
    assert not offenders, "\n".join(offenders)
    assert TIME_IN_TITLE_ONLY.search('<span title="{{ v.since|utc }}">{{ v.since|age(now) }}</span>')


def test_overview_times_show_their_date_as_text(client: TestClient, session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    since = dt.datetime(2026, 11, 30, 20, 31, tzinfo=dt.UTC)
    outpost.state, outpost.state_since = "DISCONNECTED", since
    session.commit()
    row = client.get("/").text.split(f'data-outpost-id="{outpost.outpost_id}"', 1)[1].split("</tr>", 1)[0]
    stamp = r'<time datetime="2026-11-30T20:31:00\+00:00">'
    shown = stamp + r'[^<]+ ago <span class="when-abs">2026-11-30 20:31 UTC</span></time>'
    assert re.search(shown, row), row
