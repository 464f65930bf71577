"""Connectivity history: ConnectedStatus samples, half-hour, hourly and daily rollups, incidents."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class ConnectedSample(Base):
    """One CloudWatch datapoint: the Average of ConnectedStatus over [ts, ts + period_seconds)."""

    __tablename__ = "connected_samples"

    # (outpost, timestamp) is the natural key: polls upsert on it, so overlaps change nothing.
    outpost_pk: Mapped[int] = mapped_column(ForeignKey("outposts.id", ondelete="CASCADE"), primary_key=True)
    ts: Mapped[dt.datetime] = mapped_column(primary_key=True)
    value: Mapped[float]
    # 60 for recent data; 300 for backfill beyond CloudWatch's 15-day 60-second retention.
    period_seconds: Mapped[int] = mapped_column(default=60)


class HourlyRollup(Base):
    """Per Outpost and UTC hour: how much time was known, and how much of it connected."""

    __tablename__ = "hourly_rollups"

    outpost_pk: Mapped[int] = mapped_column(ForeignKey("outposts.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[dt.datetime] = mapped_column(primary_key=True)
    # Sum of value x period over the hour's samples (an Average of 0.5 over 60 s counts 30 s).
    connected_seconds: Mapped[float] = mapped_column(default=0.0)
    # Seconds covered by a sample at all; the rest of the hour is unknown.
    known_seconds: Mapped[float] = mapped_column(default=0.0)
    min_value: Mapped[float | None]
    avg_value: Mapped[float | None]
    samples: Mapped[int] = mapped_column(default=0)


class HalfHourRollup(Base):
    """Per Outpost and UTC half-hour: the overview's 24-hour strip buckets, kept up to date when
    samples land (in the same transaction), so a strip reads 48 rows, never the raw samples.
    Kept as long as the raw samples they are made from."""

    __tablename__ = "halfhour_rollups"

    outpost_pk: Mapped[int] = mapped_column(ForeignKey("outposts.id", ondelete="CASCADE"), primary_key=True)
    start: Mapped[dt.datetime] = mapped_column(primary_key=True)
    connected_seconds: Mapped[float] = mapped_column(default=0.0)
    known_seconds: Mapped[float] = mapped_column(default=0.0)
    min_value: Mapped[float | None]
    samples: Mapped[int] = mapped_column(default=0)


class DailyRollup(Base):
    """Per Outpost and UTC day: the sums of that day's hourly rollups, kept up to date when samples
    land (in the same transaction), so a 30- or 90-day uptime reads one row per day, not 24."""

    __tablename__ = "daily_rollups"

    outpost_pk: Mapped[int] = mapped_column(ForeignKey("outposts.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[dt.datetime] = mapped_column(primary_key=True)
    connected_seconds: Mapped[float] = mapped_column(default=0.0)
    known_seconds: Mapped[float] = mapped_column(default=0.0)
    min_value: Mapped[float | None]
    samples: Mapped[int] = mapped_column(default=0)


class UptimeWindow(Base):
    """Per Outpost and uptime window (24h, 7d, 30d, 90d): connected and known seconds over
    [as_of - window, as_of), written by each poll in the transaction that stores its samples, so
    a page or API call reads one row per Outpost and window instead of summing rollups.

    Readers take a row while `as_of <= now < valid_until` (the poll interval with room for one
    missed cycle); otherwise, and for an Outpost whose samples changed since, they compute it.
    Drill time is not left out here: readers take it out (it changes outside polls)."""

    __tablename__ = "uptime_windows"
    __table_args__ = (Index("ix_uptime_windows_window_key_ratio", "window_key", "ratio"),)

    outpost_pk: Mapped[int] = mapped_column(ForeignKey("outposts.id", ondelete="CASCADE"), primary_key=True)
    window_key: Mapped[str] = mapped_column(String(8), primary_key=True)
    as_of: Mapped[dt.datetime]
    valid_until: Mapped[dt.datetime]
    connected_seconds: Mapped[float] = mapped_column(default=0.0)
    known_seconds: Mapped[float] = mapped_column(default=0.0)
    # connected / known (NULL when nothing is known): the overview sorts on it in SQL.
    ratio: Mapped[float | None]


class Incident(Base):
    """A contiguous stretch of samples below 1; `ended_at` is NULL while it is ongoing."""

    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("outpost_pk", "started_at"),
        Index("ix_incidents_outpost_open", "outpost_pk", "ended_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    outpost_pk: Mapped[int] = mapped_column(ForeignKey("outposts.id", ondelete="CASCADE"))
    started_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]
    worst_value: Mapped[float]
    # The end of the last sample below 1 seen so far (for an ongoing incident's duration).
    last_below_at: Mapped[dt.datetime]
