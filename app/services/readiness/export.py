"""Findings as JSON, CSV, SARIF 2.1.0 and a terminal table (shared by the CLI and the API)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from app import __version__
from app.services.csv_cells import SafeWriter
from app.services.readiness.model import Finding, Status
from app.services.readiness.specs import GUIDE_URL, SPECS

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {
    Status.fail: "error",
    Status.warn: "warning",
    Status.unknown: "note",
    Status.accepted: "warning",
    Status.passed: "none",
}
STATUS_ORDER = {Status.fail: 0, Status.warn: 1, Status.unknown: 2, Status.accepted: 3, Status.passed: 4}
CSV_COLUMNS = (
    "check_id",
    "status",
    "severity",
    "title",
    "summary",
    "kind",
    "namespace",
    "name",
    "detail",
    "remediation",
    "guide_section",
)


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Most urgent first: status, then severity, then ID."""
    return sorted(findings, key=lambda f: (STATUS_ORDER[f.status], -f.severity.rank, f.check_id))


def to_json(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    return [item.as_dict() for item in ordered(findings)]


def to_csv(findings: Iterable[Finding]) -> str:
    """One row per evidence object (one row for a finding without evidence)."""
    buffer = io.StringIO()
    writer = SafeWriter(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in ordered(findings):
        head = [item.check_id, item.status.value, item.severity.value, item.title, item.summary]
        tail = [item.remediation, item.guide_section]
        for ev in item.evidence or (None,):
            objects = [ev.kind, ev.namespace or "", ev.name, ev.detail] if ev else ["", "", "", ""]
            writer.writerow(head + objects + tail)
    return buffer.getvalue()


def to_sarif(
    findings: Sequence[Finding], artifact_uri: str = "cluster", skipped: Sequence[Exception] = ()
) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one rule per check, one result per non-passing finding."""
    rules = [
        {
            "id": spec.check_id,
            "name": "".join(part.capitalize() for part in spec.check_id.split("-")),
            "shortDescription": {"text": spec.title},
            "fullDescription": {"text": spec.catches},
            "help": {"text": spec.remediation},
            "helpUri": GUIDE_URL,
            "defaultConfiguration": {"level": "error" if spec.severity.rank >= 3 else "warning"},
            "properties": {"guideSection": spec.guide_section, "severity": spec.severity.value},
        }
        for spec in SPECS.values()
    ]
    index = {rule["id"]: position for position, rule in enumerate(rules)}
    results = []
    for item in ordered(findings):
        if item.status == Status.passed:
            continue
        result: dict[str, Any] = {
            "ruleId": item.check_id,
            "ruleIndex": index[item.check_id],
            "level": SARIF_LEVEL[item.status],
            "kind": "review" if item.status == Status.unknown else "fail",
            "message": {"text": item.summary},
            "locations": [
                {
                    "physicalLocation": {"artifactLocation": {"uri": artifact_uri}},
                    "logicalLocations": [
                        {"name": ev.name, "kind": "resource", "fullyQualifiedName": ev.ref}
                        for ev in item.evidence[:50]
                    ],
                }
            ],
            "properties": {
                "status": item.status.value,
                "severity": item.severity.value,
                "evidence": [ev.as_dict() for ev in item.evidence],
            },
        }
        if item.status == Status.unknown:
            result.pop("level")
            result["kind"] = "review"
        if item.status == Status.accepted and item.exemption:
            result["suppressions"] = [
                {
                    "kind": "external",
                    "status": "accepted",
                    "justification": str(item.exemption.get("reason", "")),
                }
            ]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "Outpost Lifeline readiness",
                        "version": __version__,
                        "informationUri": GUIDE_URL,
                        "rules": rules,
                    }
                },
                "results": results,
                # Documents left out of the check: the run is incomplete, and says which ones.
                "invocations": [
                    {
                        "executionSuccessful": not skipped,
                        "toolExecutionNotifications": [
                            {"level": "error", "message": {"text": f"skipped {error}"}} for error in skipped
                        ],
                    }
                ],
            }
        ],
    }


def to_table(findings: Iterable[Finding], *, evidence_limit: int = 5) -> str:
    """A terminal rendering: one block per finding, most urgent first."""
    lines = []
    items = ordered(findings)
    width = max((len(f.check_id) for f in items), default=10)
    for item in items:
        lines.append(
            f"{item.status.value.upper():8} {item.severity.value:8} {item.check_id:{width}}  {item.title}"
        )
        lines.append(f"{'':18}{item.summary}")
        for ev in item.evidence[:evidence_limit]:
            lines.append(f"{'':20}- {ev.ref}: {ev.detail}")
        if len(item.evidence) > evidence_limit:
            lines.append(f"{'':20}... and {len(item.evidence) - evidence_limit} more")
        if item.status in (Status.fail, Status.warn):
            lines.append(f"{'':18}fix: {item.remediation}")
    tally: dict[str, int] = {}
    for item in items:
        tally[item.status.value] = tally.get(item.status.value, 0) + 1
    lines.append("")
    lines.append(", ".join(f"{count} {status}" for status, count in tally.items()) or "no findings")
    return "\n".join(lines)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


__all__ = ["dumps", "ordered", "to_csv", "to_json", "to_sarif", "to_table"]
