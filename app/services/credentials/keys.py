"""Server-held private keys: the vault built from the data key settings, and keys generated, sealed
and opened under it (a key that cannot be opened is `KeyUnavailable`, never a crash)."""

from __future__ import annotations

from app.integrations import pki
from app.integrations.vault import DataKeyError, Vault, VaultError, vault_or_none
from app.models import Credential
from app.services.credentials.vocabulary import CredentialConflict, KeyUnavailable, key_context
from app.settings import Settings


def vault_from_settings(settings: Settings) -> Vault | None:
    """The vault, or None when no data key is configured; a configured key that does not load is
    `KeyUnavailable` (the operator must fix a setting; no request can)."""
    secret = settings.data_key.get_secret_value() if settings.data_key else None
    try:
        return vault_or_none(secret, settings.data_key_file)
    except DataKeyError as exc:
        raise KeyUnavailable(str(exc)) from None


def new_server_key(credential: Credential, vault: Vault) -> None:
    """Generate the credential's key, build its CSR, and keep the key sealed to this row."""
    key = pki.generate_private_key(pki.KeyType(credential.key_type))
    groups = (credential.group_name,) if credential.group_name else ()
    credential.csr_pem = pki.build_csr(key.pem, credential.username, groups)
    credential.encrypted_key = vault.seal(key.pem, context=key_context(credential.id))


def open_key(credential: Credential, vault: Vault) -> bytes:
    if credential.encrypted_key is None:
        raise CredentialConflict("Lifeline holds no key for this credential")
    try:
        return vault.open(credential.encrypted_key, context=key_context(credential.id))
    except VaultError as exc:
        raise KeyUnavailable(f"the stored key cannot be opened: {exc}") from None


def data_key_problem(settings: Settings) -> tuple[bool, str | None]:
    """Whether Lifeline can hold keys now, and what is wrong with the configured data key (for pages)."""
    try:
        return vault_from_settings(settings) is not None, None
    except KeyUnavailable as exc:
        return False, exc.message
