"""One Alembic tree: upgrade to head, down to base and up again, on the database under test."""

from __future__ import annotations

from sqlalchemy import inspect

from app import migrate
from app.db import create_db_engine
from app.models import Base
from tests.conftest import DatabaseServer


def test_upgrade_downgrade_upgrade(database_server: DatabaseServer) -> None:
    url = database_server.create("migrations")
    migrate.upgrade(url)
    engine = create_db_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        engine.dispose()
        migrate.downgrade(url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        engine.dispose()
        migrate.upgrade(url)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_models_match_migrations(database_url: str) -> None:
    """Autogenerate finds nothing to do: the ORM and the migration tree agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_db_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
