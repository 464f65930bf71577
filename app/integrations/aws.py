"""The one boto3 client factory, built from settings: explicit timeouts, standard retries, optional
endpoint, and one client per service and region reused for the factory's lifetime.

Every AWS call in Lifeline goes through `AwsClients`; nothing builds a client at import time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from app.settings import Settings

THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
)
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"}
)


# Parsing botocore's service models dominates client creation; one loader (it caches what it has
# read) is shared by every session. Sessions themselves stay per client: they are not thread-safe.
_LOADER = botocore.loaders.create_loader()
_CREATE_LOCK = threading.Lock()


def new_session() -> boto3.session.Session:
    """A fresh boto3 Session that reuses the process-wide, already-parsed service models."""
    core = botocore.session.Session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core)


@dataclass(frozen=True)
class AwsClients:
    """Factory for boto3 clients configured from `Settings`.

    Building a client costs most of a short poll's CPU (endpoint rules, service model), so each
    (service, region) client is built once per factory and reused; boto3 clients are thread-safe,
    only their creation is not. Equal settings give equal (and equally hashed) factories.
    """

    endpoint_url: str | None
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    _built: dict[tuple[str, str], Any] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> AwsClients:
        return cls(
            endpoint_url=settings.aws_endpoint_url,
            connect_timeout=settings.aws_connect_timeout_seconds,
            read_timeout=settings.aws_read_timeout_seconds,
            max_attempts=settings.aws_max_attempts,
        )

    def config(self) -> Config:
        # Standard mode retries throttling and transient errors with exponential back-off + jitter.
        return Config(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"max_attempts": self.max_attempts, "mode": "standard"},
        )

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        with _CREATE_LOCK:
            if key not in self._built:
                session: Any = new_session()
                self._built[key] = session.client(
                    service, region_name=region, endpoint_url=self.endpoint_url, config=self.config()
                )
            return self._built[key]


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def describe_client_error(exc: ClientError) -> str:
    """'AccessDenied: User ... is not authorized ...' for showing to an operator."""
    err = exc.response.get("Error", {})
    return f"{err.get('Code', 'Error')}: {err.get('Message', str(exc))}"
