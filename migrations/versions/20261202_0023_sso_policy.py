"""single sign-on follow-up: admin-set policies, the ID token kept for sign-out, IdP auth time

Revision ID: 0023
Revises: 0020
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UTCDateTime

revision: str = "0023"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_policies")),
    )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("id_token_sealed", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("id_token_sealed")
    op.drop_table("policies")
