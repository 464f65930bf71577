"""fleet: outposts, clusters and job runs

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outposts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("outpost_id", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(12)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_since", UTCDateTime()),
        sa.Column("last_sample_at", UTCDateTime()),
        sa.Column("last_value", sa.Float()),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_error_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outposts")),
        sa.UniqueConstraint("outpost_id", name=op.f("uq_outposts_outpost_id")),
    )
    op.create_index(op.f("ix_outposts_region"), "outposts", ["region"])
    op.create_table(
        "clusters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("outpost_pk", sa.Integer()),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("cluster_uid", sa.String(64)),
        sa.Column("endpoint", sa.String(255)),
        sa.Column("certificate_authority", sa.Text()),
        sa.Column("status", sa.String(16)),
        sa.Column("platform_version", sa.String(64)),
        sa.Column("kubernetes_version", sa.String(16)),
        sa.Column("control_plane_instance_type", sa.String(32)),
        sa.Column("health_issues", sa.JSON(), nullable=False),
        sa.Column("described_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clusters")),
        sa.ForeignKeyConstraint(
            ["outpost_pk"], ["outposts.id"], name=op.f("fk_clusters_outpost_pk_outposts"), ondelete="SET NULL"
        ),
        sa.UniqueConstraint("name", "region", name=op.f("uq_clusters_name_region")),
    )
    op.create_table(
        "poll_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poll_runs")),
    )
    op.create_index(op.f("ix_poll_runs_job"), "poll_runs", ["job"])
    op.create_index(op.f("ix_poll_runs_started_at"), "poll_runs", ["started_at"])


def downgrade() -> None:
    op.drop_table("poll_runs")
    op.drop_table("clusters")
    op.drop_table("outposts")
