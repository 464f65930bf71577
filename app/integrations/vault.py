"""Encryption at rest for server-held private keys: AES-256-GCM under the data key.

The data key comes from `LIFELINE_DATA_KEY` (base64 of 32 bytes) or `LIFELINE_DATA_KEY_FILE`.
A sealed value reads `lv1:<key id>:<base64(nonce | ciphertext | tag)>`; the associated data binds it
to one credential row, so a blob copied to another row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

FORMAT_VERSION = "lv1"
NONCE_BYTES = 12


class DataKeyError(RuntimeError):
    """The data key is missing or unusable; the message says which setting to fix."""


class VaultError(RuntimeError):
    """A sealed value does not open (wrong key, tampered, or bound to another row)."""


MISSING_KEY_MESSAGE = (
    "no data key configured: Lifeline refuses to hold private keys without encryption at rest. "
    "Generate one with `lifeline credentials gen-data-key` and set LIFELINE_DATA_KEY (base64) or "
    "LIFELINE_DATA_KEY_FILE (a file holding it). Uploading your own CSR works without it."
)


def generate_data_key() -> str:
    """A new random 256-bit data key, base64-encoded as LIFELINE_DATA_KEY expects."""
    return base64.b64encode(os.urandom(32)).decode()


def decode_data_key(text: str, *, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise DataKeyError(f"{source}: not valid base64") from None
    if len(key) != 32:
        raise DataKeyError(f"{source}: decodes to {len(key)} bytes, 32 are required (AES-256)")
    return key


def load_data_key(value: str | None, file: Path | None) -> bytes:
    """The raw key from the setting or the file; raises DataKeyError with a clear message."""
    if value:
        return decode_data_key(value, source="LIFELINE_DATA_KEY")
    if file is not None:
        _check_permissions(file)
        try:
            text = file.read_text()
        except OSError as exc:
            raise DataKeyError(f"LIFELINE_DATA_KEY_FILE: cannot read {file}: {exc.strerror}") from None
        return decode_data_key(text, source=f"LIFELINE_DATA_KEY_FILE ({file})")
    raise DataKeyError(MISSING_KEY_MESSAGE)


def _check_permissions(file: Path) -> None:
    """Refuse a world-readable key file, warn about a group-readable one (the key opens every sealed
    private key and secret Lifeline holds)."""
    try:
        mode = file.stat().st_mode
    except OSError:
        return  # reading it reports the problem
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise DataKeyError(
            f"LIFELINE_DATA_KEY_FILE: {file} is readable or writable by every user (mode "
            f"{stat.S_IMODE(mode):04o}); run `chmod 600 {file}` (owner only) and start again"
        )
    if mode & (stat.S_IRGRP | stat.S_IWGRP):
        log.warning(
            "LIFELINE_DATA_KEY_FILE %s is group-accessible (mode %04o); chmod 600 keeps it to its owner",
            file,
            stat.S_IMODE(mode),
        )


@dataclass(frozen=True)
class Vault:
    """Seals and opens small secrets with one AES-256-GCM data key."""

    key: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        # Identifies the key (not secret: a hash prefix) so a wrong or rotated key is named clearly.
        return hashlib.sha256(b"lifeline-data-key-id:" + self.key).hexdigest()[:12]

    def seal(self, plaintext: bytes, *, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, plaintext, self._aad(context))
        return f"{FORMAT_VERSION}:{self.key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, token: str, *, context: str) -> bytes:
        try:
            version, key_id, body = token.split(":", 2)
        except ValueError:
            raise VaultError("sealed value is malformed") from None
        if version != FORMAT_VERSION:
            raise VaultError(f"sealed value has unknown format {version!r}")
        if key_id != self.key_id:
            raise VaultError(
                f"sealed under data key {key_id}, but the configured key is {self.key_id}: "
                "restore the original LIFELINE_DATA_KEY"
            )
        raw = base64.b64decode(body)
        try:
            return AESGCM(self.key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._aad(context))
        except InvalidTag:
            raise VaultError(
                "sealed value failed authentication (tampered with, or bound to another row)"
            ) from None

    @staticmethod
    def _aad(context: str) -> bytes:
        return f"{FORMAT_VERSION}|{context}".encode()


def vault_or_none(data_key: str | None, data_key_file: Path | None) -> Vault | None:
    """The vault when a data key is configured, None when none is (a bad key raises DataKeyError)."""
    if not data_key and data_key_file is None:
        return None
    return Vault(load_data_key(data_key, data_key_file))
