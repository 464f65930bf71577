"""A way in from every place that shows a problem (issue 10): the overview row, the banner and the tab
title during a disconnect; the Get in page, the Outpost and cluster pages' access panel; Your access;
the inventory's filters, downloads and failures in words; the download's way back after re-auth."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations.vault import Vault
from app.models import Cluster, Credential, User
from app.models.base import utcnow
from app.services.credentials import vocabulary
from tests.factories import make_active_credential, make_cluster, make_outpost
from tests.support.htmx import Rendering

OID = "op-0aaaaaaaaaaaaaaa1"


def _user_id(session: Session, name: str) -> int:
    user = session.scalar(select(User).where(User.username == name))
    assert user is not None
    return user.id


def _disconnected_fleet(session: Session) -> Cluster:
    since = utcnow() - dt.timedelta(minutes=7)
    outpost = make_outpost(session, name="Plant 7 Reno", state="DISCONNECTED", state_since=since, oid=OID)
    make_outpost(session, name="Quiet site", state="CONNECTED", state_since=since)
    cluster = make_cluster(session, "plant7-local")
    cluster.outpost_pk = outpost.id
    session.commit()
    return cluster


def test_overview_row_banner_and_title_lead_to_get_in(
    client_as: Any, session: Session, htmx: Rendering
) -> None:
    _disconnected_fleet(session)
    viewer: TestClient = client_as("viewer")
    page = viewer.get("/", headers=htmx.headers)
    assert page.status_code == 200
    row = re.search(rf'<tr data-outpost-id="{OID}"[^>]*>', page.text)
    assert row and "problem-row" in row.group(0)
    assert f'href="/access?outpost={OID}"' in page.text
    assert 'href="/clusters/plant7-local?region=us-west-2"' in page.text
    title = re.search(r"<title>([^<]*)</title>", page.text)
    assert title and title.group(1) == "(1) Disconnected · Connectivity · Lifeline"
    # The banner, out of band on the HTMX refresh, in place on the full page.
    assert 'id="cutoff-banner"' in page.text and "Plant 7 Reno" in page.text
    assert ('hx-swap-oob="true"' in page.text) is htmx.partial


def test_every_page_names_the_cut_off_outposts(client_as: Any, session: Session) -> None:
    _disconnected_fleet(session)
    viewer: TestClient = client_as("viewer")
    for path in ("/clusters", "/credentials", "/account"):
        html = viewer.get(path).text
        assert "<title>(1) Disconnected · " in html, path
        assert f'<a class="get-in" href="/access?outpost={OID}">' in html, path


def test_no_banner_and_plain_title_when_all_is_well(client_as: Any, session: Session) -> None:
    make_outpost(session, name="Quiet site", state="CONNECTED")
    session.commit()
    html = client_as("viewer").get("/").text
    assert "<title>Connectivity · Lifeline</title>" in html
    assert "cut off or degraded now" not in html


def test_get_in_gives_one_click_downloads_to_the_holder(
    client_as: Any, session: Session, vault: Vault
) -> None:
    cluster = _disconnected_fleet(session)
    rita: TestClient = client_as("responder", "rita")
    credential = make_active_credential(
        session,
        cluster,
        vault,
        username="lifeline:rita",
        issued_by="rita",
        issued_by_user_id=_user_id(session, "rita"),
    )
    session.commit()
    html = rita.get(f"/access?outpost={OID}").text
    assert "works without the Region until" in html
    link = re.search(rf'<a class="button" href="[^"]*/credentials/{credential.id}/kubeconfig"[^>]*>', html)
    assert link and " download" not in link.group(0)
    assert f'/credentials/{credential.id}/bundle"' in html
    # The Outpost page names its clusters and carries the same panel; so does the cluster page.
    outpost_page = rita.get(f"/outposts/{OID}").text
    assert "Clusters on this Outpost" in outpost_page and "plant7-local" in outpost_page
    assert f'/credentials/{credential.id}/kubeconfig"' in outpost_page
    cluster_page = rita.get("/clusters/plant7-local").text
    assert f'/credentials/{credential.id}/kubeconfig"' in cluster_page


def test_get_in_without_a_credential_says_so_and_offers_the_preset_form(
    client_as: Any, session: Session, vault: Vault
) -> None:
    cluster = _disconnected_fleet(session)
    make_active_credential(session, cluster, vault, username="lifeline:alice", issued_by="alice")
    session.commit()
    responder: TestClient = client_as("responder", "sam")
    html = responder.get(f"/access?outpost={OID}").text
    assert "You have no way into plant7-local yet." in html
    assert f'/credentials/new?cluster={cluster.id}"' in html
    viewer_html = client_as("viewer").get(f"/access?outpost={OID}").text
    assert "You have no way into plant7-local yet." in viewer_html
    assert "Viewers hold no emergency credentials" in viewer_html
    assert "/credentials/new?cluster=" not in viewer_html
    assert client_as("viewer").get("/access?outpost=op-0000000000000bad").status_code == 404


def test_your_access_lists_reachable_until_when_and_the_rest_with_the_fix(
    client_as: Any, session: Session, vault: Vault
) -> None:
    cut = _disconnected_fleet(session)
    other = make_cluster(session, "werk-local")
    rita: TestClient = client_as("responder", "rita")
    credential = make_active_credential(
        session,
        cut,
        vault,
        username="lifeline:rita",
        issued_by="rita",
        issued_by_user_id=_user_id(session, "rita"),
        days=20,
    )
    session.commit()
    html = rita.get("/access").text
    assert "<strong>1</strong> of 2 clusters reachable without the Region." in html
    reachable = html.split('data-cluster="plant7-local"')[1].split("</tr>")[0]
    assert "reachable" in reachable and "disconnected now" in reachable
    assert credential.not_after is not None and credential.not_after.strftime("%Y-%m-%d %H:%M") in reachable
    missing = html.split('data-cluster="werk-local"')[1].split("</tr>")[0]
    assert "you have no credential" in missing
    assert f'/credentials/new?cluster={other.id}"' in missing
    # Clusters without a way in come first.
    assert html.index('data-cluster="werk-local"') < html.index('data-cluster="plant7-local"')


def test_inventory_filters_downloads_cut_off_marker_and_failures_in_words(
    client: TestClient, session: Session, vault: Vault, htmx: Rendering
) -> None:
    cut = _disconnected_fleet(session)
    other = make_cluster(session, "werk-local")
    mine = make_active_credential(session, cut, vault, username="lifeline:admin", issued_by="admin")
    make_active_credential(session, other, vault, username="lifeline:bob", issued_by="bob")
    failed = make_active_credential(session, other, vault, username="lifeline:carl", issued_by="carl")
    failed.status, failed.failed_step, failed.error = "failed", "csr_created", "no issuer"
    own = make_active_credential(session, other, vault, username="lifeline:issuer", issued_by="lifeline")
    own.kind = "issuer"  # Lifeline's own identity: on the readiness page, not among people's
    session.commit()
    everything = client.get("/credentials", headers=htmx.headers).text
    assert f"/credentials/{own.id}" not in everything and "lifeline:issuer" not in everything
    assert "csr_created" not in everything
    assert vocabulary.STEP_FAILURES["csr_created"] in everything
    assert "⚠ cut off now" in everything
    assert f'/credentials/{mine.id}/kubeconfig"' in everything

    def table(url: str) -> str:
        return client.get(url, headers=htmx.headers).text.split('id="credentials-table"')[1]

    by_cluster = table(f"/credentials?cluster={cut.id}")
    assert "lifeline:admin" in by_cluster and "lifeline:bob" not in by_cluster
    assert '<option value="lifeline"' not in client.get("/credentials").text  # not a person to filter by
    by_person = table("/credentials?person=bob")
    assert "lifeline:bob" in by_person and "lifeline:admin" not in by_person
    none = table(f"/credentials?cluster={cut.id}&person=bob")
    assert "No credential matches these filters" in none


def test_every_step_has_a_label_and_a_failure_phrase() -> None:
    steps = set(vocabulary.ISSUE_STEPS) | set(vocabulary.STEP_LABELS)
    assert steps <= set(vocabulary.STEP_FAILURES)
    assert set(vocabulary.STEP_FAILURES) <= set(vocabulary.STEP_LABELS)
    assert vocabulary.failure_phrase("csr_created") != "csr_created"
    assert "made_up" in vocabulary.failure_phrase("made_up")


def test_a_lapsed_download_comes_back_to_the_credential_page(
    app: FastAPI, client: TestClient, session: Session, vault: Vault
) -> None:
    cluster = make_cluster(session)
    credential = make_active_credential(
        session,
        cluster,
        vault,
        username="lifeline:admin",
        issued_by="admin",
        issued_by_user_id=_user_id(session, "admin"),
    )
    session.commit()
    app.state.clock = lambda: utcnow() + dt.timedelta(minutes=app.state.settings.reauth_minutes + 1)
    response = client.get(f"/credentials/{credential.id}/kubeconfig", follow_redirects=False)
    assert response.status_code == 303
    assert (
        response.headers["location"] == f"/reauth?next=/credentials/{credential.id}%3Fdownload%3Dkubeconfig"
    )
    app.state.clock = utcnow
    landing = client.get(f"/credentials/{credential.id}?download=kubeconfig").text
    assert (
        f'<meta http-equiv="refresh" content="0; url=http://testserver/credentials/{credential.id}/kubeconfig">'
        in landing
    )
    download = client.get(f"/credentials/{credential.id}/kubeconfig")
    assert download.headers["content-disposition"].startswith("attachment;")
    assert session.get(Credential, credential.id) is not None
