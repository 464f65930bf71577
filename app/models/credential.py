"""Break-glass and fallback x509 credentials, their issue/renew steps, and every download."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, utcnow
from app.models.fleet import Cluster


class Credential(Base):
    __tablename__ = "credentials"
    # Ids are never reused (SQLite would hand out a deleted maximum again).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    # RESTRICT: a cluster is removed only once no credential record points at it (issue 12).
    cluster_pk: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="RESTRICT"), index=True)
    # breakglass: a person's emergency access; fallback: Lifeline's own `view` identity per cluster.
    kind: Mapped[str] = mapped_column(String(16), default="breakglass")
    # The Kubernetes user (certificate CN) and group (O) it authenticates as.
    username: Mapped[str] = mapped_column(String(200))
    group_name: Mapped[str | None] = mapped_column(String(200))
    cluster_role: Mapped[str] = mapped_column(String(200))
    key_type: Mapped[str] = mapped_column(String(32))
    # server: Lifeline generated the key and holds it sealed; uploaded-csr: the key never left the user.
    custody: Mapped[str] = mapped_column(String(16))
    # AES-256-GCM sealed PKCS#8 PEM (app.integrations.vault); NULL for uploaded CSRs.
    encrypted_key: Mapped[str | None] = mapped_column(Text)
    csr_pem: Mapped[str | None] = mapped_column(Text)
    certificate_pem: Mapped[str | None] = mapped_column(Text)
    fingerprint_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    serial_hex: Mapped[str | None] = mapped_column(String(64))
    not_before: Mapped[dt.datetime | None]
    not_after: Mapped[dt.datetime | None]
    requested_lifetime_seconds: Mapped[int] = mapped_column(Integer)
    # Control-plane ENI IPs as last seen while AWS was reachable, for the bundle's /etc/hosts lines.
    control_plane_ips: Mapped[list[Any]] = mapped_column(default=list)
    # Names of the Kubernetes objects Lifeline created, so it can clean them up.
    csr_name: Mapped[str | None] = mapped_column(String(253))
    binding_name: Mapped[str | None] = mapped_column(String(253))
    # A renewal is a new row for the same identity and binding; the old row becomes `renewed`.
    renewal_of_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id", ondelete="SET NULL"))
    # issuing -> active | failed; active -> revoked | renewed.
    status: Mapped[str] = mapped_column(String(16), default="issuing", index=True)
    failed_step: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    # users.id of the issuer; no FK so the record survives the account's removal.
    issued_by_user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    issued_by: Mapped[str] = mapped_column(String(150))
    issued_at: Mapped[dt.datetime | None]
    renewed_at: Mapped[dt.datetime | None]
    last_verified_at: Mapped[dt.datetime | None]
    last_verified_ok: Mapped[bool | None]
    last_verified_message: Mapped[str | None] = mapped_column(Text)
    revoked_at: Mapped[dt.datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(150))
    download_count: Mapped[int] = mapped_column(Integer, default=0)
    last_downloaded_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    cluster: Mapped[Cluster] = relationship(lazy="joined")
    events: Mapped[list[CredentialEvent]] = relationship(
        back_populates="credential", order_by="CredentialEvent.id", cascade="all, delete-orphan"
    )


class CredentialEvent(Base):
    """One step of an issue, renewal, verification or revocation, as shown live on the page."""

    __tablename__ = "credential_events"
    # Ids are never reused (SQLite would hand out a deleted maximum again).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id", ondelete="CASCADE"), index=True)
    # Which run the step belongs to (1 = the first issue, then one more per renew/verify/revoke).
    run: Mapped[int] = mapped_column(Integer, default=1)
    operation: Mapped[str] = mapped_column(String(16))
    step: Mapped[str] = mapped_column(String(32))
    # running | done | failed | skipped
    state: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(150))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    credential: Mapped[Credential] = relationship(back_populates="events")


class CredentialDownload(Base):
    """Every kubeconfig or bundle handed out (also recorded in the audit log)."""

    __tablename__ = "credential_downloads"
    # Ids are never reused (SQLite would hand out a deleted maximum again).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id", ondelete="CASCADE"), index=True)
    artifact: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(150))
    via_token: Mapped[bool] = mapped_column(default=False)
    client_address: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ClusterIdentity(Base):
    """Lifeline's own x509 identity on a cluster (`issuer` or `reader`): its ClusterRole, what it may
    grant, and whether an admin revoked it. Its certificates are `Credential` rows of the same kind."""

    __tablename__ = "cluster_identities"
    __table_args__ = (UniqueConstraint("cluster_pk", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_pk: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    # issuer: issues credentials during a disconnect; reader: the readiness poller's reads.
    purpose: Mapped[str] = mapped_column(String(16))
    cluster_role: Mapped[str] = mapped_column(String(200))
    # The ClusterRoles the issuer may bind (its `bind` resourceNames); empty for the reader.
    grantable_roles: Mapped[list[Any]] = mapped_column(default=list)
    # False after an admin revoked it: the upkeep job does not bring it back until re-enabled.
    enabled: Mapped[bool] = mapped_column(default=True)
    revoked_at: Mapped[dt.datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(150))
    last_attempt_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    cluster: Mapped[Cluster] = relationship(lazy="joined")
