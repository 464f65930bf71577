"""Data key rotation: every value sealed under the old data key re-sealed under a new one, in one
transaction (all or nothing), audited with both key ids (never the keys).

Sealed values: server-held private keys (`credentials.encrypted_key`), notification channel
configurations (`notification_channels.sealed_config`) and TOTP secrets (`users.totp_secret_sealed`).
A value that does not open under the old key stops the rotation, naming the row: nothing is written.
The ID tokens kept on SSO sessions (`sessions.id_token_sealed`, only a hint for the IdP's sign-out)
are re-sealed too; one that does not open is dropped rather than stopping the rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations.vault import Vault, VaultError
from app.models import Credential, NotificationChannel, User, WebSession
from app.services.accounts.totp import totp_context
from app.services.audit import Actor, record_audit
from app.services.credentials.vocabulary import key_context
from app.services.errors import Conflict, InvalidInput
from app.services.notifications.rules import channel_context


class RotationRefused(Conflict):
    """A sealed value did not open under the current key; nothing was changed."""


@dataclass(frozen=True)
class Rotated:
    credentials: int
    channels: int
    totp_secrets: int
    old_key_id: str
    new_key_id: str


def _reseal(old: Vault, new: Vault, token: str, context: str, what: str) -> str:
    try:
        plain = old.open(token, context=context)
    except VaultError as exc:
        raise RotationRefused(
            f"{what} does not open under the current data key ({exc}); nothing was changed"
        ) from None
    return new.seal(plain, context=context)


def rotate_data_key(session: Session, old: Vault, new: Vault, actor: Actor) -> Rotated:
    if old.key_id == new.key_id:
        raise InvalidInput("the new data key is the current one", field="new_key")
    credentials = list(session.scalars(select(Credential).where(Credential.encrypted_key.is_not(None))))
    for row in credentials:
        assert row.encrypted_key is not None
        row.encrypted_key = _reseal(old, new, row.encrypted_key, key_context(row.id), f"credential #{row.id}")
    channels = list(session.scalars(select(NotificationChannel)))
    for channel in channels:
        channel.sealed_config = _reseal(
            old,
            new,
            channel.sealed_config,
            channel_context(channel.id),
            f"notification channel #{channel.id}",
        )
    users = list(session.scalars(select(User).where(User.totp_secret_sealed.is_not(None))))
    for user in users:
        assert user.totp_secret_sealed is not None
        user.totp_secret_sealed = _reseal(
            old, new, user.totp_secret_sealed, totp_context(user), f"the TOTP secret of {user.username}"
        )
    for web_session in session.scalars(select(WebSession).where(WebSession.id_token_sealed.is_not(None))):
        assert web_session.id_token_sealed is not None
        context = f"id_token:{web_session.token_hash}"
        try:
            web_session.id_token_sealed = new.seal(
                old.open(web_session.id_token_sealed, context=context), context=context
            )
        except VaultError:
            web_session.id_token_sealed = None
    session.flush()
    result = Rotated(len(credentials), len(channels), len(users), old.key_id, new.key_id)
    record_audit(
        session,
        actor=actor,
        action="data_key.rotate",
        target=f"data_key:{new.key_id}",
        details={
            "old_key_id": old.key_id,
            "new_key_id": new.key_id,
            "credentials": result.credentials,
            "channels": result.channels,
            "totp_secrets": result.totp_secrets,
            "via": actor.via,
        },
    )
    return result
