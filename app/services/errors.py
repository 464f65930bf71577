"""The one vocabulary of refusals every service raises; `app.web.errors` maps it to HTTP once.

A service says *what kind* of refusal it is (the thing does not exist, the caller may not, the
current state forbids it, a dependency is unavailable, the input is invalid) and a message written
for the person who asked. It never chooses an HTTP status, and no caller ever reads the message to
decide what happened.
"""

from __future__ import annotations

from collections.abc import Mapping

FORM = "_form"
"""The key of `ServiceError.errors` for a problem with the request as a whole, not one field."""


class ServiceError(Exception):
    """A use case refused. `errors` maps form or body field names to what is wrong with each."""

    def __init__(
        self, message: str, *, field: str | None = None, errors: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        if errors is not None:
            self.errors = dict(errors)
        else:
            self.errors = {field or FORM: message}

    @property
    def message(self) -> str:
        return str(self)


class NotFound(ServiceError):
    """The thing asked for does not exist (or the caller may not know that it does)."""


class Forbidden(ServiceError):
    """The caller is known but may not do this (not the owner, not the role, not allowed by policy)."""


class Conflict(ServiceError):
    """The current state forbids it: a duplicate, a credential that is not active, a feature that is
    switched off by configuration."""


class Unavailable(ServiceError):
    """Something the operation depends on cannot be used now: AWS, a cluster, a broken data key."""


class InvalidInput(ServiceError):
    """The input is wrong; `errors` says which field and why."""

    def __init__(
        self, message: str | None = None, *, field: str | None = None, errors: Mapping[str, str] | None = None
    ) -> None:
        if message is None:
            message = "; ".join(f"{name}: {text}" for name, text in (errors or {}).items()) or "invalid input"
        super().__init__(message, field=field, errors=errors)
