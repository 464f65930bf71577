"""credentials: x509 break-glass and fallback credentials, their steps and downloads

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _credential_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["credential_id"],
        ["credentials.id"],
        name=op.f(f"fk_{table}_credential_id_credentials"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cluster_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("group_name", sa.String(200)),
        sa.Column("cluster_role", sa.String(200), nullable=False),
        sa.Column("key_type", sa.String(32), nullable=False),
        sa.Column("custody", sa.String(16), nullable=False),
        sa.Column("encrypted_key", sa.Text()),
        sa.Column("csr_pem", sa.Text()),
        sa.Column("certificate_pem", sa.Text()),
        sa.Column("fingerprint_sha256", sa.String(64)),
        sa.Column("serial_hex", sa.String(64)),
        sa.Column("not_before", UTCDateTime()),
        sa.Column("not_after", UTCDateTime()),
        sa.Column("requested_lifetime_seconds", sa.Integer(), nullable=False),
        sa.Column("control_plane_ips", sa.JSON(), nullable=False),
        sa.Column("csr_name", sa.String(253)),
        sa.Column("binding_name", sa.String(253)),
        sa.Column("renewal_of_id", sa.Integer()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failed_step", sa.String(32)),
        sa.Column("error", sa.Text()),
        sa.Column("issued_by_user_id", sa.Integer()),
        sa.Column("issued_by", sa.String(150), nullable=False),
        sa.Column("issued_at", UTCDateTime()),
        sa.Column("renewed_at", UTCDateTime()),
        sa.Column("last_verified_at", UTCDateTime()),
        sa.Column("last_verified_ok", sa.Boolean()),
        sa.Column("last_verified_message", sa.Text()),
        sa.Column("revoked_at", UTCDateTime()),
        sa.Column("revoked_by", sa.String(150)),
        sa.Column("download_count", sa.Integer(), nullable=False),
        sa.Column("last_downloaded_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.ForeignKeyConstraint(
            ["cluster_pk"],
            ["clusters.id"],
            name=op.f("fk_credentials_cluster_pk_clusters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["renewal_of_id"],
            ["credentials.id"],
            name=op.f("fk_credentials_renewal_of_id_credentials"),
            ondelete="SET NULL",
        ),
    )
    op.create_index(op.f("ix_credentials_cluster_pk"), "credentials", ["cluster_pk"])
    op.create_index(op.f("ix_credentials_fingerprint_sha256"), "credentials", ["fingerprint_sha256"])
    op.create_index(op.f("ix_credentials_status"), "credentials", ["status"])
    op.create_index(op.f("ix_credentials_issued_by_user_id"), "credentials", ["issued_by_user_id"])
    op.create_table(
        "credential_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(150), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_events")),
        _credential_fk("credential_events"),
    )
    op.create_index(op.f("ix_credential_events_credential_id"), "credential_events", ["credential_id"])
    op.create_table(
        "credential_downloads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("artifact", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Integer()),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("via_token", sa.Boolean(), nullable=False),
        sa.Column("client_address", sa.String(64)),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_downloads")),
        _credential_fk("credential_downloads"),
    )
    op.create_index(op.f("ix_credential_downloads_credential_id"), "credential_downloads", ["credential_id"])


def downgrade() -> None:
    op.drop_table("credential_downloads")
    op.drop_table("credential_events")
    op.drop_table("credentials")
