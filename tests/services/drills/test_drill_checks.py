"""A drill on the simulator: every check passes for a well-prepared cluster, and each one fails for
the right reason when its precondition is broken."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.models import Credential, Drill, DrillCheck, ReadinessAttestation
from app.services.drills import lifecycle, runner
from app.services.drills.checks import DISCONNECT_GRACE
from tests.fixtures.drills import RESPONDER, DrillSite

pytestmark = pytest.mark.usefixtures("aws_endpoint")


def _checks(site: DrillSite, drill_id: int) -> dict[tuple[str, str], DrillCheck]:
    site.session.expire_all()
    rows = site.session.scalars(select(DrillCheck).where(DrillCheck.drill_id == drill_id))
    return {(c.item, c.subject): c for c in rows}


def _by_item(site: DrillSite, drill_id: int) -> dict[str, list[DrillCheck]]:
    found: dict[str, list[DrillCheck]] = {}
    for (item, _subject), check in _checks(site, drill_id).items():
        found.setdefault(item, []).append(check)
    return found


def _after_grace(now: dt.datetime) -> dt.datetime:
    return now + DISCONNECT_GRACE + dt.timedelta(seconds=30)


def test_well_prepared_cluster_passes_every_check_and_is_attested(drill_site: DrillSite) -> None:
    site = drill_site
    credential_id = site.issue_breakglass()
    site.issue_fallback()
    now = dt.datetime.now(dt.UTC)
    site.cut_off(now)
    drill_id = site.start(now)

    runner.run_round(site.settings, site.factory, drill_id, now=_after_grace(now))
    found = _by_item(site, drill_id)

    automatic = [
        "disconnect",
        "iam_refused",
        "breakglass",
        "lifeline_reads",
        "issue_new",
        "nodes_workloads",
        "predictions",
    ]
    for item in automatic:
        assert found[item], item
        for check in found[item]:
            assert check.status == "pass", (item, check.subject, check.summary, check.evidence)
    # Every path of the credential: the endpoint and the control-plane IP with tls-server-name.
    subjects = sorted(c.subject for c in found["breakglass"])
    assert subjects == [
        f"plant9-local #{credential_id} alice@breakglass via IP 127.0.0.1 (tls-server-name 127.0.0.1)",
        f"plant9-local #{credential_id} alice@breakglass via endpoint",
    ]
    assert "401" in found["iam_refused"][0].summary
    assert "2 nodes read as lifeline" in found["lifeline_reads"][0].summary
    # The credential the drill issued is revoked again.
    issued = site.session.scalars(
        select(Credential).where(Credential.username.like("lifeline-drill-%"))
    ).all()
    assert [c.status for c in issued] == ["revoked"]
    # What only a person can confirm waits for them.
    assert [c.status for c in found["local_dns"] + found["laptop_kubeconfig"]] == ["confirm", "confirm"]

    drill = site.session.get(Drill, drill_id)
    assert drill is not None
    for check in found["local_dns"] + found["laptop_kubeconfig"]:
        lifecycle.confirm_check(
            site.session, drill, check.id, ok=True, note="nslookup ok", actor=RESPONDER, now=_after_grace(now)
        )
    ended = _after_grace(now) + dt.timedelta(minutes=1)
    lifecycle.end_drill(site.session, drill, RESPONDER, ended, valid_days=site.settings.drill_valid_days)
    site.session.commit()
    assert drill.outcome == "passed" and drill.follow_ups == []

    attestation = site.session.scalars(
        select(ReadinessAttestation).where(ReadinessAttestation.cluster_pk == site.cluster.id)
    ).one()
    assert attestation.topic == "disconnect-drill"
    assert attestation.statement.startswith(f"Access verified in a drill on {ended:%Y-%m-%d}")
    assert attestation.expires_at == ended + dt.timedelta(days=90)


def test_no_valid_credential_fails_the_breakglass_item(drill_site: DrillSite) -> None:
    site = drill_site
    site.issue_fallback()
    now = dt.datetime.now(dt.UTC)
    site.cut_off(now)
    drill_id = site.start(now, checklist=["breakglass"])
    runner.run_round(site.settings, site.factory, drill_id, now=_after_grace(now))
    [check] = _by_item(site, drill_id)["breakglass"]
    assert check.status == "fail"
    assert check.subject == "plant9-local: no valid credential"
    assert "No valid break-glass credential" in check.summary


def test_revoked_binding_fails_the_paths_with_the_binding_named(drill_site: DrillSite) -> None:
    site = drill_site
    credential_id = site.issue_breakglass()
    credential = site.session.get(Credential, credential_id)
    assert credential is not None and credential.binding_name
    # Someone deleted the binding by hand: the certificate is still accepted, reads are not.
    cert, key = site.sim.issue_client_certificate("kubernetes-admin", ["system:masters"])
    from app.integrations.kube.client import KubeAuth, connect

    with connect(site.sim.url, site.sim.ca_pem, KubeAuth.x509(cert, key)) as admin:
        assert admin.delete_cluster_role_binding(credential.binding_name)
    now = dt.datetime.now(dt.UTC)
    site.cut_off(now)
    drill_id = site.start(now, checklist=["breakglass"])
    runner.run_round(site.settings, site.factory, drill_id, now=_after_grace(now))
    checks = _by_item(site, drill_id)["breakglass"]
    assert len(checks) == 2 and {c.status for c in checks} == {"fail"}
    for check in checks:
        assert "reads are refused (403)" in check.summary
        assert credential.binding_name in check.summary


def test_control_plane_ip_whose_certificate_san_does_not_match_fails_that_path_only(
    drill_site: DrillSite, simulated_cluster: object
) -> None:
    site = drill_site
    # The second control-plane IP answers with a certificate of the same CA that names another host.
    impostor = simulated_cluster(  # type: ignore[operator]
        name="plant9-local",
        state_dir=site.state_dir,
        host="127.0.0.2",
        port=site.sim.port,
        endpoint_hostname="other-control-plane.invalid",
        serve_loopback_names=False,
    )
    assert impostor.ca_pem == site.sim.ca_pem
    credential_id = site.issue_breakglass(ips=("127.0.0.1", "127.0.0.2"))
    now = dt.datetime.now(dt.UTC)
    site.cut_off(now)
    drill_id = site.start(now, checklist=["breakglass"])
    runner.run_round(site.settings, site.factory, drill_id, now=_after_grace(now))
    checks = {c.subject: c for c in _by_item(site, drill_id)["breakglass"]}
    base = f"plant9-local #{credential_id} alice@breakglass via"
    assert checks[f"{base} endpoint"].status == "pass"
    assert checks[f"{base} IP 127.0.0.1 (tls-server-name 127.0.0.1)"].status == "pass"
    bad = checks[f"{base} IP 127.0.0.2 (tls-server-name 127.0.0.1)"]
    assert bad.status == "fail"
    assert "does not name 127.0.0.1 (SAN mismatch)" in bad.summary


def test_disconnected_outpost_whose_iam_still_works_fails_iam_refused(drill_site: DrillSite) -> None:
    site = drill_site
    now = dt.datetime.now(dt.UTC)
    # Both views say disconnected, but the cluster still reaches STS: IAM tokens are accepted.
    site.observe("DISCONNECTED", now)
    drill_id = site.start(now, checklist=["disconnect", "iam_refused"])
    runner.run_round(site.settings, site.factory, drill_id, now=_after_grace(now))
    found = _by_item(site, drill_id)
    assert found["disconnect"][0].status == "pass"
    [iam] = found["iam_refused"]
    assert iam.status == "fail"
    assert "IAM authentication still works" in iam.summary and "accepted as" in iam.summary


def test_drill_started_while_not_cut_off_fails_the_disconnect_item(
    drill_site: DrillSite,
) -> None:
    site = drill_site
    now = dt.datetime.now(dt.UTC)
    site.observe("CONNECTED", now)
    drill_id = site.start(now, checklist=["disconnect", "iam_refused"])
    # Within the grace period CloudWatch may simply not have reported yet: waiting, not failed.
    runner.run_round(site.settings, site.factory, drill_id, now=now + dt.timedelta(minutes=1))
    assert _by_item(site, drill_id)["disconnect"][0].status == "pending"
    runner.run_round(site.settings, site.factory, drill_id, now=_after_grace(now))
    found = _by_item(site, drill_id)
    [disconnect] = found["disconnect"]
    assert disconnect.status == "fail"
    assert "not cut off" in disconnect.summary and "CloudWatch and the site view" in disconnect.summary
    assert found["iam_refused"][0].status == "fail"
    # The failure is on the timeline and announced once through the outbox.
    drill = site.session.get(Drill, drill_id)
    assert drill is not None
    assert [e.kind for e in drill.events].count("item_failed") == 2
    from app.models import NotificationEvent

    kinds = site.session.scalars(select(NotificationEvent.kind).order_by(NotificationEvent.id)).all()
    assert kinds == ["drill.started", "drill.item_failed", "drill.item_failed"]


def test_lifeline_identity_without_node_rights_fails_reads_and_asks_for_nodes(drill_site: DrillSite) -> None:
    site = drill_site
    site.issue_fallback(node_reader=False)
    now = dt.datetime.now(dt.UTC)
    site.cut_off(now)
    drill_id = site.start(now, checklist=["lifeline_reads", "nodes_workloads"])
    runner.run_round(site.settings, site.factory, drill_id, now=_after_grace(now))
    found = _by_item(site, drill_id)
    assert found["lifeline_reads"][0].status == "fail"
    assert "may not list nodes" in found["lifeline_reads"][0].summary
    assert found["nodes_workloads"][0].status == "confirm"


def test_no_issuer_for_the_disconnect_fails_issuing(drill_site: DrillSite) -> None:
    site = drill_site
    site.settings = site.settings.model_copy(update={"issuer_kubeconfig": None})
    now = dt.datetime.now(dt.UTC)
    site.cut_off(now)
    drill_id = site.start(now, checklist=["issue_new"])
    runner.run_round(site.settings, site.factory, drill_id, now=_after_grace(now))
    [check] = _by_item(site, drill_id)["issue_new"]
    assert check.status == "fail"
    assert "LIFELINE_ISSUER_KUBECONFIG" in check.summary


def test_workload_lost_and_unpredicted_stuck_pod_fail(drill_site: DrillSite) -> None:
    site = drill_site
    site.issue_fallback()
    now = dt.datetime.now(dt.UTC)
    site.cut_off(now)
    drill_id = site.start(now, checklist=["nodes_workloads", "predictions"])
    runner.run_round(site.settings, site.factory, drill_id, now=_after_grace(now))
    assert {c.status for c in _checks(site, drill_id).values()} == {"pass"}
    # A running pod goes away and a new pod needing an EBS volume cannot start while cut off.
    cert, key = site.sim.issue_client_certificate("kubernetes-admin", ["system:masters"])
    from app.integrations.kube.client import KubeAuth, connect

    with connect(site.sim.url, site.sim.ca_pem, KubeAuth.x509(cert, key)) as admin:
        admin._call("DELETE", "/api/v1/namespaces/shop/pods/web-2")
        admin._call(
            "POST",
            "/api/v1/namespaces/shop/pods",
            body={
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "reports-0", "namespace": "shop"},
                "spec": {
                    "nodeName": "ip-10-0-1-10.ec2.internal",
                    "containers": [{"name": "main", "image": "postgres:16"}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}],
                },
            },
        )
    runner.run_round(site.settings, site.factory, drill_id, now=_after_grace(now) + dt.timedelta(seconds=30))
    found = _by_item(site, drill_id)
    assert found["nodes_workloads"][0].status == "fail"
    assert "pods no longer running: shop/web-2" in found["nodes_workloads"][0].summary
    [predictions] = found["predictions"]
    assert predictions.status == "fail"
    assert any(
        "observed, not predicted: shop/reports-0: waiting for an EBS volume" in e["text"]
        for e in predictions.evidence
    )
