"""cluster identities: Lifeline's own issuer and reader x509 identities per cluster; readiness
records whether the API answered and when x509 last worked

Revision ID: 0019
Revises: 0021
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UTCDateTime

revision: str = "0019"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cluster_identities",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cluster_pk", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("cluster_role", sa.String(200), nullable=False),
        sa.Column("grantable_roles", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("revoked_at", UTCDateTime()),
        sa.Column("revoked_by", sa.String(150)),
        sa.Column("last_attempt_at", UTCDateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cluster_identities")),
        sa.ForeignKeyConstraint(
            ["cluster_pk"],
            ["clusters.id"],
            name=op.f("fk_cluster_identities_cluster_pk_clusters"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("cluster_pk", "purpose", name=op.f("uq_cluster_identities_cluster_pk_purpose")),
    )
    op.create_index(op.f("ix_cluster_identities_cluster_pk"), "cluster_identities", ["cluster_pk"])
    with op.batch_alter_table("cluster_readiness") as batch:
        batch.add_column(sa.Column("api_answered", sa.Boolean()))
        batch.add_column(sa.Column("x509_last_ok_at", UTCDateTime()))


def downgrade() -> None:
    with op.batch_alter_table("cluster_readiness") as batch:
        batch.drop_column("x509_last_ok_at")
        batch.drop_column("api_answered")
    op.drop_index(op.f("ix_cluster_identities_cluster_pk"), table_name="cluster_identities")
    op.drop_table("cluster_identities")
