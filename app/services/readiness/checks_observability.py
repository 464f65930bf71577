"""`local-observability`: is there a metrics store and a log pipeline that keep working offline?

Judged by what the components do, not what they are called: a Prometheus server (or its
operator's `Prometheus` resource) stores metrics in the cluster, while node-exporter or
kube-state-metrics alone only expose them. A log agent counts when one of its outputs is local;
Fluent Bit shipping to `cloudwatch_logs`, Kinesis, S3 or an `*.amazonaws.com` host goes dark with
the Region. Outputs are read from the ConfigMaps the agent mounts (Fluent Bit classic and YAML
configuration, Fluentd `<match>` blocks, Vector sinks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from app.services.readiness.model import CheckContext, ClusterSnapshot, Evidence, Finding, Status
from app.services.readiness.objects import (
    distinct_objects,
    evidence,
    group_evidence,
    name_of,
    namespace_of,
    workload_groups,
)
from app.services.readiness.pods import PodGroup
from app.services.readiness.specs import finding

# Image names (last path segment, no tag) of each role.
METRIC_STORES = frozenset(
    {"prometheus", "victoria-metrics", "vmsingle", "vmstorage", "mimir", "thanos", "cortex", "vmselect"}
)
METRIC_STORE_KINDS = frozenset({"Prometheus", "VMSingle", "VMCluster"})
EXPORTERS = ("exporter", "kube-state-metrics", "metrics-server", "prometheus-operator", "prometheus-adapter")
LOG_STORES = frozenset({"loki", "elasticsearch", "opensearch", "graylog", "victoria-logs"})
LOG_AGENTS = frozenset(
    {
        "fluent-bit",
        "fluentbit",
        "aws-for-fluent-bit",
        "fluentd",
        "fluentd-kubernetes-daemonset",
        "vector",
        "promtail",
        "logstash",
        "filebeat",
    }
)
DASHBOARDS = frozenset({"grafana"})
# Outputs that write to a Region service (Fluent Bit names, Fluentd @types, Vector sink types).
REGION_OUTPUTS = frozenset(
    {
        "cloudwatch",
        "cloudwatch_logs",
        "kinesis",
        "kinesis_firehose",
        "kinesis_streams",
        "firehose",
        "s3",
        "aws_cloudwatch_logs",
        "aws_s3",
        "aws_kinesis_firehose",
        "aws_kinesis_streams",
    }
)
NOT_A_STORE = frozenset({"stdout", "null", "counter", "console", "blackhole", "exit"})

_SECTION = re.compile(r"^\s*\[(\w+)\]\s*$")
_KEY = re.compile(r"^\s*([\w.@-]+)\s+(.+?)\s*$")
_MATCH = re.compile(r"<match\b[^>]*>(.*?)</match>", re.S | re.I)
_ATTR = re.compile(r"^\s*(@type|host|endpoint)\s+(\S+)", re.M | re.I)


def is_log_agent(group: PodGroup) -> bool:
    """A pod group running a log agent (whose mounted ConfigMaps say where its logs go)."""
    return any(image_name(image) in LOG_AGENTS for image in group.images)


def image_name(image: str) -> str:
    """`quay.io/prometheus/node-exporter:v1.8` -> `node-exporter`."""
    last = image.rsplit("/", 1)[-1]
    return last.split("@", 1)[0].split(":", 1)[0].lower()


def _outputs(text: str) -> list[tuple[str, str]]:
    """(output type, host) pairs in an agent configuration file; empty when none can be read."""
    found: list[tuple[str, str]] = []
    # Fluent Bit classic format: [OUTPUT] sections of `Key Value` lines.
    section = None
    current: dict[str, str] = {}
    for line in [*text.splitlines(), "[END]"]:
        head = _SECTION.match(line)
        if head:
            if section == "OUTPUT" and current.get("name"):
                found.append((current["name"].lower(), current.get("host", "")))
            section, current = head.group(1).upper(), {}
            continue
        pair = _KEY.match(line)
        if section == "OUTPUT" and pair:
            current[pair.group(1).lower()] = pair.group(2)
    # Fluentd: <match> blocks with @type and host.
    for block in _MATCH.findall(text):
        attrs = {k.lower(): v for k, v in _ATTR.findall(block)}
        if attrs.get("@type"):
            found.append((attrs["@type"].lower(), attrs.get("host", attrs.get("endpoint", ""))))
    if found:
        return found
    # Fluent Bit YAML (pipeline.outputs) and Vector (sinks) configuration.
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    if not isinstance(data, Mapping):
        return []
    pipeline = data.get("pipeline")
    if isinstance(pipeline, Mapping):
        for output in pipeline.get("outputs") or []:
            if isinstance(output, Mapping) and output.get("name"):
                found.append((str(output["name"]).lower(), str(output.get("host", ""))))
    sinks = data.get("sinks")
    if isinstance(sinks, Mapping):
        for sink in sinks.values():
            if isinstance(sink, Mapping) and sink.get("type"):
                found.append((str(sink["type"]).lower(), str(sink.get("endpoint", ""))))
    return found


def _is_region(kind: str, host: str) -> bool:
    return kind in REGION_OUTPUTS or ".amazonaws.com" in host.lower()


def _agent_outputs(
    group: PodGroup, config_maps: Mapping[tuple[str, str], Mapping[str, Any]]
) -> list[tuple[str, str]] | None:
    """Every output the agent's mounted ConfigMaps define; None when none of them is in the data."""
    seen = False
    outputs: list[tuple[str, str]] = []
    for name in group.config_maps:
        cm = config_maps.get((group.namespace, name))
        if cm is None:
            continue
        seen = True
        for value in (cm.get("data") or {}).values():
            outputs.extend(_outputs(str(value)))
    return outputs if seen else None


def check_local_observability(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    groups = workload_groups(snapshot)
    stores = [
        evidence(obj, f"metrics: {kind} resource (a Prometheus-compatible server stores metrics locally)")
        for kind in METRIC_STORE_KINDS
        for obj in snapshot.of_kind(kind)
    ]
    if not groups and not stores:
        return [finding("local-observability", Status.unknown, "No workloads or pods to inspect.")]
    config_maps = {(namespace_of(cm) or "default", name_of(cm)): cm for cm in snapshot.of_kind("ConfigMap")}
    metrics: list[Evidence] = list(stores)
    logs: list[Evidence] = []
    exporters: list[Evidence] = []
    remote: list[Evidence] = []
    unread: list[Evidence] = []
    dashboards: list[Evidence] = []
    for group in groups:
        names = {image_name(image) for image in group.images}
        if names & METRIC_STORES:
            metrics.append(
                group_evidence(group, f"metrics: {', '.join(sorted(names & METRIC_STORES))} server")
            )
        elif any(word in name for name in names for word in EXPORTERS):
            exporters.append(group_evidence(group, "metrics exporter only: nothing stores what it exposes"))
        if names & DASHBOARDS:
            dashboards.append(group_evidence(group, "dashboards: grafana"))
        if names & LOG_STORES:
            logs.append(group_evidence(group, f"logs: {', '.join(sorted(names & LOG_STORES))} store"))
        agents = names & LOG_AGENTS
        if not agents:
            continue
        outputs = _agent_outputs(group, config_maps)
        label = ", ".join(sorted(agents))
        if outputs is None and not snapshot.has_kind("ConfigMap"):
            # A live poll lists no ConfigMaps: the agent's outputs cannot be read, so say so and
            # judge it by what it is.
            logs.append(group_evidence(group, f"logs: {label} (outputs not collected; judged by image)"))
            continue
        if outputs is None:
            unread.append(
                group_evidence(
                    group, f"log agent {label}: its configuration is not in the data, outputs unknown"
                )
            )
            continue
        local = [kind for kind, host in outputs if not _is_region(kind, host) and kind not in NOT_A_STORE]
        if local:
            logs.append(group_evidence(group, f"logs: {label} ships to {', '.join(sorted(set(local)))}"))
        else:
            shown = ", ".join(sorted({kind for kind, _ in outputs})) or "no output"
            remote.append(
                group_evidence(
                    group, f"log agent {label} ships only to {shown}: unreachable while disconnected"
                )
            )
    problems = exporters + remote + unread
    if not metrics and not logs:
        ev = problems or [
            Evidence(
                "Cluster",
                snapshot.cluster_name,
                None,
                f"none of {len(groups)} workloads stores metrics or logs",
            )
        ]
        return [
            finding(
                "local-observability",
                Status.fail,
                f"{distinct_objects(ev)} object(s) looked at; no local metrics store or log pipeline: the "
                "cluster goes dark while CloudWatch is unreachable.",
                ev,
            )
        ]
    missing = [part for part, items in (("metrics store", metrics), ("log pipeline", logs)) if not items]
    ev = metrics + logs + dashboards + problems
    if missing:
        return [
            finding(
                "local-observability",
                Status.warn,
                f"{distinct_objects(ev)} observability workload(s) found, but no local {missing[0]}.",
                ev,
            )
        ]
    return [
        finding(
            "local-observability",
            Status.passed,
            f"{distinct_objects(ev)} observability workload(s): a local metrics store and log pipeline run.",
            ev,
        )
    ]


__all__ = ["check_local_observability", "image_name"]
