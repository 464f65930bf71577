"""A depth limit for YAML and JSON text, checked before anything recursive reads it.

PyYAML's composer and constructor recurse once per nesting level, so a 1 KB file of 500 `[` ended in
a RecursionError traceback. The event parser underneath is a state machine (no recursion), so
walking its events measures the depth safely; JSON is read by the same parser (flow style).
"""

from __future__ import annotations

import yaml

MAX_DEPTH = 64


class TooDeep(ValueError):
    def __init__(self, line: int, limit: int) -> None:
        super().__init__(
            f"nested deeper than {limit} levels at line {line}; no fleet file or manifest needs that"
        )
        self.line = line


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when a collection opens deeper than `limit`; YAML syntax errors are left to the
    caller's own parse (which reports them with their line)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > limit:
                    mark = event.start_mark
                    raise TooDeep(mark.line + 1 if mark is not None else 0, limit)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return
