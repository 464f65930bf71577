"""The notification sender: tick the alerts (hold-downs, reminders, unknown too long, AWS reach),
then claim due deliveries, send each, and record the outcome, each step in its own transaction.

Any number of senders may run (one per scheduler); claims with leases make exactly one send each
delivery. `lifeline notifications send --loop` runs one on its own.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.integrations.notify import DeliveryError, Timeouts
from app.integrations.vault import Vault, vault_or_none
from app.models.base import utcnow
from app.models.notification import NotificationDelivery
from app.services.errors import ServiceError
from app.services.notifications import delivery as deliveries
from app.services.notifications import events, outbox
from app.services.notifications.rules import open_config
from app.settings import Settings

log = logging.getLogger(__name__)
JOB_ID = "notifications.send"


@dataclass(frozen=True)
class SendCycle:
    ticked: int
    delivered: int
    failed: int


def sender_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def vault_from_settings(settings: Settings) -> Vault | None:
    secret = settings.data_key.get_secret_value() if settings.data_key else None
    return vault_or_none(secret, settings.data_key_file)


class Sender:
    """One sender (one per process); `clock` is replaceable so tests can move time."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        owner: str | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        batch: int = 50,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.owner = owner or sender_id()
        self.clock = clock
        self.batch = batch
        self.retry = outbox.RetryPolicy(
            settings.notify_retry_base_seconds,
            settings.notify_retry_max_seconds,
            settings.notify_lease_seconds,
        )
        self.policy = events.NotifyPolicy.from_settings(settings)
        self.timeouts = Timeouts(settings.notify_timeout_seconds, settings.notify_timeout_seconds)
        self.vault = vault_from_settings(settings)

    def tick(self) -> int:
        with session_scope(self.session_factory) as session:
            return events.tick(session, self.clock(), self.policy)

    def deliver_due(self, *, max_batches: int = 1000) -> tuple[int, int]:
        delivered = failed = 0
        for _ in range(max_batches):
            with session_scope(self.session_factory) as session:
                ids = outbox.claim_due(
                    session, owner=self.owner, now=self.clock(), policy=self.retry, limit=self.batch
                )
            if not ids:
                break
            for delivery_id in ids:
                if self._deliver_one(delivery_id):
                    delivered += 1
                else:
                    failed += 1
        return delivered, failed

    def _deliver_one(self, delivery_id: int) -> bool:
        with session_scope(self.session_factory) as session:
            delivery = session.get_one(NotificationDelivery, delivery_id)
            channel = delivery.channel
            try:
                config: dict[str, Any] | None = open_config(self.vault, channel)
                message = deliveries.build_message(session, delivery, self.settings.base_url)
                problem = None
            except ServiceError as exc:
                config, message, problem = None, None, str(exc)
        error = problem
        if config is not None and message is not None:
            try:
                deliveries.send(channel, config, message, self.timeouts)
            except DeliveryError as exc:
                error = str(exc)
            except Exception as exc:  # a bug in one channel must not stop the others
                log.exception("notification delivery %s raised", delivery_id)
                error = f"{type(exc).__name__}: {exc}"
        # Record the outcome before the lease is given up (the claim is the acknowledgement).
        with session_scope(self.session_factory) as session:
            now = self.clock()
            if error is None:
                if not outbox.record_delivered(session, delivery_id, owner=self.owner, now=now):
                    log.warning("delivery %s was sent after its lease ran out", delivery_id)
                return True
            retry_at = outbox.record_failed(
                session, delivery_id, owner=self.owner, error=error, now=now, policy=self.retry
            )
            log.info("delivery %s to %s failed (%s); retry at %s", delivery_id, channel.name, error, retry_at)
            return False

    def run_once(self) -> SendCycle:
        ticked = self.tick()
        delivered, failed = self.deliver_due()
        return SendCycle(ticked, delivered, failed)


def run_once(settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """One sender cycle (used by `lifeline poll-once` and the scheduler)."""
    Sender(settings, session_factory).run_once()


def register(scheduler: Any, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """Send every LIFELINE_NOTIFY_SEND_INTERVAL_SECONDS with one Sender per scheduler process."""
    sender = Sender(settings, session_factory)
    scheduler.add_job(
        sender.run_once,
        "interval",
        seconds=settings.notify_send_interval_seconds,
        id=JOB_ID,
        name="send notifications",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )
