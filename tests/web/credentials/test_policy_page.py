"""The Credential policy page (issue 12): admins keep the groups a credential may carry; the setting
is the default until they save a list; changes need a recent password and are audited."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.account import Policy
from app.models.audit import AuditEvent
from app.services.credentials import groups
from tests.fixtures.accounts import Clock

DEFAULT = ["lifeline:breakglass"]


def _events(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _stored(session: Session) -> groups.AllowedGroups:
    session.expire_all()
    return groups.allowed_groups(session, setting=DEFAULT)


def test_an_admin_replaces_the_default_list_and_it_is_audited(client_as: Any, session: Session) -> None:
    admin = client_as("admin", "root")
    page = admin.get("/credential-policy")
    assert page.status_code == 200
    assert page.template.name == "credentials/policy.html"  # type: ignore[attr-defined]
    assert page.context["allowed"] == groups.AllowedGroups(("lifeline:breakglass",), "setting")  # type: ignore[attr-defined]
    assert "nobody has saved a list here yet" in page.text
    assert 'href="/credential-policy"' in page.text  # the navigation links it for admins

    saved = admin.post(
        "/credential-policy/groups",
        data={"groups": "oncall-view\r\nlifeline:breakglass\r\n\r\noncall-view\r\n"},
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/credential-policy?done=saved"
    state = _stored(session)
    assert state.groups == ("lifeline:breakglass", "oncall-view") and state.source == "admin"
    assert state.updated_by == "root"
    [event] = _events(session, "policy.credential_groups_set")
    assert event.actor == "root" and event.target == "policy:credential_allowed_groups"
    assert event.details["before"] == ["lifeline:breakglass"] and event.details["before_source"] == "setting"
    assert event.details["after"] == ["lifeline:breakglass", "oncall-view"]
    assert "set by root" in admin.get("/credential-policy").text

    # An empty list is a decision too: no group at all, not "back to the default".
    assert admin.post("/credential-policy/groups", data={"groups": ""}).status_code == 200
    emptied = _stored(session)
    assert (emptied.groups, emptied.source) == ((), "admin")
    # Reset: the setting decides again, and the rows are gone.
    reset = admin.post("/credential-policy/groups/reset", follow_redirects=False)
    assert reset.status_code == 303
    assert _stored(session).source == "setting"
    assert session.scalars(select(Policy.key).where(Policy.key.like("credential_%"))).all() == []
    [event] = _events(session, "policy.credential_groups_reset")
    assert event.details["before"] == [] and event.details["after"] == DEFAULT


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_only_admins_see_or_change_the_list(client_as: Any, session: Session, role: str) -> None:
    caller = client_as(role)
    assert caller.get("/credential-policy", follow_redirects=False).status_code == 403
    assert 'href="/credential-policy"' not in caller.get("/").text
    for path in ("/credential-policy/groups", "/credential-policy/groups/reset"):
        refused = caller.post(path, data={"groups": "cluster-admins"}, follow_redirects=False)
        assert refused.status_code == 403
    assert _stored(session).source == "setting"
    assert _events(session, "policy.credential_groups_set") == []


def test_a_change_needs_a_recent_password(
    client_as: Any, session: Session, app: FastAPI, clock: Clock
) -> None:
    admin = client_as("admin", "root")
    clock.advance(minutes=app.state.settings.reauth_minutes + 1)
    assert admin.get("/credential-policy").status_code == 200  # reading does not
    stale = admin.post(
        "/credential-policy/groups",
        data={"groups": "cluster-admins"},
        headers={"Referer": "http://testserver/credential-policy"},
        follow_redirects=False,
    )
    assert stale.status_code == 303 and stale.headers["location"] == "/reauth?next=/credential-policy"
    assert admin.post("/credential-policy/groups/reset", follow_redirects=False).status_code == 303
    assert _stored(session).source == "setting"
    assert _events(session, "policy.credential_groups_set") == []
    assert _events(session, "policy.credential_groups_reset") == []


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("oncall\nsystem:masters", "system:masters is refused"),
        ("system:nodes", "reserved 'system:' namespace"),
        ("oncall\tview", "control characters are not allowed in a group (found U+0009)"),
        ("oncall\u202eweiv", "control characters are not allowed in a group (found U+202E)"),
        ("x" * (groups.MAX_LENGTH + 1), f"longer than {groups.MAX_LENGTH} characters"),
        ("on call", "must be 2-128 characters"),
    ],
)
def test_a_bad_group_is_refused_naming_the_field(
    client_as: Any, session: Session, typed: str, said: str
) -> None:
    admin = client_as("admin", "root")
    refused = admin.post("/credential-policy/groups", data={"groups": typed})
    assert refused.status_code == 422
    errors = refused.context["f"].errors  # type: ignore[attr-defined]
    assert list(errors) == ["groups"] and said in errors["groups"]
    assert refused.context["f"].values["groups"] == typed  # type: ignore[attr-defined]
    assert 'id="allowed-groups-error"' in refused.text
    assert _stored(session).source == "setting"
    assert _events(session, "policy.credential_groups_set") == []


def test_a_nul_byte_is_refused_at_the_edge_naming_the_field(client_as: Any, session: Session) -> None:
    admin = client_as("admin", "root")
    refused = admin.post("/credential-policy/groups", data={"groups": "oncall\x00"})
    assert refused.status_code == 422 and "groups contains the control character U+0000" in refused.text
    assert _stored(session).source == "setting"


def test_the_longest_group_fits_the_key_column(client_as: Any, session: Session) -> None:
    # PostgreSQL enforces the 64-character key: the longest allowed group must be stored as typed.
    admin = client_as("admin", "root")
    longest = "g" * groups.MAX_LENGTH
    assert admin.post("/credential-policy/groups", data={"groups": longest}).status_code == 200
    assert _stored(session).groups == (longest,)
