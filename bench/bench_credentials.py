"""Emergency access: time from submit to a verified, downloadable kubeconfig (ECDSA P-256 against
RSA 4096, the key of AWS's guide) and the time to download an existing break-glass bundle.

Runs against the simulated EKS local cluster on loopback with a throw-away SQLite database.
`python -m bench bench_credentials`.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

ROUNDS = int(os.environ.get("BENCH_CREDENTIAL_ROUNDS", "5"))
DOWNLOADS = int(os.environ.get("BENCH_CREDENTIAL_DOWNLOADS", "50"))


def _summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(samples) * 1000:8.1f} ms   p95 {p95 * 1000:8.1f} ms   (n={len(samples)})"
    )


def main() -> None:
    from app import migrate
    from app.db import create_db_engine, make_session_factory, session_scope
    from app.integrations.vault import generate_data_key
    from app.models import Cluster
    from app.services.audit import Actor
    from app.services.credentials import runs as credentials
    from app.services.credentials.access import download_credential
    from app.services.credentials.keys import vault_from_settings
    from app.services.credentials.vocabulary import IssueRequest
    from app.settings import Settings
    from lifeline_simulator import SimulatedCluster

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with tempfile.TemporaryDirectory() as tmp, SimulatedCluster(name="bench-sim") as sim:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        # A closed port for AWS: the control-plane IP lookup fails fast, as it does during an outage.
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=url,
            data_key=generate_data_key(),
            aws_endpoint_url="http://127.0.0.1:9",
            aws_max_attempts=1,
        )
        engine = create_db_engine(url)
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            cluster = Cluster(
                name="bench-sim",
                region="us-west-2",
                endpoint=sim.url,
                certificate_authority=sim.ca_data,
                cluster_uid=sim.cluster_uid,
                health_issues=[],
            )
            session.add(cluster)
            session.flush()
            cluster_pk = cluster.id
        actor = Actor(name="bench", role="admin")
        access = credentials.build_access(settings)
        results: dict[str, list[float]] = {}
        last_id = 0
        for key_type in ("ecdsa-p256", "rsa-4096"):
            samples = []
            for index in range(ROUNDS):
                started = time.perf_counter()
                request = IssueRequest(
                    cluster_pk=cluster_pk,
                    username=f"lifeline:{key_type}-{index}",
                    group="lifeline:breakglass",
                    cluster_role="cluster-admin",
                    lifetime_seconds=3600,
                    key_type=key_type,
                )
                credential_id = credentials.start_issue(settings, factory, request, actor)
                status = credentials.run_issue(settings, factory, credential_id, actor, access)
                if status != "active":
                    raise SystemExit(
                        f"issuing failed during the benchmark: credential {credential_id} {status}"
                    )
                with session_scope(factory) as session:
                    download_credential(
                        session, credential_id, actor, vault_from_settings(settings), "kubeconfig"
                    )
                samples.append(time.perf_counter() - started)
                last_id = credential_id
            results[key_type] = samples
        for artifact in ("kubeconfig", "bundle"):
            samples = []
            for _ in range(DOWNLOADS):
                started = time.perf_counter()
                with session_scope(factory) as session:
                    download_credential(session, last_id, actor, vault_from_settings(settings), artifact)
                samples.append(time.perf_counter() - started)
            results[f"download {artifact}"] = samples
        engine.dispose()

    print("submit -> verified kubeconfig (CSR, approval, signing, binding, /version, SelfSubjectReview)")
    print(f"  ECDSA P-256   {_summary(results['ecdsa-p256'])}")
    print(f"  RSA 4096      {_summary(results['rsa-4096'])}")
    ratio = statistics.median(results["rsa-4096"]) / statistics.median(results["ecdsa-p256"])
    print(f"  RSA 4096 takes {ratio:.1f}x the time of ECDSA P-256 (key generation dominates)")
    print("download of an existing credential (AWS unreachable; decrypt, build, audit, commit)")
    print(f"  kubeconfig    {_summary(results['download kubeconfig'])}")
    print(f"  bundle (zip)  {_summary(results['download bundle'])}")
    extra = statistics.median(results["download bundle"]) / statistics.median(results["download kubeconfig"])
    print(f"  the bundle costs {extra:.2f}x a bare kubeconfig")


if __name__ == "__main__":
    main()
