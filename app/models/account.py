"""Local accounts and what hangs off them: server-side sessions, API tokens, sign-in back-off."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, utcnow


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored as typed; uniqueness and sign-in compare the lower-cased form (`username_key`).
    username: Mapped[str] = mapped_column(String(64))
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    # Argon2id PHC string (parameters and salt included), never the password. None: an SSO account.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_sign_in_at: Mapped[dt.datetime | None]
    password_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Single sign-on (issue 18): "<issuer> <sub>" of the IdP identity this account was created for.
    sso_subject: Mapped[str | None] = mapped_column(String(512), unique=True)
    # A local account an admin allows to sign in while SSO is configured.
    break_glass: Mapped[bool] = mapped_column(default=False)
    # TOTP second factor: the secret sealed with the data key (never in clear), the last step used.
    totp_secret_sealed: Mapped[str | None] = mapped_column(String(255))
    totp_enabled: Mapped[bool] = mapped_column(default=False)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def is_sso(self) -> bool:
        return self.sso_subject is not None

    @property
    def password_never_changed(self) -> bool:
        """The password is the one the account was created with (creation sets both stamps from one
        `now`; a change or a reset moves `password_changed_at`)."""
        return self.password_changed_at == self.created_at

    sessions: Mapped[list[WebSession]] = relationship(back_populates="user", passive_deletes=True)
    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", passive_deletes=True)


class WebSession(Base):
    """A browser session; the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Absolute end of the session; the idle limit is checked against last_seen_at.
    expires_at: Mapped[dt.datetime]
    # Last time the password was entered in this session (sign-in or "confirm your password").
    reauth_at: Mapped[dt.datetime | None]
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    # SSO sessions: the IdP's ID token, sealed with the data key, sent back as `id_token_hint` when
    # the person also signs out of the IdP (RP-initiated logout). None without a data key.
    id_token_sealed: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User] = relationship(back_populates="sessions")


class ApiToken(Base):
    """A personal API token: only its SHA-256 is stored; the prefix identifies it in lists and logs."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class LoginThrottle(Base):
    """Failed sign-ins per account name or client address, for exponential back-off.

    Kept in the database so the back-off survives restarts and holds across web replicas.
    """

    __tablename__ = "login_attempts"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # "account" (the lower-cased name typed, whether or not it exists) or "address".
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128))
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[dt.datetime | None]
    blocked_until: Mapped[dt.datetime | None]


class SsoLogin(Base):
    """One SSO sign-in in flight: state (hashed), nonce and PKCE verifier, used once then deleted."""

    __tablename__ = "sso_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_path: Mapped[str] = mapped_column(String(2000))
    # "sign_in", or "reauth" for a fresh IdP sign-in before a download (then user_id is set).
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]


class Policy(Base):
    """A security switch an admin turns on or off on a page (issue 18), e.g. TOTP for break-glass admins.

    No row: the setting of the same name decides (the default); a row overrides it.
    """

    __tablename__ = "policies"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))
