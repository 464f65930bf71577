"""Column types for migrations, frozen here so migrations never import `app.models`."""

from sqlalchemy import DateTime


def UTCDateTime() -> DateTime:
    """Timezone-aware datetime; the ORM's UTCDateTime decorator maps to the same column type."""
    return DateTime(timezone=True)
