"""uptime per Outpost and window, written by each poll in the transaction of its samples

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03

No backfill: until the first poll after the upgrade writes them, readers compute uptime from the
rollups as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UTCDateTime

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "uptime_windows",
        sa.Column("outpost_pk", sa.Integer(), nullable=False),
        sa.Column("window_key", sa.String(length=8), nullable=False),
        sa.Column("as_of", UTCDateTime(), nullable=False),
        sa.Column("valid_until", UTCDateTime(), nullable=False),
        sa.Column("connected_seconds", sa.Float(), nullable=False),
        sa.Column("known_seconds", sa.Float(), nullable=False),
        sa.Column("ratio", sa.Float()),
        sa.PrimaryKeyConstraint("outpost_pk", "window_key", name=op.f("pk_uptime_windows")),
        sa.ForeignKeyConstraint(
            ["outpost_pk"],
            ["outposts.id"],
            name=op.f("fk_uptime_windows_outpost_pk_outposts"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_uptime_windows_window_key_ratio", "uptime_windows", ["window_key", "ratio"])


def downgrade() -> None:
    op.drop_index("ix_uptime_windows_window_key_ratio", table_name="uptime_windows")
    op.drop_table("uptime_windows")
