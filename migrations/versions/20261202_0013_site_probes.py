"""site probes: probe results, site views and site-observed stretches per vantage

Revision ID: 0013
Revises: 0016
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "probe_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vantage", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("region", sa.String(32)),
        sa.Column("cluster_pk", sa.Integer()),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("up", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_results")),
        sa.ForeignKeyConstraint(
            ["cluster_pk"],
            ["clusters.id"],
            name=op.f("fk_probe_results_cluster_pk_clusters"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("vantage", "kind", "target", name=op.f("uq_probe_results_vantage_kind_target")),
    )
    op.create_index(op.f("ix_probe_results_cluster_pk"), "probe_results", ["cluster_pk"])
    op.create_table(
        "site_views",
        sa.Column("vantage", sa.String(64), nullable=False),
        sa.Column("outpost_pk", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.Column("observed", sa.String(16), nullable=False),
        sa.Column("observed_count", sa.Integer(), nullable=False),
        sa.Column("observed_since", UTCDateTime(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("vantage", "outpost_pk", name=op.f("pk_site_views")),
        sa.ForeignKeyConstraint(
            ["outpost_pk"],
            ["outposts.id"],
            name=op.f("fk_site_views_outpost_pk_outposts"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "site_stretches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vantage", sa.String(64), nullable=False),
        sa.Column("outpost_pk", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime()),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("cloudwatch", sa.String(16), nullable=False),
        sa.Column("cloudwatch_seconds", sa.Float(), nullable=False),
        sa.Column("reconciled_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_stretches")),
        sa.ForeignKeyConstraint(
            ["outpost_pk"],
            ["outposts.id"],
            name=op.f("fk_site_stretches_outpost_pk_outposts"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "vantage",
            "outpost_pk",
            "started_at",
            name=op.f("uq_site_stretches_vantage_outpost_pk_started_at"),
        ),
    )
    op.create_index("ix_site_stretches_outpost", "site_stretches", ["outpost_pk", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_site_stretches_outpost", table_name="site_stretches")
    op.drop_table("site_stretches")
    op.drop_table("site_views")
    op.drop_index(op.f("ix_probe_results_cluster_pk"), table_name="probe_results")
    op.drop_table("probe_results")
