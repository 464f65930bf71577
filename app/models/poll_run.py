"""One row per run of a background job: when, how it ended, and why it failed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class PollRun(Base):
    __tablename__ = "poll_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    # connectivity, discovery, cluster, retention, ...
    job: Mapped[str] = mapped_column(String(32), index=True)
    # The region, cluster or other scope the run covered ("" when global).
    scope: Mapped[str] = mapped_column(String(128), default="")
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[dt.datetime | None]
    # running, ok, error; the connectivity poller also records partial and unreachable
    # (see app.services.connectivity.status, whose aws_vantage reads them)
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text)
    requests: Mapped[int] = mapped_column(default=0)
    items: Mapped[int] = mapped_column(default=0)
