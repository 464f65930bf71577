"""One vocabulary for whether Lifeline can reach a cluster, from its last poll: reachable (IAM
works), cut off from the Region but reachable with x509, locked out (the API answered, no identity
worked), or unreachable (the API did not answer). Pages, the API and the readiness job use these words.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app.models.readiness import ClusterReadiness

NOT_POLLED = "not_polled"
REACHABLE = "reachable"
CUT_OFF = "cut_off"
LOCKED_OUT = "locked_out"
UNREACHABLE = "unreachable"

CUT_OFF_LABEL = "cut off from the Region (IAM unavailable), reachable with x509"

LABELS = {
    NOT_POLLED: "not polled",
    REACHABLE: "reachable",
    CUT_OFF: CUT_OFF_LABEL,
    LOCKED_OUT: "IAM refused, no working x509 identity",
    UNREACHABLE: "unreachable",
}
TONES = {NOT_POLLED: "unknown", REACHABLE: "ok", CUT_OFF: "warn", LOCKED_OUT: "bad", UNREACHABLE: "bad"}


@dataclass(frozen=True)
class Reachability:
    key: str
    x509_last_ok_at: dt.datetime | None

    @property
    def label(self) -> str:
        return LABELS[self.key]

    @property
    def tone(self) -> str:
        return TONES[self.key]

    @property
    def cut_off(self) -> bool:
        return self.key == CUT_OFF


def reachability(state: ClusterReadiness | None) -> Reachability:
    """The cluster's reachability as of its last poll (a 401 to IAM is an answer, not an outage)."""
    if state is None or state.last_polled_at is None:
        return Reachability(NOT_POLLED, None)
    last_ok = state.x509_last_ok_at
    if state.reachable and state.auth_path == "iam":
        return Reachability(REACHABLE, last_ok)
    if state.reachable and state.auth_path == "x509":
        return Reachability(CUT_OFF, last_ok)
    if state.api_answered:
        return Reachability(LOCKED_OUT, last_ok)
    return Reachability(UNREACHABLE, last_ok)
