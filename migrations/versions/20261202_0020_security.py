"""security: credentials outlive nothing they protect; ids are never reused

Removing a cluster no longer cascades to its credentials (ON DELETE RESTRICT: the service refuses
while live credentials exist), and on SQLite the credential tables get AUTOINCREMENT so a deleted
row's id is never handed to a new one (old audit rows keep pointing at the credential they named).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHILDREN = ("credential_events", "credential_downloads")


def _rebuild(autoincrement: bool, cluster_ondelete: str) -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        # SQLite rebuilds a table by dropping it, and with foreign keys on the drop cascades to the
        # children: keep their rows aside and put them back once every table is rebuilt.
        for child in CHILDREN:
            op.execute(f"CREATE TEMP TABLE keep_{child} AS SELECT * FROM {child}")  # noqa: S608 (constant names)
    kwargs = {"recreate": "always", "table_kwargs": {"sqlite_autoincrement": autoincrement}} if sqlite else {}
    with op.batch_alter_table("credentials", **kwargs) as batch:  # type: ignore[arg-type]
        batch.drop_constraint(op.f("fk_credentials_cluster_pk_clusters"), type_="foreignkey")
        batch.create_foreign_key(
            op.f("fk_credentials_cluster_pk_clusters"),
            "clusters",
            ["cluster_pk"],
            ["id"],
            ondelete=cluster_ondelete,
        )
    if sqlite:
        for child in CHILDREN:
            with op.batch_alter_table(child, **kwargs) as batch:  # type: ignore[arg-type]
                pass
            op.execute(f"DELETE FROM {child}")  # noqa: S608 (constant names)
            op.execute(f"INSERT INTO {child} SELECT * FROM keep_{child}")  # noqa: S608 (constant names)
            op.execute(f"DROP TABLE keep_{child}")


def upgrade() -> None:
    _rebuild(autoincrement=True, cluster_ondelete="RESTRICT")


def downgrade() -> None:
    _rebuild(autoincrement=False, cluster_ondelete="CASCADE")
