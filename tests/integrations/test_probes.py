"""Each probe says how far it got: an answer (even an error answer), DNS, no route, TLS, timeout."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.integrations import probes
from app.integrations.aws import AwsClients
from app.integrations.eks_token import build_token
from tests.conftest import free_port


def _clients(endpoint: str) -> AwsClients:
    return AwsClients(endpoint_url=endpoint, connect_timeout=2, read_timeout=2, max_attempts=1)


@pytest.mark.parametrize("kind", probes.AWS_KINDS)
def test_moto_answers_every_aws_kind(aws_endpoint: str, kind: str) -> None:
    result = probes.probe_aws(kind, "us-west-2", _clients(aws_endpoint))
    assert result.result in (probes.OK, probes.ANSWERED), result
    assert result.up and result.latency_seconds is not None


def test_closed_local_port_is_no_route() -> None:
    result = probes.probe_aws(probes.AWS_STS, "us-west-2", _clients(f"http://127.0.0.1:{free_port()}"))
    assert result.result == probes.NO_ROUTE and not result.up
    assert "refused" in result.detail.lower()


def test_tls_mismatch_is_tls(simulated_cluster: Callable[..., Any]) -> None:
    # The simulator's certificate is signed by its own CA, which the system trust store does not hold.
    sim = simulated_cluster(name="foreign-tls")
    result = probes.probe_aws(probes.AWS_CLOUDWATCH, "us-west-2", _clients(sim.url))
    assert result.result == probes.TLS and not result.up
    assert "certificate" in result.detail


def test_unresolvable_name_is_dns() -> None:
    result = probes.probe_aws(
        probes.AWS_EKS, "us-west-2", _clients("https://eks.us-west-2.lifeline-test.invalid")
    )
    assert result.result == probes.DNS and not result.up
    assert "lifeline-test.invalid" in result.detail


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listener that accepts and never answers (a black hole for reads)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


def test_endpoint_that_never_answers_is_timeout(
    simulated_cluster: Callable[..., Any], silent_port: int
) -> None:
    sim = simulated_cluster(name="timeouts")
    context = probes.cluster_context(sim.ca_pem)
    result = probes.probe_livez(f"https://127.0.0.1:{silent_port}", context, 0.5, target="silent")
    assert result.result == probes.TIMEOUT and not result.up


def test_cluster_probes_tell_iam_from_x509(simulated_cluster: Callable[..., Any]) -> None:
    sim = simulated_cluster(name="plant7-local")
    context = probes.cluster_context(sim.ca_pem)
    token = build_token(_clients("http://127.0.0.1:1"), "us-west-2", sim.cluster_uid).token
    cert, key = sim.issue_client_certificate("lifeline", ("view",))
    x509_context = probes.cluster_context(sim.ca_pem, probes.X509Pair(cert, key))

    assert probes.probe_livez(sim.url, context, 2, target="p").result == probes.OK
    iam = probes.probe_self_review(sim.url, context, 2, kind=probes.KUBE_IAM, target="p", token=token)
    assert iam.result == probes.OK and "kubernetes-admin" in iam.detail
    sim.disconnect()
    iam = probes.probe_self_review(sim.url, context, 2, kind=probes.KUBE_IAM, target="p", token=token)
    x509 = probes.probe_self_review(sim.url, x509_context, 2, kind=probes.KUBE_X509, target="p")
    assert iam.result == probes.REJECTED and not iam.up
    assert x509.result == probes.OK and "lifeline" in x509.detail


def test_wrong_cluster_ca_is_tls(simulated_cluster: Callable[..., Any]) -> None:
    one, other = simulated_cluster(name="one"), simulated_cluster(name="other")
    result = probes.probe_livez(one.url, probes.cluster_context(other.ca_pem), 2, target="one")
    assert result.result == probes.TLS
