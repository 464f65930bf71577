"""a per-Outpost mark of where the ordinary backfill must start again after a failed request

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UTCDateTime

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column needs no table rebuild on SQLite: plain ALTER TABLE ... ADD COLUMN.
    op.add_column("outposts", sa.Column("backfill_from", UTCDateTime()))


def downgrade() -> None:
    with op.batch_alter_table("outposts") as batch:
        batch.drop_column("backfill_from")
