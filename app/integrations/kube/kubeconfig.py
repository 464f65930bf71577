"""Kubeconfig files both ways: the one reader of operator kubeconfigs (every context; token or x509;
embedded data or file paths, resolved as kubectl does), and the builders of emergency kubeconfigs,
`/etc/hosts` lines and the break-glass bundle (zip), as pure functions of cached facts.

Nothing here talks to AWS or the cluster, so downloads work while the Region is unreachable.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import ipaddress
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from app.integrations.kube.types import Identity, KubeAuth, ca_pem_from_data

# ---------------------------------------------------------------------------- reading


class KubeconfigError(ValueError):
    """A kubeconfig (or a file it names) cannot be read; the message names the file."""


@dataclass(frozen=True)
class Kubeconfig:
    """The usable contexts of a kubeconfig file, each as an `Identity` with its server and CA."""

    path: Path
    identities: tuple[Identity, ...]
    current_context: str | None
    context_names: tuple[str, ...]

    def current(self) -> Identity | None:
        """The current context's identity (None when it is unusable), else the first context's."""
        if self.current_context in self.context_names:
            return next((i for i in self.identities if i.context == self.current_context), None)
        return next(iter(self.identities), None)

    def for_server(self, server: str) -> Identity | None:
        """The first context whose cluster is `server` (trailing slashes ignored)."""
        wanted = server.rstrip("/")
        return next((i for i in self.identities if i.server == wanted), None)


def _data_or_file(entry: dict[str, Any], data_key: str, file_key: str, base: Path) -> str | None:
    """`<x>-data` (base64) or `<x>` (a path, relative to the kubeconfig's folder as kubectl reads it)."""
    if entry.get(data_key):
        try:
            return base64.b64decode(str(entry[data_key])).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise KubeconfigError(f"{data_key} is not base64 PEM: {exc}") from None
    if entry.get(file_key):
        path = Path(str(entry[file_key])).expanduser()
        path = path if path.is_absolute() else base / path
        try:
            return path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise KubeconfigError(f"{file_key} {path} cannot be read: {exc}") from None
    return None


def _named(items: Any, key: str) -> dict[str, dict[str, Any]]:
    return {
        str(item.get("name")): item.get(key) or {}
        for item in items or []
        if isinstance(item, dict) and item.get("name") is not None
    }


def read_kubeconfig(path: Path) -> Kubeconfig:
    """Every context of the kubeconfig at `path` that names a server and a token or x509 user."""
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise KubeconfigError(f"{path} cannot be read: {exc}") from None
    if not isinstance(config, dict):
        raise KubeconfigError(f"{path} is not a kubeconfig (no mapping at the top)")
    clusters, users = _named(config.get("clusters"), "cluster"), _named(config.get("users"), "user")
    contexts = _named(config.get("contexts"), "context")
    identities = []
    for name, ctx in contexts.items():
        cluster, user = clusters.get(str(ctx.get("cluster"))), users.get(str(ctx.get("user")))
        if not cluster or user is None or not cluster.get("server"):
            continue
        try:
            token = user.get("token")
            cert = _data_or_file(user, "client-certificate-data", "client-certificate", path.parent)
            key = _data_or_file(user, "client-key-data", "client-key", path.parent)
            ca = _data_or_file(cluster, "certificate-authority-data", "certificate-authority", path.parent)
        except KubeconfigError as exc:
            raise KubeconfigError(f"{path}, context {name}: {exc}") from None
        if token:
            auth = KubeAuth.bearer(str(token))
        elif cert and key:
            auth = KubeAuth.x509(cert, key)
        else:
            continue
        identities.append(
            Identity(
                auth=auth,
                source=str(path),
                server=str(cluster["server"]).rstrip("/"),
                ca_pem=ca,
                tls_server_name=cluster.get("tls-server-name"),
                context=name,
            )
        )
    current = config.get("current-context")
    return Kubeconfig(path, tuple(identities), str(current) if current else None, tuple(contexts))


# ---------------------------------------------------------------------------- building


@dataclass(frozen=True)
class KubeconfigSpec:
    cluster_name: str
    server: str
    # Base64 of the CA PEM, exactly as DescribeCluster's certificateAuthority.data (a PEM is accepted too).
    certificate_authority: str
    user: str
    client_certificate_pem: str
    # None when the user kept the key (uploaded CSR): the kubeconfig then points at `key_file_name`.
    client_key_pem: bytes | None = field(default=None, repr=False)
    control_plane_ips: tuple[str, ...] = ()
    key_file_name: str = "client.key"

    @property
    def context_name(self) -> str:
        return f"{self.user}@{self.cluster_name}"

    @property
    def hostname(self) -> str:
        """The endpoint's DNS name; empty when the endpoint is an IP address (nothing to pin then)."""
        host = endpoint_host(self.server) or ""
        return "" if _is_ip(host) else host

    def direct_contexts(self) -> list[tuple[str, str, str]]:
        """(context name, cluster entry name, control-plane IP), one per IP in their order:
        `<user>@<cluster>-direct-1`, `-direct-2`, ... (numbered even for one IP, so a runbook's
        command does not depend on how many IPs were known)."""
        if not self.hostname:
            return []
        return [
            (f"{self.user}@{self.cluster_name}-direct-{n}", f"{self.cluster_name}-direct-{n}", ip)
            for n, ip in enumerate(self.control_plane_ips, start=1)
        ]

    def hosts_lines(self) -> list[str]:
        return hosts_lines(self.server, self.control_plane_ips)

    @property
    def port(self) -> int:
        return urlsplit(self.server).port or 443


@dataclass(frozen=True)
class BundleFile:
    name: str
    content: bytes = field(repr=False)
    mode: int = 0o644


def ca_data_from_any(certificate_authority: str) -> str:
    text = certificate_authority.strip()
    if text.startswith("-----BEGIN"):
        return base64.b64encode((text + "\n").encode()).decode()
    return "".join(text.split())


def _b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _direct_server(spec: KubeconfigSpec, ip: str) -> str:
    host = f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
    return f"https://{host}:{spec.port}"


def build_kubeconfig(spec: KubeconfigSpec) -> str:
    """A kubeconfig in kubectl's conventions: context `<user>@<cluster>` is current.

    With control-plane IPs and a hostname endpoint, one direct context per IP (`<user>@<cluster>-direct`,
    or `-direct-1`, `-direct-2`, ... for several) reaches that IP and checks the server certificate
    against the endpoint's hostname (`tls-server-name`), for when DNS is gone and any one control-plane
    instance is down.
    """
    ca_data = ca_data_from_any(spec.certificate_authority)
    user_entry: dict[str, str] = {"client-certificate-data": _b64(spec.client_certificate_pem)}
    if spec.client_key_pem is not None:
        user_entry["client-key-data"] = _b64(spec.client_key_pem)
    else:
        user_entry["client-key"] = spec.key_file_name
    clusters = [
        {"name": spec.cluster_name, "cluster": {"server": spec.server, "certificate-authority-data": ca_data}}
    ]
    contexts = [{"name": spec.context_name, "context": {"cluster": spec.cluster_name, "user": spec.user}}]
    for context_name, cluster_entry, ip in spec.direct_contexts():
        clusters.append(
            {
                "name": cluster_entry,
                "cluster": {
                    "server": _direct_server(spec, ip),
                    "certificate-authority-data": ca_data,
                    "tls-server-name": spec.hostname,
                },
            }
        )
        contexts.append({"name": context_name, "context": {"cluster": cluster_entry, "user": spec.user}})
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": clusters,
        "users": [{"name": spec.user, "user": user_entry}],
        "contexts": contexts,
        "current-context": spec.context_name,
    }
    return yaml.safe_dump(config, sort_keys=False)


def endpoint_host(endpoint: str | None) -> str | None:
    """The hostname of an API server endpoint (with or without `https://`)."""
    if not endpoint:
        return None
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    host = parts.hostname
    if host is None:
        return None
    # `hostname` is lower-cased; keep the endpoint's own spelling (EKS writes its ids in capitals).
    start = parts.netloc.lower().find(host)
    return parts.netloc[start : start + len(host)] if start >= 0 else host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def hosts_lines(endpoint: str | None, ips: tuple[str, ...]) -> list[str]:
    """The `/etc/hosts` lines that keep the endpoint resolvable without Route 53: one per IP. None when
    the endpoint is itself an IP address (there is no name to pin)."""
    host = endpoint_host(endpoint)
    return [f"{ip} {host}" for ip in ips] if host and not _is_ip(host) else []


def bundle_readme(spec: KubeconfigSpec, *, not_after: dt.datetime | None, cluster_role: str) -> str:
    """The bundle's README.txt: how to use it with kubectl and curl, with and without DNS, and each file."""
    expiry = not_after.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if not_after else "unknown"
    host, port = spec.hostname, spec.port
    direct = spec.direct_contexts()
    lines = [
        f"Outpost Lifeline break-glass bundle for cluster {spec.cluster_name}",
        "",
        f"Identity: {spec.user} (ClusterRole {cluster_role}). Certificate valid until {expiry}.",
        "This works while the Outpost is disconnected from its AWS Region: it uses an x509 client",
        "certificate, not IAM. Keep it offline and private; anyone with it has this access.",
        "",
    ]
    if spec.client_key_pem is None:
        lines += [
            "0. This credential was issued for your own CSR: copy your private key next to the kubeconfig as",
            f"   {spec.key_file_name} (chmod 600 {spec.key_file_name}).",
            "",
        ]
    lines += [
        "1. Use the kubeconfig from this folder:",
        "",
        '     export KUBECONFIG="$PWD/kubeconfig"',
        "     kubectl auth whoami",
        "     kubectl get nodes",
        "",
    ]
    if direct:
        first_ip = direct[0][2]
        lines += [
            f"2. If {host} no longer resolves (Route 53 is in the Region), use a direct context: each",
            "   connects to one control-plane IP and still checks the server certificate against the",
            "   endpoint's name (tls-server-name). Try the next one if a control-plane instance is down:",
            "",
            *(f"     kubectl --context '{name}' get nodes     # {ip}" for name, _, ip in direct),
            "",
            "   or pin the name to the control-plane IPs for every program on this machine:",
            "",
            "     sudo sh -c 'cat hosts >> /etc/hosts'",
            "     kubectl get nodes",
            "",
            "   The control-plane ENI IPs are static for the life of the cluster.",
            "",
            "3. Without kubectl (curl; --resolve plays the part of the hosts line):",
            "",
            f"     curl --cacert ca.crt --cert client.crt --key {spec.key_file_name} \\",
            f"          --resolve {host}:{port}:{first_ip} https://{host}:{port}/version",
            "",
        ]
    elif host:
        lines += [
            "2. No control-plane IPs were known when this bundle was made. Find them now, while the Region",
            f"   is reachable: aws ec2 describe-network-interfaces --filters "
            f"'Name=description,Values=Amazon EKS {spec.cluster_name}'",
            "",
        ]
    else:
        lines += [
            f"2. The endpoint is the IP address {endpoint_host(spec.server)}: there is no name to pin, and",
            "   the kubeconfig already connects to it directly. Without kubectl:",
            "",
            f"     curl --cacert ca.crt --cert client.crt --key {spec.key_file_name} {spec.server}/version",
            "",
        ]
    key_note = (
        f"{spec.key_file_name}  your private key (mode 0600). Anyone who has it has this access."
        if spec.client_key_pem is not None
        else f"{spec.key_file_name}  not included: the key stays with you (you sent a CSR)."
    )
    lines += [
        "Files:",
        "  kubeconfig  contexts for the endpoint"
        + (f" and {len(direct)} direct context(s), one per control-plane IP" if direct else "")
        + "; certificate"
        + (
            " and key embedded"
            if spec.client_key_pem is not None
            else f", key read from {spec.key_file_name}"
        )
        + ".",
        "  ca.crt      the cluster CA, to check the API server (curl --cacert).",
        "  client.crt  your client certificate (curl --cert).",
        f"  {key_note}",
        "  hosts       /etc/hosts lines, one per control-plane IP"
        + (
            ""
            if spec.hosts_lines()
            else " (empty: " + ("no IPs known" if host else "the endpoint is an IP") + ")"
        )
        + ".",
        "",
        "Revoking this access in Lifeline deletes its ClusterRoleBinding. The certificate itself stays valid",
        "for authentication until it expires: Kubernetes cannot revoke client certificates.",
        "",
    ]
    return "\n".join(lines)


def build_bundle(
    spec: KubeconfigSpec, *, not_after: dt.datetime | None, cluster_role: str, created: dt.datetime
) -> bytes:
    """The break-glass zip: kubeconfig, ca.crt, client.crt, client.key (0600, when Lifeline holds the
    key), hosts lines and a README."""
    folder = f"lifeline-{spec.cluster_name}-{spec.user}".replace(":", "_").replace("/", "_")
    files = [
        BundleFile("kubeconfig", build_kubeconfig(spec).encode(), 0o600),
        BundleFile("ca.crt", ca_pem_from_data(spec.certificate_authority).encode()),
        BundleFile("client.crt", spec.client_certificate_pem.encode()),
        *(
            [BundleFile(spec.key_file_name, spec.client_key_pem, 0o600)]
            if spec.client_key_pem is not None
            else []
        ),
        BundleFile("hosts", "".join(f"{line}\n" for line in spec.hosts_lines()).encode()),
        BundleFile(
            "README.txt", bundle_readme(spec, not_after=not_after, cluster_role=cluster_role).encode()
        ),
    ]
    stamp = created.astimezone(dt.UTC).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for item in files:
            info = zipfile.ZipInfo(f"{folder}/{item.name}", date_time=stamp)
            info.external_attr = (0o100000 | item.mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, item.content)
    return buffer.getvalue()
