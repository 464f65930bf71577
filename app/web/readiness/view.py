"""Presentation helpers for the cluster pages: finding filters, grouping, and the score chart geometry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.models.readiness import ReadinessSample
from app.services.readiness.catalogue import worst
from app.services.readiness.export import STATUS_ORDER, ordered
from app.services.readiness.model import Finding, Severity, Status

SEVERITIES = [s.value for s in Severity]
STATUSES = [s.value for s in Status]


@dataclass(frozen=True)
class FindingFilter:
    status: str = ""
    severity: str = ""
    check_id: str = ""
    query: str = ""

    @classmethod
    def parse(
        cls, status: str | None, severity: str | None, check_id: str | None, query: str | None
    ) -> FindingFilter:
        return cls(
            status=status if status in STATUSES or status == "open" else "",
            severity=severity if severity in SEVERITIES else "",
            check_id=(check_id or "")[:64],
            query=(query or "").strip()[:100],
        )

    def keep(self, item: Finding) -> bool:
        if self.status == "open" and item.status not in (Status.fail, Status.warn):
            return False
        if self.status and self.status != "open" and item.status.value != self.status:
            return False
        if self.severity and item.severity.value != self.severity:
            return False
        if self.check_id and item.check_id != self.check_id:
            return False
        if self.query:
            needle = self.query.lower()
            text = " ".join([item.title, item.summary, *(e.ref + " " + e.detail for e in item.evidence)])
            return needle in text.lower()
        return True

    def apply(self, findings: Iterable[Finding]) -> list[Finding]:
        return [f for f in ordered(findings) if self.keep(f)]

    def params(self, **overrides: str) -> str:
        values = {"status": self.status, "severity": self.severity, "check": self.check_id, "q": self.query}
        values.update(overrides)
        return "&".join(f"{k}={v}" for k, v in values.items() if v)


@dataclass(frozen=True)
class FindingGroup:
    """Findings of one status and one severity, e.g. every failing critical check."""

    status: str
    severity: str
    items: list[Finding]

    @property
    def folded(self) -> bool:
        """Passing (and accepted) checks start closed: they need no action."""
        return self.status in (Status.passed.value, Status.accepted.value)


def grouped_by_status_and_severity(findings: Sequence[Finding]) -> list[FindingGroup]:
    """Fail before warn, unknown, accepted and pass; critical first within each status."""
    groups = []
    for status in sorted(Status, key=lambda s: STATUS_ORDER[s]):
        for severity in Severity:
            items = [f for f in findings if f.status == status and f.severity == severity]
            if items:
                groups.append(FindingGroup(status.value, severity.value, items))
    return groups


@dataclass(frozen=True)
class ReadinessSummary:
    """What the cluster page says first: the score, what fails by severity, what to do first."""

    score: int | None
    total: int
    failing: list[tuple[str, int]]  # (severity, count) of failing findings, critical first
    warnings: int
    passing: int
    first_actions: list[Finding]  # the top three fail/warn findings, most severe first

    @property
    def failing_total(self) -> int:
        return sum(count for _, count in self.failing)


def readiness_summary(findings: Sequence[Finding], score: int | None) -> ReadinessSummary:
    fails = [f for f in findings if f.status == Status.fail]
    failing = [(s.value, n) for s in Severity if (n := sum(1 for f in fails if f.severity == s))]
    return ReadinessSummary(
        score=score,
        total=len(findings),
        failing=failing,
        warnings=sum(1 for f in findings if f.status == Status.warn),
        passing=sum(1 for f in findings if f.status == Status.passed),
        first_actions=worst(findings, limit=3),
    )


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    score: int
    at: dt.datetime


@dataclass(frozen=True)
class ScoreChart:
    width: int
    height: int
    points: list[ChartPoint]
    segments: list[str]  # SVG polyline point lists; a gap where a poll had no score
    gaps: list[tuple[float, float]]  # x ranges where the cluster was unreachable
    first: dt.datetime | None
    last: dt.datetime | None

    @property
    def empty(self) -> bool:
        return not self.points


def score_chart(samples: Sequence[ReadinessSample], width: int = 640, height: int = 160) -> ScoreChart:
    """Geometry of the score history (server-rendered SVG: no script, CSP-safe)."""
    left, right, top, bottom = 36.0, 8.0, 8.0, 20.0
    if not samples:
        return ScoreChart(width, height, [], [], [], None, None)
    first, last = samples[0].polled_at, samples[-1].polled_at
    span = max((last - first).total_seconds(), 1.0)

    def x_of(at: dt.datetime) -> float:
        return round(left + (width - left - right) * (at - first).total_seconds() / span, 1)

    def y_of(value: int) -> float:
        return round(top + (height - top - bottom) * (1 - value / 100), 1)

    points: list[ChartPoint] = []
    segments: list[str] = []
    gaps: list[tuple[float, float]] = []
    current: list[str] = []
    gap_start: float | None = None
    for sample in samples:
        x = x_of(sample.polled_at)
        if sample.score is None:
            if current:
                segments.append(" ".join(current))
                current = []
            gap_start = x if gap_start is None else gap_start
            continue
        if gap_start is not None:
            gaps.append((gap_start, max(x - gap_start, 2.0)))
            gap_start = None
        y = y_of(sample.score)
        points.append(ChartPoint(x, y, sample.score, sample.polled_at))
        current.append(f"{x},{y}")
    if current:
        segments.append(" ".join(current))
    if gap_start is not None:
        gaps.append((gap_start, max(width - right - gap_start, 2.0)))
    return ScoreChart(width, height, points, segments, gaps, first, last)
