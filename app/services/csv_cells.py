"""The one CSV writer every export uses: cells that a spreadsheet would run as a formula are defused.

A text cell starting with = + - @ (or a tab or carriage return, which some spreadsheets skip before
looking) gets a leading apostrophe (OWASP's advice for CSV injection): the audit trail holds text
anyone can type, such as a user name at sign-in or a User-Agent. Numbers are written as they are.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """`csv.writer` whose every row goes through `safe_cell`."""

    def __init__(self, buffer: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(buffer, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(value) for value in row])
