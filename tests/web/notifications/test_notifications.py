"""Pages and API: admins add and test a channel with a real message, its secret never comes back;
responders read the delivery log; viewers are refused; every change is audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.models import AuditEvent, NotificationEvent
from app.settings import Settings
from tests.conftest import create_account, sign_in
from tests.support.receivers import HttpReceiver

SECRET = "page-hmac-secret-0123456789"


@pytest.fixture
def notify_app(notify_settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[FastAPI]:
    application = create_app(notify_settings)
    application.state.session_factory = session_factory
    yield application
    application.state.engine.dispose()


def _client(app: FastAPI, session: Session, role: str) -> Any:
    from fastapi.testclient import TestClient

    create_account(session, f"n-{role}", role)
    return sign_in(TestClient(app, base_url="http://127.0.0.1"), f"n-{role}")


def test_admin_adds_tests_and_disables_a_channel(
    notify_app: FastAPI, session: Session, http_receiver: HttpReceiver
) -> None:
    admin = _client(notify_app, session, "admin")
    response = admin.post(
        "/notifications/channels",
        data={"name": "hook", "kind": "webhook", "url": http_receiver.url, "secret": SECRET},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = admin.get("/notifications").text
    assert "hook" in page and SECRET not in page and "127.0.0.1" in page
    channel_id = session.execute(text("SELECT id FROM notification_channels")).scalar_one()
    assert admin.post(f"/notifications/channels/{channel_id}/test", follow_redirects=False).status_code == 303
    (arrival,) = http_receiver.processed
    assert arrival.body["kind"] == "notification.test" and "X-Lifeline-Signature" in arrival.headers
    admin.post(f"/notifications/channels/{channel_id}/enabled", data={"enabled": "false"})
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.action.startswith("notification")).order_by(AuditEvent.id)
    ).all()
    assert actions == [
        "notification.channel.create",
        "notification.channel.test",
        "notification.channel.disable",
    ]
    assert SECRET not in str(session.scalars(select(AuditEvent.details)).all())


def test_bad_channel_form_says_what_is_wrong(notify_app: FastAPI, session: Session) -> None:
    admin = _client(notify_app, session, "admin")
    response = admin.post(
        "/notifications/channels", data={"name": "m", "kind": "email", "host": "", "secret": SECRET}
    )
    assert response.status_code == 422
    assert "the SMTP relay" in response.text and SECRET not in response.text


def test_responder_reads_the_delivery_log_viewer_is_refused(
    notify_app: FastAPI, session: Session, http_receiver: HttpReceiver
) -> None:
    admin = _client(notify_app, session, "admin")
    admin.post("/notifications/channels", data={"name": "hook", "kind": "webhook", "url": http_receiver.url})
    channel_id = session.execute(text("SELECT id FROM notification_channels")).scalar_one()
    admin.post(f"/notifications/channels/{channel_id}/test")
    event_id = session.scalars(select(NotificationEvent.id)).one()
    responder = _client(notify_app, session, "responder")
    page = responder.get(f"/notifications/events/{event_id}")
    assert page.status_code == 200 and "delivered at" in page.text
    api = responder.get(f"/api/v1/notifications/events/{event_id}").json()
    assert api["deliveries"][0]["status"] == "delivered"
    assert responder.post("/notifications/rules", data={"name": "x"}).status_code == 403
    viewer = _client(notify_app, session, "viewer")
    assert viewer.get("/notifications").status_code == 403


def test_rules_api_takes_the_drill_setting(
    notify_app: FastAPI, session: Session, http_receiver: HttpReceiver
) -> None:
    """What a rule does during a drill can be set through the API, not only the page."""
    from app.models import NotificationRule

    admin = _client(notify_app, session, "admin")
    admin.post(
        "/notifications/channels",
        data={"name": "hook", "kind": "webhook", "url": http_receiver.url, "secret": SECRET},
        follow_redirects=False,
    )
    channel_id = session.execute(text("SELECT id FROM notification_channels")).scalar_one()
    created = admin.post(
        "/api/v1/notifications/rules",
        json={"name": "pager", "channel_id": channel_id, "during_drill": "quiet"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["during_drill"] == "quiet"
    refused = admin.post(
        "/api/v1/notifications/rules", json={"name": "x", "channel_id": channel_id, "during_drill": "loud"}
    )
    assert refused.status_code == 422 and "during_drill" in refused.text
    session.expire_all()
    assert session.scalars(select(NotificationRule.during_drill)).all() == ["quiet"]
