"""The groups a credential may carry (certificate O): an allow-list admins keep on the Credential
policy page (issue 12), stored in `policies`, with `LIFELINE_CREDENTIAL_ALLOWED_GROUPS` the default
while no admin has saved one.

Storage without a column of its own: a marker row `credential_allowed_groups` says the admins' list
is in force (so an empty list, "no group at all", differs from "never set"), and each allowed group
is a row `credential_group:<name>`. The key column is 64 characters, which bounds a group's length.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.models.account import Policy
from app.services.audit import Actor, record_audit
from app.services.credentials.intake import check_name
from app.services.errors import InvalidInput

MARKER = "credential_allowed_groups"
PREFIX = "credential_group:"
MAX_LENGTH = 64 - len(PREFIX)
FIELD = "groups"


@dataclass(frozen=True)
class AllowedGroups:
    groups: tuple[str, ...]
    # "admin" (a list saved on the page) or "setting" (nothing saved: the configuration decides).
    source: str
    updated_by: str | None = None
    updated_at: dt.datetime | None = None


def allowed_groups(session: Session, *, setting: Sequence[str]) -> AllowedGroups:
    """The list issuing checks a requested group against: the admins' when saved, else the setting."""
    marker = session.get(Policy, MARKER)
    if marker is None or not marker.enabled:
        return AllowedGroups(tuple(setting), "setting")
    rows = session.scalars(select(Policy.key).where(Policy.key.startswith(PREFIX, autoescape=True)))
    groups = tuple(sorted(key.removeprefix(PREFIX) for key in rows))
    return AllowedGroups(groups, "admin", marker.updated_by, marker.updated_at)


def parse_groups(text: str) -> list[str]:
    """One group per line (blank lines skipped, duplicates once); InvalidInput naming `groups`."""
    for char in text:
        if char not in "\r\n" and unicodedata.category(char) in ("Cc", "Cf"):
            raise InvalidInput(
                f"control characters are not allowed in a group (found U+{ord(char):04X})", field=FIELD
            )
    groups: list[str] = []
    for line in text.split("\n"):
        group = line.strip()
        if not group or group in groups:
            continue
        if len(group) > MAX_LENGTH:
            raise InvalidInput(f"group {group[:20]!r}… is longer than {MAX_LENGTH} characters", field=FIELD)
        check_name(group, FIELD, "group")
        groups.append(group)
    return groups


def set_allowed_groups(
    session: Session, groups: Sequence[str], *, setting: Sequence[str], actor: Actor, now: dt.datetime
) -> AllowedGroups:
    """Replace the allow-list with `groups` (checked with `parse_groups`), audited with before/after."""
    groups = parse_groups("\n".join(groups))
    before = allowed_groups(session, setting=setting)
    session.execute(delete(Policy).where(Policy.key.startswith(PREFIX, autoescape=True)))
    marker = session.get(Policy, MARKER)
    if marker is None:
        session.add(Policy(key=MARKER, enabled=True, updated_at=now, updated_by=actor.name[:64]))
    else:
        marker.enabled, marker.updated_at, marker.updated_by = True, now, actor.name[:64]
    for group in groups:
        session.add(Policy(key=PREFIX + group, enabled=True, updated_at=now, updated_by=actor.name[:64]))
    session.flush()
    after = allowed_groups(session, setting=setting)
    _audit(session, "policy.credential_groups_set", before, after, actor, now)
    return after


def reset_allowed_groups(
    session: Session, *, setting: Sequence[str], actor: Actor, now: dt.datetime
) -> AllowedGroups:
    """Forget the admins' list: the setting decides again (audited with before/after)."""
    before = allowed_groups(session, setting=setting)
    session.execute(
        delete(Policy).where((Policy.key == MARKER) | Policy.key.startswith(PREFIX, autoescape=True))
    )
    session.flush()
    after = allowed_groups(session, setting=setting)
    _audit(session, "policy.credential_groups_reset", before, after, actor, now)
    return after


def _audit(
    session: Session, action: str, before: AllowedGroups, after: AllowedGroups, actor: Actor, now: dt.datetime
) -> None:
    record_audit(
        session,
        actor=actor,
        action=action,
        target=f"policy:{MARKER}",
        details={
            "before": list(before.groups),
            "before_source": before.source,
            "after": list(after.groups),
            "after_source": after.source,
        },
        now=now,
    )
