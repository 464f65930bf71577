""" "Poll now" on an Outpost page: responders and admins fetch its region from CloudWatch at once; audited."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent, PollRun
from tests.factories import make_outpost


@pytest.fixture
def settings_overrides(aws_endpoint: str) -> dict[str, Any]:
    return {"aws_endpoint_url": aws_endpoint}


def test_poll_now_fetches_the_region_and_is_audited(client_as: Any, session: Session, htmx: Any) -> None:
    outpost = make_outpost(session)
    session.commit()
    responder = client_as("responder")
    assert "Poll now" in responder.get(f"/outposts/{outpost.outpost_id}").text
    answer = responder.post(
        f"/outposts/{outpost.outpost_id}/poll", headers=htmx.headers, follow_redirects=False
    )
    assert answer.status_code in (204, 303)
    target = answer.headers.get("HX-Redirect") or answer.headers["location"]
    assert "Fetched+us-west-2" in target or "Fetched%20us-west-2" in target
    session.expire_all()
    runs = session.scalars(select(PollRun).where(PollRun.scope == outpost.region)).all()
    assert [r.outcome for r in runs] == ["ok"]
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "connectivity.poll_now")).one()
    assert event.target == f"outpost:{outpost.outpost_id}" and event.outcome == "success"
    assert "Fetched us-west-2 from CloudWatch now." in responder.get(target).text


def test_viewers_cannot_poll_an_outpost(client_as: Any, session: Session) -> None:
    outpost = make_outpost(session)
    session.commit()
    viewer = client_as("viewer")
    assert "Poll now" not in viewer.get(f"/outposts/{outpost.outpost_id}").text
    assert viewer.post(f"/outposts/{outpost.outpost_id}/poll").status_code == 403
