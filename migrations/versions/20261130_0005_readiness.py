"""readiness: latest findings per cluster, per-poll samples, exemptions, attestations

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _cluster_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["cluster_pk"], ["clusters.id"], name=op.f(f"fk_{table}_cluster_pk_clusters"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "cluster_readiness",
        sa.Column("cluster_pk", sa.Integer(), nullable=False),
        sa.Column("horizon_hours", sa.Integer()),
        sa.Column("auth_path", sa.String(8), nullable=False),
        sa.Column("iam_error", sa.Text()),
        sa.Column("x509_error", sa.Text()),
        sa.Column("reachable", sa.Boolean()),
        sa.Column("last_polled_at", UTCDateTime()),
        sa.Column("last_success_at", UTCDateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("score", sa.Integer()),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("nodes", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("evaluated_at", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("cluster_pk", name=op.f("pk_cluster_readiness")),
        _cluster_fk("cluster_readiness"),
    )
    op.create_table(
        "readiness_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_pk", sa.Integer(), nullable=False),
        sa.Column("polled_at", UTCDateTime(), nullable=False),
        sa.Column("auth_path", sa.String(8), nullable=False),
        sa.Column("reachable", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Integer()),
        sa.Column("fail_count", sa.Integer(), nullable=False),
        sa.Column("warn_count", sa.Integer(), nullable=False),
        sa.Column("unknown_count", sa.Integer(), nullable=False),
        sa.Column("pods", sa.Integer()),
        sa.Column("nodes", sa.Integer()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readiness_samples")),
        _cluster_fk("readiness_samples"),
        sa.UniqueConstraint(
            "cluster_pk", "polled_at", name=op.f("uq_readiness_samples_cluster_pk_polled_at")
        ),
    )
    op.create_index(op.f("ix_readiness_samples_polled_at"), "readiness_samples", ["polled_at"])
    op.create_table(
        "readiness_exemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_pk", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.String(64), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("author", sa.String(150), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readiness_exemptions")),
        _cluster_fk("readiness_exemptions"),
    )
    op.create_index(op.f("ix_readiness_exemptions_cluster_pk"), "readiness_exemptions", ["cluster_pk"])
    op.create_table(
        "readiness_attestations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_pk", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("author", sa.String(150), nullable=False),
        sa.Column("attested_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readiness_attestations")),
        _cluster_fk("readiness_attestations"),
    )
    op.create_index(op.f("ix_readiness_attestations_cluster_pk"), "readiness_attestations", ["cluster_pk"])


def downgrade() -> None:
    op.drop_index(op.f("ix_readiness_attestations_cluster_pk"), table_name="readiness_attestations")
    op.drop_table("readiness_attestations")
    op.drop_index(op.f("ix_readiness_exemptions_cluster_pk"), table_name="readiness_exemptions")
    op.drop_table("readiness_exemptions")
    op.drop_index(op.f("ix_readiness_samples_polled_at"), table_name="readiness_samples")
    op.drop_table("readiness_samples")
    op.drop_table("cluster_readiness")
