"""CloudWatch `AWS/Outposts` `ConnectedStatus` for many Outposts: one GetMetricData per 500 queries.

Returns our own frozen dataclasses; boto3 dicts and exceptions never leave this module.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from app.integrations.aws import ACCESS_DENIED_CODES, THROTTLING_CODES, AwsClients, describe_client_error

log = logging.getLogger(__name__)

NAMESPACE = "AWS/Outposts"
METRIC = "ConnectedStatus"
# GetMetricData accepts at most 500 MetricDataQuery entries per request.
MAX_QUERIES_PER_REQUEST = 500

Status = Literal["ok", "no_data", "denied", "throttled", "unreachable", "error"]

NO_DATA_MESSAGE = (
    "CloudWatch returned no ConnectedStatus datapoints for this Outpost. If it has never reported, "
    "its metrics most likely live in the Outpost owner's account: poll with that account's "
    "credentials (or CloudWatch cross-account observability)."
)


@dataclass(frozen=True)
class Datapoint:
    """The Average of ConnectedStatus over [ts, ts + period)."""

    ts: dt.datetime
    value: float
    period: int


@dataclass(frozen=True)
class OutpostSeries:
    outpost_id: str
    datapoints: tuple[Datapoint, ...]
    status: Status
    message: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """Series per Outpost ID, plus how many API requests (pages) and HTTP attempts it took."""

    series: dict[str, OutpostSeries]
    requests: int
    attempts: int
    # Set when every request failed the same way (the whole region is unusable).
    region_status: Status = "ok"
    region_error: str | None = None
    windows: tuple[tuple[dt.datetime, dt.datetime, int], ...] = field(default=())
    # Per Outpost ID, the indexes (into `windows`) of the windows it did not fully get: the request
    # failed, was skipped after CloudWatch became unreachable, or answered InternalError for it.
    incomplete: dict[str, tuple[int, ...]] = field(default_factory=dict)


class _RequestCounter:
    """Counts HTTP attempts (retries included) through botocore's before-send event."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self, **_: Any) -> None:
        self.attempts += 1


def _classify(exc: Exception) -> tuple[Status, str]:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in THROTTLING_CODES:
            return "throttled", f"throttled by CloudWatch after retries ({describe_client_error(exc)})"
        if code in ACCESS_DENIED_CODES:
            return "denied", describe_client_error(exc)
        return "error", describe_client_error(exc)
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError):
        return "unreachable", f"AWS unreachable: {exc}"
    if isinstance(exc, ReadTimeoutError):
        return "unreachable", f"AWS unreachable (read timeout): {exc}"
    return "error", f"{type(exc).__name__}: {exc}"


def fetch_connected_status(
    clients: AwsClients,
    region: str,
    windows: Sequence[tuple[dt.datetime, dt.datetime, int, Sequence[str]]],
) -> FetchResult:
    """Fetch ConnectedStatus (Average) for the given Outposts over each (start, end, period, ids) window.

    Each window's Outposts are sent 500 queries per GetMetricData request; NextToken is followed.
    A failed request marks only its own Outposts; the others still get their data.
    """
    client = clients.client("cloudwatch", region)
    counter = _RequestCounter()
    client.meta.events.register("before-send.monitoring.GetMetricData", counter)
    points: dict[str, list[Datapoint]] = {}
    failures: dict[str, tuple[Status, str]] = {}
    partial_messages: dict[str, str] = {}
    requests = 0
    statuses: list[Status] = []
    errors: list[str] = []
    # Once CloudWatch is unreachable or keeps throttling, the remaining requests of this cycle
    # would only wait out the same timeouts and back-offs: they are skipped and marked alike.
    given_up: tuple[Status, str] | None = None
    incomplete: dict[str, list[int]] = {}
    for window_index, (start, end, period, outpost_ids) in enumerate(windows):
        for offset in range(0, len(outpost_ids), MAX_QUERIES_PER_REQUEST):
            chunk = list(outpost_ids[offset : offset + MAX_QUERIES_PER_REQUEST])
            for outpost_id in chunk:
                points.setdefault(outpost_id, [])
            if given_up is not None:
                statuses.append(given_up[0])
                for outpost_id in chunk:
                    failures.setdefault(outpost_id, given_up)
                    incomplete.setdefault(outpost_id, []).append(window_index)
                continue
            queries = [
                {
                    "Id": f"q{index}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": METRIC,
                            "Dimensions": [{"Name": "OutpostId", "Value": outpost_id}],
                        },
                        "Period": period,
                        "Stat": "Average",
                    },
                    "ReturnData": True,
                }
                for index, outpost_id in enumerate(chunk)
            ]
            token: str | None = None
            try:
                while True:
                    kwargs: dict[str, Any] = {
                        "MetricDataQueries": queries,
                        "StartTime": start,
                        "EndTime": end,
                        "ScanBy": "TimestampAscending",
                    }
                    if token:
                        kwargs["NextToken"] = token
                    requests += 1
                    response = client.get_metric_data(**kwargs)
                    for result in response.get("MetricDataResults", []):
                        outpost_id = chunk[int(str(result["Id"])[1:])]
                        code = result.get("StatusCode", "Complete")
                        if code == "Forbidden":
                            failures[outpost_id] = ("denied", _messages(result) or "Forbidden")
                        elif code == "InternalError":
                            partial_messages[outpost_id] = _messages(result) or "InternalError"
                            incomplete.setdefault(outpost_id, []).append(window_index)
                        for ts, value in zip(
                            result.get("Timestamps", []), result.get("Values", []), strict=False
                        ):
                            points[outpost_id].append(Datapoint(ts.astimezone(dt.UTC), float(value), period))
                    token = response.get("NextToken")
                    if not token:
                        break
                statuses.append("ok")
            except Exception as exc:  # classified and reported per Outpost, then per region
                status, message = _classify(exc)
                log.warning("GetMetricData in %s failed for %d Outposts: %s", region, len(chunk), message)
                statuses.append(status)
                errors.append(message)
                for outpost_id in chunk:
                    failures.setdefault(outpost_id, (status, message))
                    incomplete.setdefault(outpost_id, []).append(window_index)
                if status in ("unreachable", "throttled"):
                    given_up = (status, message)
    series: dict[str, OutpostSeries] = {}
    for outpost_id, datapoints in points.items():
        unique = sorted({p.ts: p for p in datapoints}.values(), key=lambda p: p.ts)
        if outpost_id in failures:
            status, message = failures[outpost_id]
            series[outpost_id] = OutpostSeries(outpost_id, tuple(unique), status, message)
        elif outpost_id in partial_messages:
            series[outpost_id] = OutpostSeries(
                outpost_id, tuple(unique), "error", partial_messages[outpost_id]
            )
        elif not unique:
            series[outpost_id] = OutpostSeries(outpost_id, (), "no_data", NO_DATA_MESSAGE)
        else:
            series[outpost_id] = OutpostSeries(outpost_id, tuple(unique), "ok")
    region_status: Status = "ok"
    region_error: str | None = None
    if statuses and all(s != "ok" for s in statuses):
        region_status = statuses[0] if len(set(statuses)) == 1 else "error"
        region_error = errors[0]
    elif errors:
        region_error = f"{len(errors)} of {len(statuses)} requests failed; first: {errors[0]}"
    return FetchResult(
        series=series,
        requests=requests,
        attempts=counter.attempts,
        region_status=region_status,
        region_error=region_error,
        windows=tuple((start, end, period) for start, end, period, _ in windows),
        incomplete={outpost_id: tuple(sorted(set(indexes))) for outpost_id, indexes in incomplete.items()},
    )


def _messages(result: dict[str, Any]) -> str:
    return "; ".join(str(m.get("Value", "")) for m in result.get("Messages", []) if m.get("Value"))
