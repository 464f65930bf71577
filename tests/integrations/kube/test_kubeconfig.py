"""Kubeconfig and break-glass bundle builders (app.integrations.kube.kubeconfig) and ENI lookup."""

from __future__ import annotations

import base64
import datetime as dt
import io
import zipfile

import boto3
import yaml

from app.integrations.aws import AwsClients
from app.integrations.eks_network import control_plane_ips
from app.integrations.kube import kubeconfig as kc

CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
CA_DATA = base64.b64encode(CA_PEM.encode()).decode()


def _spec(**overrides: object) -> kc.KubeconfigSpec:
    values: dict[str, object] = {
        "cluster_name": "edge-1",
        "server": "https://abc.gr7.us-west-2.eks.amazonaws.com",
        "certificate_authority": CA_DATA,
        "user": "lifeline:alice",
        "client_certificate_pem": "CERT",
        "client_key_pem": b"KEY",
        "control_plane_ips": ("127.0.1.12", "127.0.1.11"),
    }
    values.update(overrides)
    return kc.KubeconfigSpec(**values)  # type: ignore[arg-type]


def test_kubeconfig_follows_kubectl_conventions() -> None:
    config = yaml.safe_load(kc.build_kubeconfig(_spec()))
    assert config["current-context"] == "lifeline:alice@edge-1"
    main, *direct = config["clusters"]
    assert main["cluster"] == {
        "server": "https://abc.gr7.us-west-2.eks.amazonaws.com",
        "certificate-authority-data": CA_DATA,
    }
    # One direct context per control-plane IP, each checking the certificate against the hostname.
    assert [d["cluster"]["server"] for d in direct] == ["https://127.0.1.12:443", "https://127.0.1.11:443"]
    assert {d["cluster"]["tls-server-name"] for d in direct} == {"abc.gr7.us-west-2.eks.amazonaws.com"}
    user = config["users"][0]["user"]
    assert base64.b64decode(user["client-key-data"]) == b"KEY"
    assert base64.b64decode(user["client-certificate-data"]) == b"CERT"
    assert [c["name"] for c in config["contexts"]] == [
        "lifeline:alice@edge-1",
        "lifeline:alice@edge-1-direct-1",
        "lifeline:alice@edge-1-direct-2",
    ]


def test_an_ip_endpoint_gets_no_hosts_lines_and_no_direct_contexts() -> None:
    spec = _spec(server="https://127.0.1.12:6443")
    config = yaml.safe_load(kc.build_kubeconfig(spec))
    assert [c["name"] for c in config["contexts"]] == ["lifeline:alice@edge-1"]
    assert "tls-server-name" not in config["clusters"][0]["cluster"]
    assert spec.hosts_lines() == []
    assert kc.hosts_lines("https://127.0.1.12:6443", ("127.0.1.12",)) == []


def test_kubeconfig_for_an_uploaded_csr_points_at_the_users_key_and_accepts_a_pem_ca() -> None:
    config = yaml.safe_load(
        kc.build_kubeconfig(_spec(client_key_pem=None, certificate_authority=CA_PEM, control_plane_ips=()))
    )
    assert config["users"][0]["user"]["client-key"] == "client.key"
    assert "client-key-data" not in config["users"][0]["user"]
    assert len(config["clusters"]) == 1
    assert base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]).decode() == CA_PEM


def test_bundle_holds_kubeconfig_ca_key_hosts_and_readme() -> None:
    data = kc.build_bundle(
        _spec(),
        not_after=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        cluster_role="cluster-admin",
        created=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
    )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = {n.rsplit("/", 1)[1]: n for n in archive.namelist()}
        assert set(names) == {"kubeconfig", "ca.crt", "client.crt", "client.key", "hosts", "README.txt"}
        assert archive.read(names["ca.crt"]).decode() == CA_PEM
        assert archive.read(names["client.key"]) == b"KEY"
        assert archive.getinfo(names["client.key"]).external_attr >> 16 & 0o777 == 0o600
        assert archive.read(names["hosts"]).decode() == (
            "127.0.1.12 abc.gr7.us-west-2.eks.amazonaws.com\n127.0.1.11 abc.gr7.us-west-2.eks.amazonaws.com\n"
        )
        readme = archive.read(names["README.txt"]).decode()
        assert "kubectl --context 'lifeline:alice@edge-1-direct-1' get nodes" in readme
        assert "kubectl --context 'lifeline:alice@edge-1-direct-2' get nodes" in readme
        assert "--resolve abc.gr7.us-west-2.eks.amazonaws.com:443:127.0.1.12" in readme
        for name in ("kubeconfig", "ca.crt", "client.crt", "client.key", "hosts"):
            assert f"  {name} " in readme, name
        assert "2027-01-01 00:00 UTC" in readme and "cannot revoke client certificates" in readme
        assert archive.getinfo(names["kubeconfig"]).external_attr >> 16 & 0o777 == 0o600


def test_bundle_for_an_uploaded_csr_has_no_key_and_says_where_it_goes() -> None:
    data = kc.build_bundle(
        _spec(client_key_pem=None),
        not_after=None,
        cluster_role="view",
        created=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
    )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = {n.rsplit("/", 1)[1]: n for n in archive.namelist()}
        assert "client.key" not in names
        readme = archive.read(names["README.txt"]).decode()
        assert "copy your private key next to the kubeconfig" in readme


def test_control_plane_ips_from_eks_enis(aws_endpoint: str) -> None:
    ec2 = boto3.client("ec2", region_name="us-west-2", endpoint_url=aws_endpoint)
    vpc = ec2.create_vpc(CidrBlock="127.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="127.0.1.0/24")["Subnet"]["SubnetId"]
    for ip in ("127.0.1.30", "127.0.1.4"):
        ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress=ip, Description="Amazon EKS edge-1")
    ec2.create_network_interface(
        SubnetId=subnet, PrivateIpAddress="127.0.1.9", Description="Amazon EKS other"
    )
    clients = AwsClients(endpoint_url=aws_endpoint, connect_timeout=2, read_timeout=5, max_attempts=1)
    assert control_plane_ips(clients, "us-west-2", "edge-1") == ("127.0.1.4", "127.0.1.30")
