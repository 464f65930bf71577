"""x509 for break-glass access: private keys, CSRs, uploaded-CSR validation and certificate facts.

Built on `cryptography`. Private keys live only in memory here (as PEM bytes, hidden from repr);
storing them is the vault's job.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

# Kubernetes' CertificateSubjectRestriction admission plugin refuses this group for the
# kube-apiserver-client signer, and RBAC could never take it away again anyway.
FORBIDDEN_ORGANIZATIONS = frozenset({"system:masters"})
MIN_RSA_BITS = 2048
ACCEPTED_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})


class KeyType(enum.StrEnum):
    ecdsa_p256 = "ecdsa-p256"
    rsa_4096 = "rsa-4096"
    rsa_2048 = "rsa-2048"

    @property
    def label(self) -> str:
        return {"ecdsa-p256": "ECDSA P-256", "rsa-4096": "RSA 4096", "rsa-2048": "RSA 2048"}[self.value]


class PkiError(ValueError):
    """Bad x509 input; the message says what was wrong, for showing to the operator."""


@dataclass(frozen=True)
class PrivateKey:
    """A freshly generated key. `pem` is PKCS#8, unencrypted: keep it in memory, never log it."""

    key_type: KeyType
    pem: bytes = field(repr=False)


@dataclass(frozen=True)
class CsrInfo:
    pem: str
    common_name: str
    organizations: tuple[str, ...]
    key_type: str
    key_bits: int
    public_key_sha256: str


@dataclass(frozen=True)
class CertificateInfo:
    common_name: str
    organizations: tuple[str, ...]
    issuer: str
    serial_hex: str
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint_sha256: str
    public_key_sha256: str

    @property
    def lifetime_seconds(self) -> float:
        return (self.not_after - self.not_before).total_seconds()


def generate_private_key(key_type: KeyType = KeyType.ecdsa_p256) -> PrivateKey:
    """Generate a key of `key_type` (ECDSA P-256 by default; RSA 4096 as in AWS's guide)."""
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if key_type is KeyType.ecdsa_p256:
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(
            public_exponent=65537, key_size=4096 if key_type is KeyType.rsa_4096 else 2048
        )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return PrivateKey(key_type=key_type, pem=pem)


def _load_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError("only RSA and ECDSA keys are supported")
    return key


def build_csr(private_key_pem: bytes, common_name: str, organizations: tuple[str, ...] = ()) -> str:
    """A PEM CSR with CN = the identity (Kubernetes user) and O = its groups."""
    _check_subject(common_name, organizations)
    key = _load_private_key(private_key_pem)
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    csr = (
        x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes)).sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _check_subject(common_name: str, organizations: tuple[str, ...]) -> None:
    if not common_name.strip():
        raise PkiError("the subject has no common name (CN): Kubernetes takes the user name from it")
    if common_name.startswith("system:"):
        raise PkiError(
            f"identity {common_name!r} is in the reserved 'system:' namespace; choose another name"
        )
    for org in organizations:
        if org in FORBIDDEN_ORGANIZATIONS:
            raise PkiError(
                f"organisation (O) {org!r} is refused: Kubernetes rejects it for client certificates "
                "and a member of system:masters bypasses RBAC, so its access could never be revoked. "
                "Use a dedicated group bound by a ClusterRoleBinding instead."
            )


def _public_key_info(public_key: object) -> tuple[str, int]:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa", public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ecdsa-" + public_key.curve.name, public_key.curve.key_size
    if isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "eddsa", 0
    return "unknown", 0


def _spki_sha256(public_key: object) -> str:
    der = public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _subject(name: x509.Name) -> tuple[str, tuple[str, ...]]:
    cns = [str(a.value) for a in name.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = tuple(str(a.value) for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return (cns[0] if cns else ""), orgs


def validate_csr(pem: str | bytes) -> CsrInfo:
    """Check an uploaded CSR: PEM, valid signature, key type and size, subject, no system:masters."""
    data = pem.encode() if isinstance(pem, str) else pem
    data = data.strip()
    if b"PRIVATE KEY" in data:
        raise PkiError(
            "this file contains a private key: upload only the certificate signing request "
            "(-----BEGIN CERTIFICATE REQUEST-----) and keep the key on your machine"
        )
    if not data.startswith(b"-----BEGIN CERTIFICATE REQUEST-----") and not data.startswith(
        b"-----BEGIN NEW CERTIFICATE REQUEST-----"
    ):
        raise PkiError(
            "not a PEM certificate signing request: expected '-----BEGIN CERTIFICATE REQUEST-----'"
        )
    try:
        csr = x509.load_pem_x509_csr(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PkiError(f"the CSR could not be parsed: {exc}") from None
    if not csr.is_signature_valid:
        raise PkiError("the CSR's signature does not match its public key (corrupted or tampered with)")
    try:
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PkiError(f"the CSR's public key is not supported: {exc}") from None
    kind, bits = _public_key_info(public_key)
    if kind == "rsa" and bits < MIN_RSA_BITS:
        raise PkiError(f"RSA key of {bits} bits is too small: at least {MIN_RSA_BITS} bits are required")
    if kind.startswith("ecdsa-") and kind.removeprefix("ecdsa-") not in ACCEPTED_CURVES:
        raise PkiError(f"elliptic curve {kind.removeprefix('ecdsa-')} is not accepted: use P-256 or larger")
    if kind not in {"rsa"} and not kind.startswith("ecdsa-"):
        raise PkiError("only RSA (2048 bits or more) and ECDSA (P-256, P-384, P-521) keys are accepted")
    common_name, organizations = _subject(csr.subject)
    _check_subject(common_name, organizations)
    key_label = (
        f"rsa-{bits}" if kind == "rsa" else kind.replace("secp256r1", "p256").replace("secp384r1", "p384")
    )
    key_label = key_label.replace("secp521r1", "p521")
    return CsrInfo(
        pem=data.decode() + "\n",
        common_name=common_name,
        organizations=organizations,
        key_type=key_label,
        key_bits=bits,
        public_key_sha256=_spki_sha256(public_key),
    )


def parse_certificate(pem: str | bytes) -> CertificateInfo:
    """Facts read from the certificate itself (validity is never taken from the request)."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise PkiError(f"not a PEM certificate: {exc}") from None
    common_name, organizations = _subject(cert.subject)
    return CertificateInfo(
        common_name=common_name,
        organizations=organizations,
        issuer=cert.issuer.rfc4514_string(),
        serial_hex=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        public_key_sha256=_spki_sha256(cert.public_key()),
    )


def public_key_sha256_of_private_key(private_key_pem: bytes) -> str:
    """SHA-256 of the SubjectPublicKeyInfo, to check that a certificate belongs to a key."""
    return _spki_sha256(_load_private_key(private_key_pem).public_key())


def format_fingerprint(hex_digest: str) -> str:
    """'AB:CD:…' as openssl prints it."""
    return ":".join(hex_digest[i : i + 2] for i in range(0, len(hex_digest), 2)).upper()
