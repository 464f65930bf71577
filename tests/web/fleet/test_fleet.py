"""The Fleet page (both renderings), its forms, and /api/v1/fleet."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import PollRun
from app.models.audit import AuditEvent
from app.services.fleet import inventory
from app.services.fleet.fleet_file import parse_fleet_text
from tests.support.htmx import Rendering

OP_A = "op-0123456789abcdef0"
OP_B = "op-0fedcba9876543210"
HTMX = {"HX-Request": "true"}


def _seed(session: Session) -> None:
    inventory.apply_fleet_file(
        session,
        parse_fleet_text(
            f"outposts:\n  - id: {OP_A}\n    name: Plant 7\n    region: us-west-2\n"
            f"clusters:\n  - name: plant7-local\n    region: us-west-2\n    outpost: {OP_A}\n",
            "fleet.yaml",
        ),
    )
    inventory.add_outpost(session, outpost_id=OP_B, name="Plant 9", region="eu-central-1")
    now = dt.datetime.now(dt.UTC)
    session.add_all(
        [
            PollRun(
                job="discovery", scope="us-west-2", started_at=now, finished_at=now, outcome="ok", items=1
            ),
            PollRun(
                job="discovery",
                scope="eu-central-1",
                started_at=now,
                finished_at=now,
                outcome="error",
                error="AccessDeniedException: not authorized to perform eks:ListClusters",
            ),
        ]
    )
    session.flush()


def test_empty_state_explains_the_three_ways(client: TestClient, htmx: Rendering) -> None:
    response = client.get("/fleet", headers=htmx.headers)
    assert response.status_code == 200
    htmx.check(response)
    expected = "fleet/_content.html" if htmx.partial else "fleet/index.html"
    assert response.template.name == expected  # type: ignore[attr-defined]
    body = response.text
    assert "No Outposts yet" in body
    assert (
        "LIFELINE_FLEET_FILE" in body
        and "lifeline fleet add-outpost" in body
        and "lifeline fleet discover" in body
    )
    assert "discovery:\n  regions: [us-west-2]" in body
    assert ("<html" in body) is not htmx.partial


def test_page_lists_the_fleet_with_sources_and_discovery_errors(
    client: TestClient, session: Session, htmx: Rendering
) -> None:
    _seed(session)
    response = client.get("/fleet", headers=htmx.headers)
    assert response.status_code == 200
    htmx.check(response)
    context = response.context  # type: ignore[attr-defined]
    assert [o.outpost_id for o in context["outposts"]] == [OP_B, OP_A]
    assert [c.name for c in context["clusters"]] == ["plant7-local"]
    assert {r.scope: r.outcome for r in context["discovery_runs"]} == {
        "eu-central-1": "error",
        "us-west-2": "ok",
    }
    body = response.text
    assert 'class="badge src-file">file' in body and 'class="badge src-manual">manual' in body
    assert "AccessDeniedException: not authorized to perform eks:ListClusters" in body
    # File-managed rows can only change through the file; manual ones have a Remove button.
    assert "in fleet file" in body
    assert f"/fleet/outposts/{OP_B}/delete" in body and f"/fleet/outposts/{OP_A}/delete" not in body


def test_add_outpost_form_redirects(client: TestClient, session: Session) -> None:
    form = {"outpost_id": OP_A, "name": "Plant 7", "region": "us-west-2", "account_id": "123456789012"}
    response = client.post("/fleet/outposts", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].endswith("/fleet?notice=Added%20Outpost%20op-0123456789abcdef0.")
    outpost = inventory.get_outpost_or_none(session, OP_A)
    assert outpost is not None and (outpost.source, outpost.account_id) == ("manual", "123456789012")
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "fleet.outpost.add")).one()
    assert event.target == f"outpost:{OP_A}"

    page = client.get(response.headers["location"])
    assert "Added Outpost op-0123456789abcdef0." in page.text


def test_add_cluster_form_with_htmx_answers_hx_redirect(client: TestClient, session: Session) -> None:
    inventory.add_outpost(session, outpost_id=OP_A, name="Plant 7", region="us-west-2")
    form = {"name": "plant7-local", "region": "us-west-2", "outpost_id": OP_A}
    response = client.post("/fleet/clusters", data=form, headers=HTMX, follow_redirects=False)
    assert response.status_code == 204
    assert "/fleet?notice=" in response.headers["HX-Redirect"]
    cluster = inventory.get_cluster_or_none(session, "plant7-local", "us-west-2")
    assert cluster is not None and cluster.outpost is not None and cluster.outpost.outpost_id == OP_A


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"outpost_id": "op-12", "name": "x", "region": "us-west-2"}, "outpost_id", "is not an Outpost ID"),
        ({"outpost_id": OP_A, "name": "", "region": "us-west-2"}, "name", "must not be empty"),
        ({"outpost_id": OP_A, "name": "x", "region": "west"}, "region", "is not an AWS region name"),
        (
            {"outpost_id": OP_A, "name": "x", "region": "us-west-2", "account_id": "12ab"},
            "account_id",
            "12 digits",
        ),
    ],
)
def test_invalid_outpost_form_rerenders_with_422(
    client: TestClient,
    session: Session,
    htmx: Rendering,
    form: dict[str, str],
    field: str,
    message: str,
) -> None:
    response = client.post("/fleet/outposts", data=form, headers=htmx.headers)
    assert response.status_code == 422
    htmx.check(response)
    context = response.context  # type: ignore[attr-defined]
    assert message in context["outpost_form"].errors[field]
    assert context["outpost_form"].values["outpost_id"] == form["outpost_id"]
    expected = "fleet/_outpost_form.html" if htmx.partial else "fleet/index.html"
    assert response.template.name == expected  # type: ignore[attr-defined]
    assert 'class="field-error"' in response.text and 'aria-invalid="true"' in response.text
    assert inventory.list_outposts(session) == []


def test_duplicate_cluster_shows_a_form_error(client: TestClient, session: Session) -> None:
    inventory.add_cluster(session, name="c1", region="us-west-2")
    response = client.post("/fleet/clusters", data={"name": "c1", "region": "us-west-2"}, headers=HTMX)
    # A duplicate is a conflict: 409 on the page as on the API (it answered 422 here before, issue 9).
    assert response.status_code == 409
    assert "cluster c1 in us-west-2 already exists (source: manual)" in response.text


def test_remove_via_page(client: TestClient, session: Session) -> None:
    _seed(session)
    refused = client.post(f"/fleet/outposts/{OP_A}/delete", follow_redirects=False)
    assert refused.status_code == 409
    assert "managed by the fleet file" in refused.text
    assert inventory.get_outpost_or_none(session, OP_A) is not None

    removed = client.post(f"/fleet/outposts/{OP_B}/delete", follow_redirects=False)
    assert removed.status_code == 303
    assert inventory.get_outpost_or_none(session, OP_B) is None

    missing = client.post("/fleet/clusters/us-west-2/nope/delete", follow_redirects=False)
    assert missing.status_code == 404 and "no cluster nope in us-west-2" in missing.text


# ---------------------------------------------------------------- JSON API


def test_api_lists_the_fleet(client: TestClient, session: Session) -> None:
    _seed(session)
    data = client.get("/api/v1/fleet").json()
    outposts = {o["outpost_id"]: o for o in data["outposts"]}
    assert outposts[OP_A]["source"] == "file" and outposts[OP_A]["clusters"] == ["plant7-local"]
    assert outposts[OP_B]["source"] == "manual"
    cluster: dict[str, Any] = data["clusters"][0]
    assert cluster["name"] == "plant7-local" and cluster["outpost_id"] == OP_A
    assert cluster["health_issues"] == [] and cluster["has_certificate_authority"] is False
    assert {r["scope"]: r["outcome"] for r in data["discovery_runs"]} == {
        "eu-central-1": "error",
        "us-west-2": "ok",
    }
    assert data["fleet_file"] is None


def test_api_add_and_remove(client: TestClient, session: Session) -> None:
    created = client.post(
        "/api/v1/fleet/outposts", json={"outpost_id": OP_A, "name": "Plant 7", "region": "us-west-2"}
    )
    assert created.status_code == 201
    assert created.json()["source"] == "manual" and created.json()["account_id"] is None

    duplicate = client.post(
        "/api/v1/fleet/outposts", json={"outpost_id": OP_A, "name": "x", "region": "us-west-2"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["detail"] == f"Outpost {OP_A} already exists (source: manual)"

    cluster = client.post(
        "/api/v1/fleet/clusters", json={"name": "c1", "region": "us-west-2", "outpost_id": OP_A}
    )
    assert cluster.status_code == 201 and cluster.json()["outpost_id"] == OP_A

    wrong_region = client.post(
        "/api/v1/fleet/clusters", json={"name": "c2", "region": "eu-west-1", "outpost_id": OP_A}
    )
    assert wrong_region.status_code == 422
    assert wrong_region.json()["detail"][0]["loc"] == ["body", "outpost_id"]

    assert client.delete("/api/v1/fleet/clusters/us-west-2/c1").status_code == 204
    assert client.delete("/api/v1/fleet/clusters/us-west-2/c1").status_code == 404
    assert client.delete(f"/api/v1/fleet/outposts/{OP_A}").status_code == 204
    assert client.delete(f"/api/v1/fleet/outposts/{OP_A}").json() == {"detail": f"no Outpost {OP_A}"}
    assert inventory.list_outposts(session) == []


def test_api_validation_names_the_field(client: TestClient) -> None:
    response = client.post(
        "/api/v1/fleet/outposts", json={"outpost_id": "op-XYZ", "name": "x", "region": "us-west-2"}
    )
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "outpost_id"]
    assert "is not an Outpost ID" in error["msg"]


def test_api_refuses_to_remove_file_managed_entries(client: TestClient, session: Session) -> None:
    _seed(session)
    response = client.delete(f"/api/v1/fleet/outposts/{OP_A}")
    assert response.status_code == 409
    assert "managed by the fleet file" in response.json()["detail"]
    assert client.delete("/api/v1/fleet/clusters/us-west-2/plant7-local").status_code == 409


def test_rename_form(client: TestClient, session: Session, htmx: Rendering) -> None:
    _seed(session)
    page = client.get("/fleet").text
    rename_form = page[page.index('id="rename-form"') :].split("</form>")[0]
    # Only non-file Outposts can be renamed here.
    assert f'<option value="{OP_B}"' in rename_form and f'<option value="{OP_A}"' not in rename_form

    bad = client.post(
        "/fleet/outposts/edit", data={"outpost_id": OP_B, "account_id": "42"}, headers=htmx.headers
    )
    assert bad.status_code == 422
    htmx.check(bad)
    assert "&#39;42&#39; is not an AWS account ID" in bad.text
    expected = "fleet/_rename_form.html" if htmx.partial else "fleet/index.html"
    assert bad.template.name == expected  # type: ignore[attr-defined]

    ok = client.post(
        "/fleet/outposts/edit",
        data={"outpost_id": OP_B, "name": "Plant 9, hall 2", "account_id": "123456789012"},
        headers=htmx.headers,
        follow_redirects=False,
    )
    assert ok.status_code == (204 if htmx.partial else 303)
    outpost = inventory.get_outpost_or_none(session, OP_B)
    assert outpost is not None and (outpost.name, outpost.account_id) == ("Plant 9, hall 2", "123456789012")


def test_api_patch_outpost(client: TestClient, session: Session) -> None:
    _seed(session)
    response = client.patch(f"/api/v1/fleet/outposts/{OP_B}", json={"account_id": "123456789012"})
    assert response.status_code == 200
    assert response.json()["account_id"] == "123456789012" and response.json()["name"] == "Plant 9"
    cleared = client.patch(f"/api/v1/fleet/outposts/{OP_B}", json={"account_id": None})
    assert cleared.json()["account_id"] is None
    assert client.patch(f"/api/v1/fleet/outposts/{OP_A}", json={"name": "x"}).status_code == 409
    invalid = client.patch(f"/api/v1/fleet/outposts/{OP_B}", json={"name": "  "})
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["body", "name"]


def _roles(route: Any) -> set[str]:
    found: set[str] = set()
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        role = getattr(dep.call, "__lifeline_role__", None)
        if role is not None:
            found.add(str(role))
        stack.extend(dep.dependencies)
    return found


def test_viewers_see_and_only_admins_change() -> None:
    from app.web.fleet import router

    routes = {(method, route.path): _roles(route) for route in router.routes for method in route.methods}
    assert routes == {
        ("GET", "/fleet"): {"viewer"},
        ("POST", "/fleet/outposts"): {"admin"},
        ("POST", "/fleet/outposts/edit"): {"admin"},
        ("POST", "/fleet/clusters"): {"admin"},
        ("POST", "/fleet/outposts/{outpost_id}/delete"): {"admin"},
        ("POST", "/fleet/clusters/{region}/{name}/delete"): {"admin"},
        ("GET", "/api/v1/fleet"): {"viewer"},
        ("POST", "/api/v1/fleet/outposts"): {"admin"},
        ("PATCH", "/api/v1/fleet/outposts/{outpost_id}"): {"admin"},
        ("DELETE", "/api/v1/fleet/outposts/{outpost_id}"): {"admin"},
        ("POST", "/api/v1/fleet/clusters"): {"admin"},
        ("DELETE", "/api/v1/fleet/clusters/{region}/{name}"): {"admin"},
    }
