"""The drill vocabulary: states, checklist items, check statuses and refusals."""

from __future__ import annotations

from dataclasses import dataclass

from app.services.errors import Conflict, InvalidInput

PLANNED, RUNNING, ENDED, ABORTED = "planned", "running", "ended", "aborted"
STATES = (PLANNED, RUNNING, ENDED, ABORTED)
FINISHED = (ENDED, ABORTED)

# Check statuses: pending (not observed yet), pass, fail, confirm (a person must confirm).
PENDING, PASS, FAIL, CONFIRM = "pending", "pass", "fail", "confirm"
CHECK_STATUSES = (PENDING, PASS, FAIL, CONFIRM)

# Drill outcomes.
PASSED, FAILED, INCOMPLETE = "passed", "failed", "incomplete"

MAX_DURATION_MINUTES = 24 * 60
ATTESTATION_TOPIC = "disconnect-drill"


@dataclass(frozen=True)
class Item:
    key: str
    label: str
    # outpost: one check per drill; cluster: one per cluster; path: one per credential and path.
    scope: str
    # Lifeline checks it itself (False: a person confirms it on the drill page).
    automatic: bool = True
    # Checked once (an issue-and-revoke round), not every round.
    once: bool = False


ITEMS: dict[str, Item] = {
    item.key: item
    for item in (
        Item("disconnect", "The disconnect really happened (CloudWatch and the site view agree)", "outpost"),
        Item("iam_refused", "IAM authentication is refused, as expected while disconnected", "cluster"),
        Item("breakglass", "Each valid break-glass credential works through every path", "path"),
        Item("lifeline_reads", "Reads succeed with Lifeline's own x509 identity", "cluster"),
        Item("issue_new", "Issuing a new credential works during the disconnect", "cluster", once=True),
        Item("nodes_workloads", "Nodes stay Ready and running workloads stay up", "cluster"),
        Item("predictions", "What readiness predicted (EBS, images) matches what was observed", "cluster"),
        Item(
            "local_dns", "Local DNS still resolves the cluster endpoint (a person confirms)", "cluster", False
        ),
        Item(
            "laptop_kubeconfig",
            "Someone used a break-glass kubeconfig from a laptop (a person confirms)",
            "cluster",
            False,
        ),
    )
}
DEFAULT_CHECKLIST = tuple(ITEMS)


class DrillConflict(Conflict):
    """The drill's state forbids it (ending a planned drill, a second drill on one Outpost)."""


class DrillInputError(InvalidInput):
    """A drill form or request with a bad field."""
