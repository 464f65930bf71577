"""Readiness: the latest findings per cluster, a small summary per poll, exemptions, attestations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class ClusterReadiness(Base):
    """One row per cluster: its latest state, auth path and full findings (replaced on every poll)."""

    __tablename__ = "cluster_readiness"

    cluster_pk: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True)
    # Per-cluster disconnect horizon; NULL uses LIFELINE_READINESS_HORIZON_HOURS.
    horizon_hours: Mapped[int | None]
    # Which authentication path worked on the last poll: iam, x509 or none. IAM failing while
    # x509 works is a sign that the Region is cut off.
    auth_path: Mapped[str] = mapped_column(String(8), default="none")
    iam_error: Mapped[str | None] = mapped_column(Text)
    x509_error: Mapped[str | None] = mapped_column(Text)
    reachable: Mapped[bool | None]
    # Whether the API server answered the last poll at all (a 401 to IAM is an answer): a cluster
    # whose API answers is cut off or locked out, never "unreachable".
    api_answered: Mapped[bool | None]
    # When Lifeline's x509 identity last worked (probed on every poll, IAM working or not).
    x509_last_ok_at: Mapped[dt.datetime | None]
    last_polled_at: Mapped[dt.datetime | None]
    last_success_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    score: Mapped[int | None]
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    findings: Mapped[list[Any]] = mapped_column(default=list)
    nodes: Mapped[list[Any]] = mapped_column(default=list)
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    evaluated_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ReadinessSample(Base):
    """A small summary per poll: what the score history chart and trend tables read."""

    __tablename__ = "readiness_samples"
    __table_args__ = (UniqueConstraint("cluster_pk", "polled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_pk: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    polled_at: Mapped[dt.datetime] = mapped_column(index=True)
    auth_path: Mapped[str] = mapped_column(String(8))
    reachable: Mapped[bool]
    score: Mapped[int | None]
    fail_count: Mapped[int] = mapped_column(default=0)
    warn_count: Mapped[int] = mapped_column(default=0)
    unknown_count: Mapped[int] = mapped_column(default=0)
    pods: Mapped[int | None]
    nodes: Mapped[int | None]


class ReadinessExemption(Base):
    """An accepted risk: a whole check, or one object (`Kind/namespace/name`), until it expires."""

    __tablename__ = "readiness_exemptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_pk: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    check_id: Mapped[str] = mapped_column(String(64))
    # "" exempts the whole check; otherwise the evidence object's ref.
    target: Mapped[str] = mapped_column(String(300), default="")
    reason: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]


class ReadinessAttestation(Base):
    """A person's confirmation of what Lifeline cannot check (etcd backups, local DNS, registry)."""

    __tablename__ = "readiness_attestations"

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_pk: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    topic: Mapped[str] = mapped_column(String(64))
    statement: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(150))
    attested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
