"""Issue 12, finding 6: the audit CSV wrote an anonymous user's typed name or User-Agent as is, so a
cell starting with `=` ran as a formula in a spreadsheet. Every CSV export goes through one writer."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from app.services.csv_cells import SafeWriter, safe_cell
from app.web.security import CSRF_COOKIE


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_cells_are_defused(lead: str) -> None:
    assert safe_cell(f"{lead}HYPERLINK(1)") == f"'{lead}HYPERLINK(1)"
    assert safe_cell("plain") == "plain" and safe_cell(-1.5) == -1.5


def test_safe_writer_escapes_every_text_cell() -> None:
    buffer = io.StringIO()
    SafeWriter(buffer).writerow(["=1+1", "ok", 3])
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == ["'=1+1", "ok", "3"]


def test_audit_export_defuses_a_typed_user_name_and_user_agent(anon_client: Any, client_as: Any) -> None:
    anon_client.get("/login")
    token = anon_client.cookies.get(CSRF_COOKIE, "")
    anon_client.post(
        "/login",
        data={"username": "=cmd|' /C calc'!A0", "password": "x", "csrf_token": token},
        headers={"User-Agent": "@SUM(1+1)"},
    )
    admin = client_as("admin", "auditor")
    response = admin.get("/audit/export.csv", params={"action": "auth.sign_in"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text)))
    cells = [cell for row in rows[1:] for cell in row]
    assert "'=cmd|' /c calc'!a0" in cells or "'=cmd|' /C calc'!A0" in cells, cells
    assert "'@SUM(1+1)" in cells
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
