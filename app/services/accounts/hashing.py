"""Password checks, bounded: at most N Argon2 verifications at once (each takes 64 MiB).

Beyond the cap a check waits briefly for a slot and then is refused with `HashingBusy` (429 with
Retry-After at the edge), so a burst of anonymous sign-ins cannot grow the process without bound.
Callers check the password with no database connection held (sign-in reads the hash in a short
session of its own first).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from app.services.errors import ServiceError

RETRY_AFTER_SECONDS = 1
SLOT_WAIT_SECONDS = 2.0


class HashingBusy(ServiceError):
    """Every password-check slot is taken; try again after `retry_after` seconds."""

    retry_after = RETRY_AFTER_SECONDS

    def __init__(self) -> None:
        super().__init__("Too many sign-ins at once; try again in a second.")


class HashGate:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0

    @contextmanager
    def slot(self, wait: float = SLOT_WAIT_SECONDS) -> Iterator[None]:
        if not self._slots.acquire(timeout=wait):
            raise HashingBusy()
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            yield
        finally:
            with self._lock:
                self.active -= 1
            self._slots.release()


_gate = HashGate(4)


def configure(limit: int) -> HashGate:
    """Set the cap (from LIFELINE_PASSWORD_HASH_CONCURRENCY, at app start)."""
    global _gate
    if _gate.limit != limit or _gate.active:
        _gate = HashGate(limit)
    return _gate


def gate() -> HashGate:
    return _gate
