"""daily connectivity rollups, kept at write time and backfilled from the hourly rollups

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UTCDateTime

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One set-based INSERT ... SELECT per dialect: the day of an hour is date_trunc on PostgreSQL;
# SQLite stores datetimes as text in SQLAlchemy's format, which this strftime reproduces.
_DAY = {
    "postgresql": "date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    "sqlite": "strftime('%Y-%m-%d 00:00:00.000000', hour)",
}


def upgrade() -> None:
    op.create_table(
        "daily_rollups",
        sa.Column("outpost_pk", sa.Integer(), nullable=False),
        sa.Column("day", UTCDateTime(), nullable=False),
        sa.Column("connected_seconds", sa.Float(), nullable=False),
        sa.Column("known_seconds", sa.Float(), nullable=False),
        sa.Column("min_value", sa.Float()),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("outpost_pk", "day", name=op.f("pk_daily_rollups")),
        sa.ForeignKeyConstraint(
            ["outpost_pk"],
            ["outposts.id"],
            name=op.f("fk_daily_rollups_outpost_pk_outposts"),
            ondelete="CASCADE",
        ),
    )
    day = _DAY[op.get_bind().dialect.name]
    op.execute(
        f"""
        INSERT INTO daily_rollups (outpost_pk, day, connected_seconds, known_seconds, min_value, samples)
        SELECT outpost_pk, {day}, SUM(connected_seconds), SUM(known_seconds), MIN(min_value), SUM(samples)
        FROM hourly_rollups
        GROUP BY outpost_pk, {day}
        """  # noqa: S608 (constant SQL)
    )


def downgrade() -> None:
    op.drop_table("daily_rollups")
