"""Immediate readiness polls when an Outpost's connectivity changes (CloudWatch state or site-probe
verdict), so the cluster pages agree with the Outpost within seconds instead of a poll interval.

The scheduler that runs the jobs attaches itself here; a change enqueues one run-now job for the
clusters of the changed Outposts (pending requests merge). Without an attached scheduler (the CLI's
`poll-once`, which polls readiness right after anyway) a request is only logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.models import Cluster
from app.settings import Settings

log = logging.getLogger(__name__)

JOB_ID = "clusters-now"

_lock = threading.Lock()
_scheduler: Any | None = None
_pending: set[int] = set()


def attach(scheduler: Any) -> None:
    global _scheduler
    with _lock:
        _scheduler = scheduler
        _pending.clear()


def detach(scheduler: Any) -> None:
    global _scheduler
    with _lock:
        if _scheduler is scheduler:
            _scheduler = None
            _pending.clear()


def clusters_of(session: Session, outpost_pks: Iterable[int]) -> list[int]:
    pks = sorted(set(outpost_pks))
    if not pks:
        return []
    return list(session.scalars(select(Cluster.id).where(Cluster.outpost_pk.in_(pks)).order_by(Cluster.id)))


def outposts_changed(
    settings: Settings, session_factory: sessionmaker[Session], outpost_pks: Iterable[int], why: str
) -> list[int]:
    """Enqueue an immediate readiness poll of the changed Outposts' clusters; returns their ids."""
    with session_scope(session_factory) as session:
        cluster_pks = clusters_of(session, outpost_pks)
    if not cluster_pks:
        return []
    with _lock:
        scheduler = _scheduler
        if scheduler is None:
            log.info(
                "%s: no scheduler attached, clusters %s wait for the next readiness poll", why, cluster_pks
            )
            return cluster_pks
        queued = bool(_pending)
        _pending.update(cluster_pks)
    if not queued:
        try:
            scheduler.add_job(
                _run_pending,
                "date",
                run_date=dt.datetime.now(dt.UTC),
                args=(settings, session_factory),
                id=JOB_ID,
                name="readiness poll after a connectivity change",
                replace_existing=True,
                misfire_grace_time=60,
            )
        except Exception:
            log.exception("could not enqueue the readiness poll after %s", why)
            with _lock:
                _pending.difference_update(cluster_pks)
            return []
    log.info("%s: readiness poll of clusters %s enqueued", why, cluster_pks)
    return cluster_pks


def _run_pending(settings: Settings, session_factory: sessionmaker[Session]) -> dict[str, str]:
    from app.jobs import readiness

    with _lock:
        cluster_pks = sorted(_pending)
        _pending.clear()
    return readiness.poll_clusters(settings, session_factory, cluster_ids=cluster_pks)
