"""Fixtures: a data key, receivers on loopback, a clock the tests move, and a sender on it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.integrations.vault import Vault, generate_data_key
from app.jobs.notifications import Sender
from app.services.audit import Actor
from app.settings import Settings
from tests.conftest import make_settings
from tests.notifications.receivers import HttpReceiver, SmtpReceiver

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
ADMIN = Actor(name="alice", role="admin")


class Clock:
    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


@pytest.fixture
def data_key() -> str:
    return generate_data_key()


@pytest.fixture
def notify_settings(database_url: str, data_key: str) -> Settings:
    return make_settings(
        database_url,
        data_key=data_key,
        notify_retry_base_seconds=2,
        notify_retry_max_seconds=60,
        notify_lease_seconds=30,
        notify_flap_hold_seconds=300,
        notify_timeout_seconds=3,
    )


@pytest.fixture
def vault(data_key: str) -> Vault:
    import base64

    return Vault(base64.b64decode(data_key))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sender(notify_settings: Settings, session_factory: sessionmaker[Session], clock: Clock) -> Sender:
    return Sender(notify_settings, session_factory, clock=clock, owner="test-sender")


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver().start()
    yield receiver
    receiver.stop()


def webhook_channel(session: Session, vault: Vault, url: str, **kwargs: Any) -> Any:
    from app.services.notifications import rules

    return rules.create_channel(
        session,
        vault,
        name=kwargs.pop("name", "oncall-hook"),
        kind=kwargs.pop("kind", "webhook"),
        config={"url": url, "secret": kwargs.pop("secret", "s3cret-hmac-key-0123456789")},
        actor=ADMIN,
        now=T0,
    )
