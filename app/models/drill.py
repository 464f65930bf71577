"""Disconnect drills (issue 17): the planned window, each check Lifeline ran during it, its timeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, utcnow
from app.models.fleet import Outpost


class Drill(Base):
    """A rehearsed disconnect of one Outpost (and its clusters): planned -> running -> ended | aborted."""

    __tablename__ = "drills"
    __table_args__ = (Index("ix_drills_outpost_state", "outpost_pk", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    outpost_pk: Mapped[int] = mapped_column(ForeignKey("outposts.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    ticket_ref: Mapped[str | None] = mapped_column(String(200))
    # People taking part (names as typed; the owner first).
    participants: Mapped[list[Any]] = mapped_column(default=list)
    # The checklist item keys chosen for this drill (app.services.drills.checklist.ITEMS).
    checklist: Mapped[list[Any]] = mapped_column(default=list)
    planned_start: Mapped[dt.datetime]
    duration_minutes: Mapped[int]
    # planned | running | ended | aborted
    state: Mapped[str] = mapped_column(String(16), default="planned")
    # Drill time is kept out of uptime and incident figures (and shown beside them) unless False.
    exclude_from_uptime: Mapped[bool] = mapped_column(default=True)
    started_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    started_by: Mapped[str | None] = mapped_column(String(150))
    ended_by: Mapped[str | None] = mapped_column(String(150))
    abort_reason: Mapped[str | None] = mapped_column(Text)
    # passed | failed | incomplete, set when the drill ends or is aborted.
    outcome: Mapped[str | None] = mapped_column(String(16))
    follow_ups: Mapped[list[Any]] = mapped_column(default=list)
    last_checked_at: Mapped[dt.datetime | None]
    created_by: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    outpost: Mapped[Outpost] = relationship(lazy="joined")
    checks: Mapped[list[DrillCheck]] = relationship(
        back_populates="drill", order_by="DrillCheck.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[DrillEvent]] = relationship(
        back_populates="drill", order_by="DrillEvent.id", cascade="all, delete-orphan"
    )


class DrillCheck(Base):
    """One checklist item on one subject (the Outpost, a cluster, a credential's path), latest result."""

    __tablename__ = "drill_checks"
    # (drill, item, subject) is the natural key: every check round upserts on it.
    __table_args__ = (UniqueConstraint("drill_id", "item", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id", ondelete="CASCADE"), index=True)
    item: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(300))
    cluster_pk: Mapped[int | None] = mapped_column(ForeignKey("clusters.id", ondelete="SET NULL"))
    # pending | pass | fail | confirm (a person must confirm)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    summary: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    # What the first round saw (running pods, Ready nodes), compared by later rounds.
    baseline: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_checked_at: Mapped[dt.datetime | None]
    checked_at: Mapped[dt.datetime | None]
    rounds: Mapped[int] = mapped_column(default=0)
    confirmed_by: Mapped[str | None] = mapped_column(String(150))
    confirmed_at: Mapped[dt.datetime | None]
    note: Mapped[str | None] = mapped_column(Text)

    drill: Mapped[Drill] = relationship(back_populates="checks")


class DrillEvent(Base):
    """The drill's timeline: planned, started, an item changed, confirmed, ended or aborted."""

    __tablename__ = "drill_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(150))

    drill: Mapped[Drill] = relationship(back_populates="events")
