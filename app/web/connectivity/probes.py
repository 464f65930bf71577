"""The cluster page's probe panel (issue 13): every vantage's latest site probes of one cluster with
their latency; create_app offers it to templates as `cluster_probes(request, cluster_pk)`
(never breaks a page)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError

from app.services.connectivity import site

log = logging.getLogger(__name__)

KIND_LABELS = {
    "kube_livez": "API endpoint: TLS to the cluster CA and /livez",
    "kube_ip_livez": "Control-plane IP: TLS and /livez",
    "kube_iam": "EKS IAM token (SelfSubjectReview)",
    "kube_x509": "Lifeline's x509 identity (SelfSubjectReview)",
}


def cluster_probes(request: Request, cluster_pk: int) -> dict[str, Any] | None:
    """{"vantage": this dashboard's, "by_vantage": {vantage: [ProbeResult rows]}, "labels": ...}."""
    factory = getattr(request.app.state, "session_factory", None)
    settings = getattr(request.app.state, "settings", None)
    if factory is None or settings is None:
        return None
    try:
        with factory() as session:
            found = site.cluster_results(session, cluster_pk)
            for rows in found.values():
                for row in rows:
                    session.expunge(row)
    except SQLAlchemyError:
        log.warning("cluster probes: database not readable", exc_info=True)
        return None
    return {
        "vantage": settings.vantage,
        "by_vantage": found,
        "labels": KIND_LABELS,
        "interval": settings.probe_interval_seconds,
    }
