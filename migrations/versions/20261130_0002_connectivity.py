"""connectivity samples incidents and rollups

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _outpost_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["outpost_pk"], ["outposts.id"], name=op.f(f"fk_{table}_outpost_pk_outposts"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "connected_samples",
        sa.Column("outpost_pk", sa.Integer(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("period_seconds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("outpost_pk", "ts", name=op.f("pk_connected_samples")),
        _outpost_fk("connected_samples"),
    )
    op.create_table(
        "hourly_rollups",
        sa.Column("outpost_pk", sa.Integer(), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("connected_seconds", sa.Float(), nullable=False),
        sa.Column("known_seconds", sa.Float(), nullable=False),
        sa.Column("min_value", sa.Float()),
        sa.Column("avg_value", sa.Float()),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("outpost_pk", "hour", name=op.f("pk_hourly_rollups")),
        _outpost_fk("hourly_rollups"),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("outpost_pk", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime()),
        sa.Column("worst_value", sa.Float(), nullable=False),
        sa.Column("last_below_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        _outpost_fk("incidents"),
        sa.UniqueConstraint("outpost_pk", "started_at", name=op.f("uq_incidents_outpost_pk_started_at")),
    )
    op.create_index("ix_incidents_outpost_open", "incidents", ["outpost_pk", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_incidents_outpost_open", table_name="incidents")
    op.drop_table("incidents")
    op.drop_table("hourly_rollups")
    op.drop_table("connected_samples")
