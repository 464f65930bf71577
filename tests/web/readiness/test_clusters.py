"""Cluster pages (both renderings), the forms (audited), and /api/v1/clusters with JSON/CSV/SARIF."""

from __future__ import annotations

import csv
import datetime as dt
import io

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Cluster
from app.models.audit import AuditEvent
from app.models.readiness import ReadinessExemption
from app.services.readiness.catalogue import evaluate
from app.services.readiness.checks_capacity import node_capacities
from app.services.readiness.model import CheckContext
from app.services.readiness.records import PollResult, record_poll
from app.services.readiness.snapshot import snapshot_from_objects
from tests.factories import LOCAL_REGISTRY, failing_cluster, pod
from tests.fixtures.readiness import DEMO_CLUSTER, seed_demo_cluster
from tests.support.htmx import Rendering

HTMX = {"HX-Request": "true"}


def seed(session: Session, name: str = "plant7-local", *, check: str = "iam-dependent-workloads") -> Cluster:
    cluster = Cluster(name=name, region="us-west-2", status="ACTIVE", source="manual")
    session.add(cluster)
    session.flush()
    objects = failing_cluster(check)
    objects.append(pod("web-5c7f-1", "shop", "node-1", f"{LOCAL_REGISTRY}/shop/web:1.2",
                       owner=("ReplicaSet", "web-5c7f"), cpu="500m"))  # fmt: skip
    snapshot = snapshot_from_objects(objects, name)
    context = CheckContext(local_registries=(LOCAL_REGISTRY,))
    base = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    for step, reachable in enumerate((True, False, True)):
        record_poll(
            session,
            cluster,
            PollResult(
                polled_at=base + dt.timedelta(hours=step),
                auth_path="iam" if reachable else "none",
                reachable=reachable,
                findings=tuple(evaluate(snapshot, context, attestations=None)) if reachable else (),
                nodes=tuple(n.as_dict() for n in node_capacities(snapshot)),
                facts={"endpoint": "https://abc.eks.amazonaws.com", "eni_ips": ["127.0.1.10"],
                       "hosts_lines": ["127.0.1.10 abc.eks.amazonaws.com"], "auth": {"iam": "ok"}},
                error=None if reachable else "connection refused",
                pods=1,
            ),
        )  # fmt: skip
    return cluster


def test_empty_state(client: TestClient, htmx: Rendering) -> None:
    response = client.get("/clusters", headers=htmx.headers)
    assert response.status_code == 200
    htmx.check(response)
    assert "No clusters yet" in response.text and "lifeline check --manifests" in response.text
    assert ("<html" in response.text) == (not htmx.partial)


def test_list_shows_score_auth_path_and_worst_findings(
    client: TestClient, session: Session, htmx: Rendering
) -> None:
    seed(session)
    response = client.get("/clusters", headers=htmx.headers)
    assert response.status_code == 200
    htmx.check(response)
    assert "plant7-local" in response.text
    assert "Workloads need STS credentials" in response.text  # a worst finding, titled by its problem
    # ... and its badge says the status, not only the severity (a red "high" alone reads as a level).
    assert 'class="badge fail">fail · high</span> Workloads need STS credentials' in response.text
    assert ">IAM<" in response.text


def test_cluster_page_has_findings_nodes_chart_and_forms(client: TestClient, session: Session) -> None:
    seed(session)
    response = client.get("/clusters/plant7-local")
    assert response.status_code == 200
    page = response.text
    assert "Deployment" in page and "uploader" in page  # evidence
    assert "Fix:" in page and "AWS guide:" in page
    assert 'class="capbar"' in page and "node-1" in page  # capacity bars
    assert "<polyline" in page and 'class="gap"' in page  # history with the unreachable poll
    assert 'name="csrf_token"' in page
    assert "127.0.1.10 abc.eks.amazonaws.com" in page
    assert "<script>" not in page  # CSP: no inline scripts


def test_filters_render_the_partial(client: TestClient, session: Session, htmx: Rendering) -> None:
    seed(session)
    response = client.get("/clusters/plant7-local?status=fail", headers=htmx.headers)
    assert response.status_code == 200 and ("<html" in response.text) is not htmx.partial
    htmx.check(response)
    assert "Workloads need STS credentials" in response.text
    assert "Backups do not rely on EBS snapshots" not in response.text  # a passing check, filtered out
    response = client.get("/clusters/plant7-local?status=pass&q=snapshot", headers=htmx.headers)
    htmx.check(response)
    assert "Backups do not rely on EBS snapshots" in response.text


def test_unknown_cluster_is_404(client: TestClient) -> None:
    assert client.get("/clusters/nope").status_code == 404
    assert client.get("/api/v1/clusters/nope").json() == {"detail": "no cluster 'nope'"}


def test_api_list_detail_and_findings(client: TestClient, session: Session) -> None:
    seed(session)
    listing = client.get("/api/v1/clusters").json()
    assert listing[0]["name"] == "plant7-local" and listing[0]["auth_path"] == "iam"
    assert 0 <= listing[0]["score"] < 100
    detail = client.get("/api/v1/clusters/plant7-local").json()
    assert len(detail["history"]) == 3 and detail["history"][1]["score"] is None
    assert {n["name"] for n in detail["nodes"]} == {"node-1", "node-2", "node-3"}
    findings = client.get("/api/v1/clusters/plant7-local/findings").json()
    by_id = {f["check_id"]: f for f in findings}
    assert by_id["iam-dependent-workloads"]["status"] == "fail"
    assert {"kind": "Deployment", "namespace": "shop", "name": "uploader"}.items() <= (
        by_id["iam-dependent-workloads"]["evidence"][0].items()
    )
    assert by_id["etcd-backups"]["status"] == "warn"  # attestations appear with the findings
    only_fail = client.get("/api/v1/clusters/plant7-local/findings?status=fail").json()
    assert {f["status"] for f in only_fail} == {"fail"}


def test_csv_and_sarif_exports(client: TestClient, session: Session) -> None:
    seed(session)
    response = client.get("/api/v1/clusters/plant7-local/findings?format=csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert any(r["check_id"] == "iam-dependent-workloads" and r["name"] == "uploader" for r in rows)
    sarif = client.get("/api/v1/clusters/plant7-local/findings?format=sarif").json()
    assert sarif["version"] == "2.1.0"
    assert any(r["ruleId"] == "iam-dependent-workloads" for r in sarif["runs"][0]["results"])
    assert client.get("/api/v1/clusters/plant7-local/findings?format=xml").status_code == 422


def test_exemption_form_accepts_the_risk_and_is_audited(client: TestClient, session: Session) -> None:
    cluster = seed(session)
    expires = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    form = {"check_id": "iam-dependent-workloads", "target": "", "reason": "uploader moves to static keys",
            "expires_on": expires}  # fmt: skip
    response = client.post(
        "/clusters/plant7-local/exemptions", data=form, headers=HTMX, follow_redirects=False
    )
    assert response.status_code == 204 and "HX-Redirect" in response.headers
    findings = {f["check_id"]: f for f in client.get("/api/v1/clusters/plant7-local/findings").json()}
    accepted = findings["iam-dependent-workloads"]
    assert (
        accepted["status"] == "accepted"
        and accepted["exemption"]["reason"] == "uploader moves to static keys"
    )
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "readiness.exempt")).one()
    assert (
        event.target == "cluster:us-west-2/plant7-local"
        and event.details["check_id"] == "iam-dependent-workloads"
    )
    exemption = session.scalars(select(ReadinessExemption)).one()
    removed = client.post(f"/clusters/plant7-local/exemptions/{exemption.id}/delete", follow_redirects=False)
    assert removed.status_code == 303
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "readiness.exemption_removed")).one()
    assert cluster.id


def test_invalid_exemption_rerenders_with_422(client: TestClient, session: Session) -> None:
    seed(session)
    form = {"check_id": "iam-dependent-workloads", "reason": "no", "expires_on": "2001-01-01"}
    response = client.post("/clusters/plant7-local/exemptions", data=form, headers=HTMX)
    assert response.status_code == 422
    assert "at least 10 characters" in response.text and "must be in the future" in response.text
    assert session.scalars(select(ReadinessExemption)).all() == []


def test_attestation_and_horizon_forms(client: TestClient, session: Session) -> None:
    seed(session)
    expires = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    form = {"topic": "etcd-backups", "statement": "nightly etcdctl snapshots to nas-7", "expires_on": expires}
    assert (
        client.post("/clusters/plant7-local/attestations", data=form, follow_redirects=False).status_code
        == 303
    )
    findings = {f["check_id"]: f for f in client.get("/api/v1/clusters/plant7-local/findings").json()}
    assert findings["etcd-backups"]["status"] == "pass"
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "readiness.attest")).one()
    response = client.post(
        "/clusters/plant7-local/horizon", data={"horizon_hours": "720"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert client.get("/api/v1/clusters/plant7-local").json()["horizon_hours"] == 720
    bad = client.post("/clusters/plant7-local/horizon", data={"horizon_hours": "soon"}, headers=HTMX)
    assert bad.status_code == 422 and "whole number" in bad.text


def test_cluster_page_leads_with_a_summary_and_groups_by_status_then_severity(
    client: TestClient, session: Session
) -> None:
    seed(session)
    export_before = client.get("/api/v1/clusters/plant7-local/findings?format=csv").text
    page = client.get("/clusters/plant7-local").text
    summary, findings = page.index('id="summary"'), page.index('id="findings"')
    assert summary < findings and summary < page.index('id="access-h"')  # the summary comes first
    head = page[summary:findings]
    assert "failing" in head and "What to do first" in head
    assert 'data-check="iam-dependent-workloads"' in head  # the failing high check is a first action
    groups = [g.split('"')[0] for g in page.split('data-group="')[1:]]
    status_rank = {"fail": 0, "warn": 1, "unknown": 2, "accepted": 3, "pass": 4}
    severity_rank = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    keys = [(status_rank[g.split("-")[0]], severity_rank[g.split("-")[1]]) for g in groups]
    assert keys == sorted(keys) and groups[0].startswith("fail-") and groups[-1].startswith("pass-")
    # A failing check is open; a passing one is folded (a <details> without `open`).
    failing = page[page.rindex("<details", 0, page.index('id="finding-iam-dependent-workloads"')) :]
    assert failing.split(">", 1)[0].count(" open") == 1
    passing = page[page.rindex("<details", 0, page.index('id="finding-ebs-snapshots"')) :]
    assert " open" not in passing.split(">", 1)[0]
    # The exports are untouched by the page's new layout.
    assert client.get("/api/v1/clusters/plant7-local/findings?format=csv").text == export_before


def test_passing_checks_fold_into_one_disclosure_that_a_pass_filter_opens(
    client: TestClient, session: Session, htmx: Rendering
) -> None:
    seed_demo_cluster(session)
    url = f"/clusters/{DEMO_CLUSTER}"
    page = client.get(url, headers=htmx.headers).text
    assert page.count('class="passing-checks"') == 1
    passing = page[page.index('<details class="passing-checks"') :]
    assert passing.split(">", 1)[0].split('class="passing-checks"')[1].strip() == ""  # closed
    assert "15 checks pass</summary>" in passing
    assert passing.count('class="finding status-pass"') == 15 and 'status-fail"' not in passing
    for query in ("status=pass", "check=ebs-snapshots", "q=snapshot"):
        filtered = client.get(f"{url}?{query}", headers=htmx.headers).text
        assert '<details class="passing-checks" open>' in filtered, query
    if not htmx.partial:  # eight nodes fold behind a count; the hosts lines fold while reachable
        assert '<details class="nodes-more" >' in page and "8 nodes: all Ready" in page
        assert '<details class="hosts-lines" >' in page
