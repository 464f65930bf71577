"""Keys, CSRs, uploaded-CSR validation and certificate parsing (app.integrations.pki)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from app.integrations import pki


def _csr(key: object, cn: str | None, orgs: tuple[str, ...] = (), algorithm: object = None) -> str:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn is not None else []
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    csr = builder.sign(key, algorithm)  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(
    ("key_type", "expected"),
    [
        (pki.KeyType.ecdsa_p256, "ecdsa-p256"),
        (pki.KeyType.rsa_2048, "rsa-2048"),
        (pki.KeyType.rsa_4096, "rsa-4096"),
    ],
)
def test_generated_key_builds_a_valid_csr_with_identity_and_group(
    key_type: pki.KeyType, expected: str
) -> None:
    key = pki.generate_private_key(key_type)
    assert b"PRIVATE KEY" in key.pem and "PRIVATE" not in repr(key)
    info = pki.validate_csr(pki.build_csr(key.pem, "lifeline:alice", ("lifeline:breakglass",)))
    assert info.common_name == "lifeline:alice"
    assert info.organizations == ("lifeline:breakglass",)
    assert info.key_type == expected
    assert info.public_key_sha256 == pki.public_key_sha256_of_private_key(key.pem)


def test_system_masters_is_refused_with_the_reason() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(pki.PkiError, match=r"system:masters.*bypasses RBAC.*never be revoked"):
        pki.validate_csr(_csr(key, "admin", ("ops", "system:masters"), hashes.SHA256()))
    generated = pki.generate_private_key()
    with pytest.raises(pki.PkiError, match="system:masters"):
        pki.build_csr(generated.pem, "admin", ("system:masters",))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: _csr(rsa.generate_private_key(65537, 1024), "bob", (), hashes.SHA256()),  # noqa: S505
            "1024 bits is too small",
        ),
        (lambda: _csr(ec.generate_private_key(ec.SECP256K1()), "bob", (), hashes.SHA256()), "secp256k1"),
        (lambda: _csr(ed25519.Ed25519PrivateKey.generate(), "bob", (), None), "only RSA"),
        (lambda: _csr(ec.generate_private_key(ec.SECP256R1()), None, (), hashes.SHA256()), "no common name"),
        (
            lambda: _csr(ec.generate_private_key(ec.SECP256R1()), "system:node:x", (), hashes.SHA256()),
            "reserved",
        ),
        (lambda: "hello", "not a PEM certificate signing request"),
        (
            lambda: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "could not be parsed",
        ),
        (lambda: pki.generate_private_key().pem.decode(), "contains a private key"),
    ],
)
def test_bad_uploads_get_a_clear_error(make: object, message: str) -> None:
    with pytest.raises(pki.PkiError, match=message):
        pki.validate_csr(make())  # type: ignore[operator]


def test_tampered_signature_is_refused() -> None:
    key = rsa.generate_private_key(65537, 2048)
    der = bytearray(
        x509.load_pem_x509_csr(_csr(key, "bob", (), hashes.SHA256()).encode()).public_bytes(
            serialization.Encoding.DER
        )
    )
    der[-5] ^= 0x01  # flip a bit in the signature
    import base64

    body = base64.encodebytes(bytes(der)).decode()
    pem = f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"
    with pytest.raises(pki.PkiError, match="signature does not match"):
        pki.validate_csr(pem)


def test_certificate_facts_come_from_the_certificate() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "lifeline:alice"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "g"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")]))
        .public_key(key.public_key())
        .serial_number(0xABC)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    info = pki.parse_certificate(pem)
    assert (info.common_name, info.organizations, info.serial_hex) == ("lifeline:alice", ("g",), "abc")
    assert info.not_before == start and info.lifetime_seconds == 3600
    assert info.fingerprint_sha256 == cert.fingerprint(hashes.SHA256()).hex()
    assert pki.format_fingerprint("abcd") == "AB:CD"
    with pytest.raises(pki.PkiError, match="not a PEM certificate"):
        pki.parse_certificate("nope")
