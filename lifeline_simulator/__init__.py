"""A strict simulated Kubernetes API server behaving like an EKS local cluster (issue 3).

In-process API (tests, the demo)::

    from lifeline_simulator import SimulatedCluster, ManualClock, IamPrincipal

    sim = SimulatedCluster(
        name="plant7-local",
        cluster_uid="3f0c...",              # default: a new UUID (kept in state_dir when given)
        manifests=[{...}, ...] or "dump.yaml",  # multi-doc YAML or a List; invalid -> ManifestError
        endpoint_hostname="ABC.gr7.us-west-2.eks.amazonaws.com",  # added to the serving cert SANs
        state_dir=None,                     # keeps ca.crt/ca.key (0600) and the cluster id across restarts
        port=0,                             # 0 = a free port on 127.0.0.1
        kubernetes_version="1.30.9",        # what /version reports (kubectl's dispatcher follows it)
        iam_principals=[IamPrincipal("AKID", "secret", "arn:aws:iam::123456789012:user/ops",
                                     username="kubernetes-admin", groups=("system:masters",))],
        aws_secret_lookup=None,             # or a callable access_key_id -> IamPrincipal | None
        clock=None,                         # or ManualClock() for CSR expiry / token age tests
        connected=True,
    )
    sim.start()                 # HTTPS server in a background thread; also a context manager
    sim.url                     # "https://127.0.0.1:PORT"
    sim.ca_pem / sim.ca_data    # cluster CA PEM / base64 of it (EKS certificateAuthority.data)
    sim.cluster_uid, sim.endpoint_hostname, sim.name
    sim.write_admin_kubeconfig(path)                    # x509, kubernetes-admin in system:masters
    sim.issue_client_certificate(user, groups, days=1)  # -> (cert_pem, key_pem), signed by the CA
    sim.disconnect(); sim.connect(); sim.connected      # also POST /-/disconnect, /-/connect
    sim.load(manifests)         # add more objects
    sim.store                   # direct object access for assertions
    sim.stop()

Defaults: the principal with access key `testing` / secret `testing` (the test fixtures' and moto's
credentials, ARN `arn:aws:iam::123456789012:user/moto`) maps to `kubernetes-admin` in `system:masters`.

Standalone: `lifeline simulate cluster --manifests FILE [--port N] [--state-dir DIR]
[--write-kubeconfig PATH] [--disconnected]`. Tests: the `simulated_cluster` factory fixture.
"""

from lifeline_simulator.authn import DEFAULT_PRINCIPALS, IamPrincipal
from lifeline_simulator.cluster import ManualClock, SimulatedCluster
from lifeline_simulator.manifests import ManifestError

__all__ = ["DEFAULT_PRINCIPALS", "IamPrincipal", "ManifestError", "ManualClock", "SimulatedCluster"]
