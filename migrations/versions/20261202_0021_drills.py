"""disconnect drills: drills, their checks and timeline; a rule's behaviour during a drill

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UTCDateTime

revision: str = "0021"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drills",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("outpost_pk", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("ticket_ref", sa.String(200)),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("planned_start", UTCDateTime(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("exclude_from_uptime", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("ended_at", UTCDateTime()),
        sa.Column("started_by", sa.String(150)),
        sa.Column("ended_by", sa.String(150)),
        sa.Column("abort_reason", sa.Text()),
        sa.Column("outcome", sa.String(16)),
        sa.Column("follow_ups", sa.JSON(), nullable=False),
        sa.Column("last_checked_at", UTCDateTime()),
        sa.Column("created_by", sa.String(150), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drills")),
        sa.ForeignKeyConstraint(
            ["outpost_pk"], ["outposts.id"], name=op.f("fk_drills_outpost_pk_outposts"), ondelete="CASCADE"
        ),
    )
    op.create_index("ix_drills_outpost_state", "drills", ["outpost_pk", "state"])
    op.create_table(
        "drill_checks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("drill_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("cluster_pk", sa.Integer()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("baseline", sa.JSON(), nullable=False),
        sa.Column("first_checked_at", UTCDateTime()),
        sa.Column("checked_at", UTCDateTime()),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("confirmed_by", sa.String(150)),
        sa.Column("confirmed_at", UTCDateTime()),
        sa.Column("note", sa.Text()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_checks")),
        sa.UniqueConstraint(
            "drill_id", "item", "subject", name=op.f("uq_drill_checks_drill_id_item_subject")
        ),
        sa.ForeignKeyConstraint(
            ["drill_id"], ["drills.id"], name=op.f("fk_drill_checks_drill_id_drills"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["cluster_pk"],
            ["clusters.id"],
            name=op.f("fk_drill_checks_cluster_pk_clusters"),
            ondelete="SET NULL",
        ),
    )
    op.create_index(op.f("ix_drill_checks_drill_id"), "drill_checks", ["drill_id"])
    op.create_table(
        "drill_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("drill_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(150), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_events")),
        sa.ForeignKeyConstraint(
            ["drill_id"], ["drills.id"], name=op.f("fk_drill_events_drill_id_drills"), ondelete="CASCADE"
        ),
    )
    op.create_index(op.f("ix_drill_events_drill_id"), "drill_events", ["drill_id"])
    with op.batch_alter_table("notification_rules") as batch:
        batch.add_column(sa.Column("during_drill", sa.String(8), nullable=False, server_default="label"))


def downgrade() -> None:
    with op.batch_alter_table("notification_rules") as batch:
        batch.drop_column("during_drill")
    op.drop_index(op.f("ix_drill_events_drill_id"), table_name="drill_events")
    op.drop_table("drill_events")
    op.drop_index(op.f("ix_drill_checks_drill_id"), table_name="drill_checks")
    op.drop_table("drill_checks")
    op.drop_index("ix_drills_outpost_state", table_name="drills")
    op.drop_table("drills")
