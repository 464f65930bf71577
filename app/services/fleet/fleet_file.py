"""The YAML fleet file (GitOps): parsed from PyYAML's node graph so every problem has a line number.

Pure: reads text, returns frozen dataclasses or raises `FleetFileError` listing every problem as
`file:line: reason`. Applying the result to the database is `services.fleet.apply_fleet_file`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from app.integrations.nesting import TooDeep, check_depth
from app.services.fleet import rules

TOP_LEVEL_KEYS = ("outposts", "clusters", "discovery")
OUTPOST_KEYS = ("id", "name", "region", "account")
CLUSTER_KEYS = ("name", "region", "outpost")
DISCOVERY_KEYS = ("regions",)
# Keys starting with this prefix are ignored anywhere (room for notes and tooling, as in compose files).
EXTENSION_PREFIX = "x-"

T = TypeVar("T")


@dataclass(frozen=True)
class FleetFileProblem:
    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


class FleetFileError(Exception):
    """The fleet file is invalid; `problems` lists each one with its line. Nothing was applied."""

    def __init__(self, problems: list[FleetFileProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class FileOutpost:
    outpost_id: str
    name: str
    region: str
    account_id: str | None
    line: int


@dataclass(frozen=True)
class FileCluster:
    name: str
    region: str
    outpost_id: str | None
    line: int


@dataclass(frozen=True)
class FleetFile:
    source: str
    outposts: tuple[FileOutpost, ...] = ()
    clusters: tuple[FileCluster, ...] = ()
    discovery_regions: tuple[str, ...] = ()

    def location(self, line: int) -> str:
        return f"{self.source}:{line}"


def load_fleet_file(path: Path | str) -> FleetFile:
    """Read and parse a fleet file; raise FleetFileError (with file:line) on any problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FleetFileError([FleetFileProblem(source, 0, "file does not exist")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FleetFileError([FleetFileProblem(source, 0, f"cannot read the file: {exc}")]) from None
    return parse_fleet_text(text, source)


def parse_fleet_text(text: str, source: str = "<fleet>") -> FleetFile:
    """Parse fleet-file YAML; raise FleetFileError listing every problem, sorted by line."""
    return _Parser(source).parse(text)


@dataclass
class _Parser:
    source: str
    problems: list[FleetFileProblem] = field(default_factory=list)

    def problem(self, node: Node | int, message: str) -> None:
        line = node if isinstance(node, int) else node.start_mark.line + 1
        self.problems.append(FleetFileProblem(self.source, line, message))

    def parse(self, text: str) -> FleetFile:
        try:
            check_depth(text)
        except TooDeep as exc:
            raise FleetFileError([FleetFileProblem(self.source, exc.line, str(exc))]) from None
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            context = exc.context or ""
            if exc.context_mark is not None and mark is not exc.context_mark:
                context += f" (started on line {exc.context_mark.line + 1})"
            reason = " ".join(part for part in (context.strip(), exc.problem) if part)
            raise FleetFileError(
                [FleetFileProblem(self.source, line, f"YAML syntax error: {reason}")]
            ) from None
        except yaml.YAMLError as exc:
            raise FleetFileError([FleetFileProblem(self.source, 0, f"YAML error: {exc}")]) from None
        if root is None or (isinstance(root, ScalarNode) and root.tag == "tag:yaml.org,2002:null"):
            # An empty file would remove every file-managed entry (and its history); almost always an
            # accident (a truncated checkout), so it must be said explicitly.
            raise FleetFileError(
                [
                    FleetFileProblem(
                        self.source, 1, "the file is empty; write `outposts: []` for an empty fleet"
                    )
                ]
            )
        mapping = self.mapping(root, "the top level", TOP_LEVEL_KEYS)
        outposts: list[FileOutpost] = []
        clusters: list[FileCluster] = []
        regions: list[str] = []
        if "outposts" in mapping:
            outposts = self.entries(mapping["outposts"], "outposts", self.outpost)
        if "clusters" in mapping:
            clusters = self.entries(mapping["clusters"], "clusters", self.cluster)
        if "discovery" in mapping:
            regions = self.discovery(mapping["discovery"])
        self.check_duplicates(outposts, clusters)
        if self.problems:
            raise FleetFileError(self.problems)
        return FleetFile(self.source, tuple(outposts), tuple(clusters), tuple(regions))

    # -- structure

    def mapping(self, node: Node, what: str, allowed: tuple[str, ...]) -> dict[str, Node]:
        """The node's keys and values; unknown or repeated keys are problems."""
        if not isinstance(node, MappingNode):
            self.problem(node, f"{what} must be a mapping (key: value), got {_kind(node)}")
            return {}
        result: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str):
                self.problem(key_node, f"{what}: keys must be plain words, got {_kind(key_node)}")
                continue
            if key.startswith(EXTENSION_PREFIX):
                continue
            if key not in allowed:
                self.problem(key_node, f"unknown key {key!r} in {what} (known keys: {', '.join(allowed)})")
                continue
            if key in result:
                self.problem(key_node, f"key {key!r} appears twice in {what}")
                continue
            result[key] = value_node
        return result

    def entries(self, node: Node, what: str, parse_one: Callable[[MappingNode], T | None]) -> list[T]:
        if _is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.problem(node, f"{what} must be a list (lines starting with '- '), got {_kind(node)}")
            return []
        result = []
        for item in node.value:
            if not isinstance(item, MappingNode):
                self.problem(item, f"each entry of {what} must be a mapping, got {_kind(item)}")
                continue
            parsed = parse_one(item)
            if parsed is not None:
                result.append(parsed)
        return result

    def text(
        self, fields: dict[str, Node], key: str, owner: Node, what: str, *, required: bool
    ) -> str | None:
        """A scalar as written in the file (so 000123456789 keeps its zeros; YAML would read octal)."""
        node = fields.get(key)
        if node is None or _is_null(node):
            if required:
                self.problem(node or owner, f"{what}: {key} is missing")
            return None
        if not isinstance(node, ScalarNode):
            self.problem(node, f"{what}: {key} must be a single value, got {_kind(node)}")
            return None
        if node.tag == "tag:yaml.org,2002:bool":
            self.problem(node, f"{what}: {key} must be text, got the boolean {node.value!r}")
            return None
        return str(node.value).strip()

    def check(self, node: Node, what: str, key: str, problem: str | None) -> bool:
        if problem is not None:
            self.problem(node, f"{what}: {key} {problem}")
            return False
        return True

    # -- entries

    def outpost(self, node: MappingNode) -> FileOutpost | None:
        fields = self.mapping(node, "an Outpost entry", OUTPOST_KEYS)
        what = "Outpost"
        outpost_id = self.text(fields, "id", node, what, required=True)
        if outpost_id is not None:
            what = f"Outpost {outpost_id}"
        name = self.text(fields, "name", node, what, required=True)
        region = self.text(fields, "region", node, what, required=True)
        account = self.text(fields, "account", node, what, required=False)
        ok = all(
            [
                outpost_id is None
                or self.check(fields["id"], what, "id", rules.outpost_id_problem(outpost_id)),
                name is None or self.check(fields["name"], what, "name", rules.name_problem(name)),
                region is None or self.check(fields["region"], what, "region", rules.region_problem(region)),
                account is None
                or self.check(fields["account"], what, "account", rules.account_id_problem(account)),
            ]
        )
        if not ok or outpost_id is None or name is None or region is None:
            return None
        return FileOutpost(outpost_id, name, region, account or None, node.start_mark.line + 1)

    def cluster(self, node: MappingNode) -> FileCluster | None:
        fields = self.mapping(node, "a cluster entry", CLUSTER_KEYS)
        what = "cluster"
        name = self.text(fields, "name", node, what, required=True)
        if name is not None:
            what = f"cluster {name}"
        region = self.text(fields, "region", node, what, required=True)
        outpost_id = self.text(fields, "outpost", node, what, required=False)
        ok = all(
            [
                name is None or self.check(fields["name"], what, "name", rules.cluster_name_problem(name)),
                region is None or self.check(fields["region"], what, "region", rules.region_problem(region)),
                outpost_id is None
                or self.check(fields["outpost"], what, "outpost", rules.outpost_id_problem(outpost_id)),
            ]
        )
        if not ok or name is None or region is None:
            return None
        return FileCluster(name, region, outpost_id or None, node.start_mark.line + 1)

    def discovery(self, node: Node) -> list[str]:
        if _is_null(node):
            return []
        fields = self.mapping(node, "discovery", DISCOVERY_KEYS)
        regions_node = fields.get("regions")
        if regions_node is None or _is_null(regions_node):
            return []
        if not isinstance(regions_node, SequenceNode):
            self.problem(regions_node, f"discovery: regions must be a list, got {_kind(regions_node)}")
            return []
        regions: list[str] = []
        for item in regions_node.value:
            if not isinstance(item, ScalarNode) or _is_null(item):
                self.problem(item, f"discovery: each region must be a region name, got {_kind(item)}")
                continue
            region = str(item.value).strip()
            valid = self.check(item, "discovery", "region", rules.region_problem(region))
            if valid and region not in regions:
                regions.append(region)
        return regions

    def check_duplicates(self, outposts: list[FileOutpost], clusters: list[FileCluster]) -> None:
        seen_outposts: dict[str, int] = {}
        for outpost in outposts:
            if outpost.outpost_id in seen_outposts:
                self.problem(
                    outpost.line,
                    f"Outpost {outpost.outpost_id} is listed twice (first on line "
                    f"{seen_outposts[outpost.outpost_id]})",
                )
            else:
                seen_outposts[outpost.outpost_id] = outpost.line
        regions_by_outpost = {o.outpost_id: o.region for o in outposts}
        seen_clusters: dict[tuple[str, str], int] = {}
        for cluster in clusters:
            key = (cluster.name, cluster.region)
            if key in seen_clusters:
                self.problem(
                    cluster.line,
                    f"cluster {cluster.name} in {cluster.region} is listed twice "
                    f"(first on line {seen_clusters[key]})",
                )
            else:
                seen_clusters[key] = cluster.line
            outpost_region = regions_by_outpost.get(cluster.outpost_id or "")
            if outpost_region is not None and outpost_region != cluster.region:
                self.problem(
                    cluster.line,
                    f"cluster {cluster.name} is in {cluster.region} but its Outpost "
                    f"{cluster.outpost_id} is in {outpost_region}",
                )


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if _is_null(node):
        return "nothing"
    return f"{node.value!r}"
