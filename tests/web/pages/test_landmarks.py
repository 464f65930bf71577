"""Labelled regions: every navigation landmark has a name, and a page's names are distinct, so a
screen reader's landmark list tells them apart (issue 19)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import make_outpost

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
NAV = re.compile(r"<nav\b[^>]*>")


def test_every_nav_in_the_templates_is_labelled() -> None:
    unlabelled = [
        f"{path.relative_to(TEMPLATES)}: {tag}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for tag in NAV.findall(path.read_text())
        if "aria-label" not in tag
    ]
    assert not unlabelled, "\n".join(unlabelled)


def test_outpost_page_landmarks_have_distinct_names(client: TestClient, session: Session) -> None:
    outpost = make_outpost(session)
    session.commit()
    html = client.get(f"/outposts/{outpost.outpost_id}").text
    labels = [re.search(r'aria-label="([^"]+)"', tag) for tag in NAV.findall(html)]
    names = [m.group(1) if m else None for m in labels]
    assert None not in names and len(names) == len(set(names)) >= 3, names
    assert "Breadcrumb" in names
