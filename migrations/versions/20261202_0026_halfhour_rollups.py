"""half-hour connectivity rollups for the 24-hour strip, kept at write time and backfilled from the
raw samples

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UTCDateTime

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One set-based INSERT ... SELECT per dialect: the half-hour of a sample is its hour plus 0 or 30
# minutes; SQLite stores datetimes as text in SQLAlchemy's format, which this strftime reproduces.
_HALF_HOUR = {
    "postgresql": (
        "(date_trunc('hour', ts AT TIME ZONE 'UTC')"
        " + floor(extract(minute FROM ts AT TIME ZONE 'UTC') / 30) * interval '30 minutes')"
        " AT TIME ZONE 'UTC'"
    ),
    "sqlite": (
        "strftime('%Y-%m-%d %H:', ts)"
        " || CASE WHEN CAST(strftime('%M', ts) AS INTEGER) < 30 THEN '00:00.000000' ELSE '30:00.000000' END"
    ),
}


def backfill_sql(dialect: str) -> str:
    """The INSERT that fills halfhour_rollups from connected_samples (the benchmarks reuse it)."""
    half = _HALF_HOUR[dialect]
    return f"""
        INSERT INTO halfhour_rollups (outpost_pk, start, connected_seconds, known_seconds, min_value, samples)
        SELECT outpost_pk, {half}, SUM(value * period_seconds), SUM(period_seconds), MIN(value), COUNT(*)
        FROM connected_samples
        GROUP BY outpost_pk, {half}
        """  # noqa: S608 (constant SQL)


def upgrade() -> None:
    op.create_table(
        "halfhour_rollups",
        sa.Column("outpost_pk", sa.Integer(), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("connected_seconds", sa.Float(), nullable=False),
        sa.Column("known_seconds", sa.Float(), nullable=False),
        sa.Column("min_value", sa.Float()),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("outpost_pk", "start", name=op.f("pk_halfhour_rollups")),
        sa.ForeignKeyConstraint(
            ["outpost_pk"],
            ["outposts.id"],
            name=op.f("fk_halfhour_rollups_outpost_pk_outposts"),
            ondelete="CASCADE",
        ),
    )
    op.execute(backfill_sql(op.get_bind().dialect.name))


def downgrade() -> None:
    op.drop_table("halfhour_rollups")
