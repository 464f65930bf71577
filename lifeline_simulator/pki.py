"""The simulated cluster's PKI: its CA (generated or loaded), serving certificate, client certificates.

Verification of client certificates happens here, per request, against the cluster's own clock.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CertificateRejected(Exception):
    """A client certificate is not valid for this cluster; the message says why."""


@dataclass(frozen=True)
class ClientIdentity:
    user: str
    groups: tuple[str, ...]


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _name(common_name: str, organisations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organisations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


class ClusterCA:
    """A cluster CA: signs the serving certificate, client certificates and approved CSRs."""

    def __init__(self, cert: x509.Certificate, key: PrivateKey) -> None:
        self.cert = cert
        self.key = key

    @classmethod
    def generate(cls, name: str, now: dt.datetime) -> ClusterCA:
        key = new_key()
        subject = _name(f"{name}-ca")
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load_or_create(cls, state_dir: Path, name: str, now: dt.datetime) -> ClusterCA:
        """Load `ca.crt`/`ca.key` from the state directory, or create and save them (key mode 0600)."""
        cert_path, key_path = state_dir / "ca.crt", state_dir / "ca.key"
        if cert_path.exists() and key_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
                raise ValueError(f"{key_path}: unsupported key type")
            return cls(cert, key)
        state_dir.mkdir(parents=True, exist_ok=True)
        ca = cls.generate(name, now)
        # The CA key of a throw-away simulator is the one key stored on disk, owner-only.
        key_path.touch(mode=0o600)
        key_path.write_text(key_pem(ca.key))
        cert_path.write_text(cert_pem(ca.cert))
        return ca

    @property
    def pem(self) -> str:
        return cert_pem(self.cert)

    def _leaf(
        self,
        subject: x509.Name,
        public_key: object,
        not_before: dt.datetime,
        not_after: dt.datetime,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName] | None = None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def serving_certificate(
        self,
        hostnames: list[str],
        now: dt.datetime,
        *,
        ips: Sequence[str] = (),
        loopback: bool = True,
    ) -> tuple[str, str]:
        """A serving certificate for 127.0.0.1 (and `ips`), localhost and the given hostnames:
        (cert PEM, key PEM). Without `loopback` it names only `hostnames` and `ips` (a certificate
        whose SAN does not match the loopback address)."""
        key = new_key()
        addresses = dict.fromkeys(["127.0.0.1", *ips] if loopback else list(ips))
        sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in addresses]
        if loopback:
            sans += [
                x509.DNSName("localhost"),
                x509.DNSName("kubernetes"),
                x509.DNSName("kubernetes.default.svc"),
            ]
        sans.extend(x509.DNSName(host) for host in hostnames if host)
        cert = self._leaf(
            _name("kube-apiserver"),
            key.public_key(),
            now - dt.timedelta(minutes=5),
            now + dt.timedelta(days=365),
            ExtendedKeyUsageOID.SERVER_AUTH,
            sans,
        )
        return cert_pem(cert), key_pem(key)

    def client_certificate(
        self,
        user: str,
        groups: tuple[str, ...],
        not_before: dt.datetime,
        not_after: dt.datetime,
    ) -> tuple[str, str]:
        """A client certificate (CN=user, O=groups) and its new key: (cert PEM, key PEM)."""
        key = new_key()
        cert = self._leaf(
            _name(user, groups), key.public_key(), not_before, not_after, ExtendedKeyUsageOID.CLIENT_AUTH
        )
        return cert_pem(cert), key_pem(key)

    def sign_request(self, csr: x509.CertificateSigningRequest, now: dt.datetime, seconds: int) -> str:
        """Sign a CSR as the kube-apiserver-client signer: the CSR's subject, client auth only."""
        # kube-controller-manager backdates notBefore by up to 5 minutes for clock skew.
        cert = self._leaf(
            csr.subject,
            csr.public_key(),
            now - dt.timedelta(minutes=5),
            now + dt.timedelta(seconds=seconds),
            ExtendedKeyUsageOID.CLIENT_AUTH,
        )
        return cert_pem(cert)

    def verify_client(self, der: bytes, now: dt.datetime) -> ClientIdentity:
        """Authenticate a presented client certificate: signed by this CA, in date, for client auth."""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise CertificateRejected(f"unreadable certificate: {exc}") from None
        if cert.issuer != self.cert.subject:
            raise CertificateRejected("x509: certificate signed by unknown authority")
        public = self.key.public_key()
        try:
            if isinstance(public, ec.EllipticCurvePublicKey):
                public.verify(
                    cert.signature,
                    cert.tbs_certificate_bytes,
                    ec.ECDSA(cert.signature_hash_algorithm),  # type: ignore[arg-type]
                )
            else:
                public.verify(
                    cert.signature,
                    cert.tbs_certificate_bytes,
                    padding.PKCS1v15(),
                    cert.signature_hash_algorithm,  # type: ignore[arg-type]
                )
        except InvalidSignature:
            raise CertificateRejected("x509: certificate signed by unknown authority") from None
        if now < cert.not_valid_before_utc:
            raise CertificateRejected("x509: certificate has expired or is not yet valid")
        if now > cert.not_valid_after_utc:
            raise CertificateRejected("x509: certificate has expired or is not yet valid")
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
                raise CertificateRejected("x509: certificate specifies an incompatible key usage")
        except x509.ExtensionNotFound:
            pass
        common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not common_names or not str(common_names[0].value):
            raise CertificateRejected("x509: certificate has no common name")
        groups = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
        return ClientIdentity(user=str(common_names[0].value), groups=groups)
