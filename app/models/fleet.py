"""The fleet: Outposts and the EKS local clusters that run on them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, utcnow


class Outpost(Base):
    __tablename__ = "outposts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # AWS's ID, `op-` + 17 hex digits; a surrogate integer key keeps the samples table small.
    outpost_id: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(32), index=True)
    account_id: Mapped[str | None] = mapped_column(String(12))
    # Where the entry came from: file (GitOps), manual (UI/API/CLI) or discovery (EKS).
    source: Mapped[str] = mapped_column(String(16), default="manual")
    state: Mapped[str] = mapped_column(String(16), default="UNKNOWN")
    state_since: Mapped[dt.datetime | None]
    last_sample_at: Mapped[dt.datetime | None]
    last_value: Mapped[float | None]
    # Where the next cycle's backfill must start again: the earliest window whose request failed
    # while a later one (the trailing window) moved `last_sample_at` past it. None when complete.
    backfill_from: Mapped[dt.datetime | None]
    # The last polling problem specific to this Outpost (AccessDenied, no data: wrong account?).
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    clusters: Mapped[list[Cluster]] = relationship(back_populates="outpost")


class Cluster(Base):
    __tablename__ = "clusters"
    __table_args__ = (UniqueConstraint("name", "region"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    region: Mapped[str] = mapped_column(String(32))
    outpost_pk: Mapped[int | None] = mapped_column(ForeignKey("outposts.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(16), default="manual")
    # Facts from DescribeCluster, cached so they stay available when the Region is not.
    cluster_uid: Mapped[str | None] = mapped_column(String(64))
    endpoint: Mapped[str | None] = mapped_column(String(255))
    certificate_authority: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(16))
    platform_version: Mapped[str | None] = mapped_column(String(64))
    kubernetes_version: Mapped[str | None] = mapped_column(String(16))
    control_plane_instance_type: Mapped[str | None] = mapped_column(String(32))
    health_issues: Mapped[list[Any]] = mapped_column(default=list)
    described_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    outpost: Mapped[Outpost | None] = relationship(back_populates="clusters")
