"""The hourly retention job also deletes sign-in sessions past their idle or absolute end."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.jobs import retention as job
from app.models.account import WebSession
from app.services.accounts import users
from app.services.accounts.sessions import SessionPolicy, start_session
from app.services.audit import Actor, ClientInfo
from app.settings import Settings

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def test_retention_purges_expired_sessions_only(
    settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    user = users.create_user(
        session,
        username="ops-one",
        password="a long enough passphrase 1",
        role="viewer",
        actor=Actor(name="test"),
    )
    policy = SessionPolicy.from_settings(settings)
    client = ClientInfo(address="127.0.0.1", user_agent="pytest")
    _, idle = start_session(session, user, client=client, policy=policy, now=NOW - policy.idle * 2)
    _, too_old = start_session(session, user, client=client, policy=policy, now=NOW - policy.max_age * 2)
    too_old.last_seen_at = NOW - dt.timedelta(minutes=1)
    _, live = start_session(session, user, client=client, policy=policy, now=NOW - dt.timedelta(minutes=5))
    session.commit()
    ids = {"idle": idle.id, "too_old": too_old.id, "live": live.id}

    job.run_retention(settings, session_factory, now=NOW)

    session.expire_all()
    remaining = set(session.scalars(select(WebSession.id).where(WebSession.user_id == user.id)))
    assert remaining == {ids["live"]}
