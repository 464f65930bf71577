"""Site probes (issue 13): the latest result of each probe, each Outpost's site view, and the
stretches of site-observed state, all per vantage (where the dashboard that probed runs)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class ProbeResult(Base):
    """The latest result of one probe from one vantage; `since` is when that result began."""

    __tablename__ = "probe_results"
    # (vantage, kind, target) is the natural key: every cycle upserts on it.
    __table_args__ = (UniqueConstraint("vantage", "kind", "target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    vantage: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(255))
    region: Mapped[str | None] = mapped_column(String(32))
    cluster_pk: Mapped[int | None] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    result: Mapped[str] = mapped_column(String(16))
    up: Mapped[bool]
    latency_ms: Mapped[float | None]
    detail: Mapped[str] = mapped_column(Text, default="")
    checked_at: Mapped[dt.datetime]
    since: Mapped[dt.datetime]


class SiteView(Base):
    """One vantage's view of one Outpost, after hysteresis: the state shown, and what is pending."""

    __tablename__ = "site_views"

    vantage: Mapped[str] = mapped_column(String(64), primary_key=True)
    outpost_pk: Mapped[int] = mapped_column(ForeignKey("outposts.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    # When the first observation of `state` was made (not when hysteresis confirmed it).
    since: Mapped[dt.datetime]
    # The latest raw observation, and how many in a row (it replaces `state` at the hysteresis count).
    observed: Mapped[str] = mapped_column(String(16))
    observed_count: Mapped[int] = mapped_column(default=1)
    observed_since: Mapped[dt.datetime]
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    checked_at: Mapped[dt.datetime]
    changed_at: Mapped[dt.datetime]


class SiteStretch(Base):
    """A stretch of one site-view state; `ended_at` is NULL while it lasts. `cloudwatch` says how
    CloudWatch covers it: pending, none (never reported: the site view is the only record),
    agrees or differs (reconciled once CloudWatch's datapoints arrived, e.g. by backfill)."""

    __tablename__ = "site_stretches"
    __table_args__ = (
        UniqueConstraint("vantage", "outpost_pk", "started_at"),
        Index("ix_site_stretches_outpost", "outpost_pk", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    vantage: Mapped[str] = mapped_column(String(64))
    outpost_pk: Mapped[int] = mapped_column(ForeignKey("outposts.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    cloudwatch: Mapped[str] = mapped_column(String(16), default="pending")
    cloudwatch_seconds: Mapped[float] = mapped_column(default=0.0)
    reconciled_at: Mapped[dt.datetime | None]
