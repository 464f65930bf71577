"""The one kubeconfig reader (app.integrations.kube.kubeconfig.read_kubeconfig): every context,
token or x509, embedded data or file paths resolved against the kubeconfig's folder."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from app.integrations.kube.kubeconfig import KubeconfigError, hosts_lines, read_kubeconfig

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
CA = "-----BEGIN CERTIFICATE-----\nMIICA\n-----END CERTIFICATE-----\n"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write(path: Path, *, current: str = "files") -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "a",
                "cluster": {"server": "https://127.0.0.1:6443/", "certificate-authority": "ca.crt"},
            },
            {
                "name": "b",
                "cluster": {
                    "server": "https://127.0.0.2:6443",
                    "certificate-authority-data": _b64(CA),
                    "tls-server-name": "api.example.internal",
                },
            },
        ],
        "users": [
            {"name": "x509-files", "user": {"client-certificate": "pki/me.crt", "client-key": "pki/me.key"}},
            {"name": "bearer", "user": {"token": "abc.def"}},
            {"name": "exec", "user": {"exec": {"command": "aws"}}},
        ],
        "contexts": [
            {"name": "files", "context": {"cluster": "a", "user": "x509-files"}},
            {"name": "token", "context": {"cluster": "b", "user": "bearer"}},
            {"name": "unusable", "context": {"cluster": "b", "user": "exec"}},
        ],
        "current-context": current,
    }
    (path.parent / "pki").mkdir(exist_ok=True)
    (path.parent / "pki" / "me.crt").write_text(CERT)
    (path.parent / "pki" / "me.key").write_text(KEY)
    (path.parent / "ca.crt").write_text(CA)
    path.write_text(yaml.safe_dump(config))
    return path


def test_every_context_with_files_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "ops").mkdir()
    # The working directory is tmp_path: the files resolve against the kubeconfig's folder, not it.
    config = read_kubeconfig(write(tmp_path / "ops" / "admin.yaml"))
    assert [i.context for i in config.identities] == ["files", "token"]
    files = config.for_server("https://127.0.0.1:6443")
    assert files is not None and files.auth.method == "x509"
    assert (files.auth.cert_pem, files.auth.key_pem, files.ca_pem) == (CERT, KEY, CA)
    assert files.server == "https://127.0.0.1:6443"  # the trailing slash is dropped
    token = config.for_server("https://127.0.0.2:6443/")
    assert token is not None and token.auth.method == "token" and token.auth.token == "abc.def"
    assert token.ca_pem == CA and token.tls_server_name == "api.example.internal"
    assert config.current() == files
    assert config.for_server("https://127.0.0.3:6443") is None


def test_current_context_that_cannot_be_used_gives_none(tmp_path: Path) -> None:
    assert read_kubeconfig(write(tmp_path / "k.yaml", current="unusable")).current() is None
    assert read_kubeconfig(write(tmp_path / "k.yaml", current="missing")).current() is not None


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "k.yaml")
    (tmp_path / "pki" / "me.key").unlink()
    with pytest.raises(KubeconfigError, match=r"client-key .*me\.key"):
        read_kubeconfig(path)
    with pytest.raises(KubeconfigError, match="cannot be read"):
        read_kubeconfig(tmp_path / "absent.yaml")


def test_hosts_lines_with_and_without_a_scheme() -> None:
    assert hosts_lines("https://abc.eks.amazonaws.com:443", ("127.0.0.5", "127.0.0.6")) == [
        "127.0.0.5 abc.eks.amazonaws.com",
        "127.0.0.6 abc.eks.amazonaws.com",
    ]
    assert hosts_lines("abc.eks.amazonaws.com", ("127.0.0.5",)) == ["127.0.0.5 abc.eks.amazonaws.com"]
    assert hosts_lines(None, ("127.0.0.5",)) == []
