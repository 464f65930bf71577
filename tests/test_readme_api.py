"""The README's API examples work as written: every `METHOD /api/...` it names is in the OpenAPI
schema (which documents the Bearer token), and every curl example runs against a live server."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.db import session_scope
from app.services.accounts.tokens import create_token
from app.services.accounts.users import get_user_by_username
from app.services.audit import Actor
from tests.conftest import IN_CI, LiveServer, create_account

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/api/[^`\s]*)")


def _template(path: str) -> str:
    path = path.split("?", 1)[0]
    return re.sub(r"\{[^}]*\}|<[^>]*>", "{}", path).rstrip("/")


def readme_routes() -> list[tuple[str, str]]:
    routes = []
    for method, raw in ROUTE.findall(README):
        base = raw.split("?", 1)[0]
        optional = re.fullmatch(r"(.*)\[(/[^\]]*)\]", base)  # `/events[/<id>]`: both forms
        paths = [optional.group(1), optional.group(1) + optional.group(2)] if optional else [base]
        routes += [(method, _template(path)) for path in paths if "…" not in path and "..." not in path]
    return routes


def readme_curls() -> list[str]:
    """Curl commands on the dashboard's documented address: lines of code blocks (continuations
    joined) and inline code."""
    joined = README.replace("\\\n", " ")
    found = [line.strip() for line in joined.splitlines() if line.strip().startswith("curl ")]
    found += re.findall(r"`(curl [^`]*)`", README)
    return [c for c in found if re.search(r"(127\.0\.0\.1|localhost):8000/api/", c)]


def test_every_api_route_in_the_readme_is_in_the_schema_with_its_auth(client_as: Any) -> None:
    schema = client_as("viewer").get("/api/openapi.json").json()
    served = {(method.upper(), _template(path)) for path, item in schema["paths"].items() for method in item}
    routes = readme_routes()
    assert len(routes) > 20
    missing = sorted(set(routes) - served)
    assert missing == [], f"the README names routes the API does not serve: {missing}"
    assert schema["components"]["securitySchemes"]["apiToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["apiToken"]["description"],
    }
    assert schema["security"] == [{"apiToken": []}]


def test_the_readme_curl_examples_work_as_written(live_server: LiveServer) -> None:
    for tool in ("curl", "jq"):
        if shutil.which(tool) is None:
            if IN_CI:
                pytest.fail(f"{tool} is missing")
            pytest.skip(f"{tool} is missing")
    with session_scope(live_server.session_factory) as session:
        create_account(session, "readme", "admin")
        user = get_user_by_username(session, "readme")
        assert user is not None
        token, _ = create_token(session, user, name="readme", expires_in_days=1, actor=Actor(name="test"))
    commands = readme_curls()
    assert len(commands) >= 2, commands
    for command in commands:
        runnable = re.sub(r"https?://(127\.0\.0\.1|localhost):8000", live_server.url, command)
        runnable = re.sub(r"(?<![\w/])localhost:8000", live_server.url, runnable)
        runnable = runnable.replace("curl ", "curl --fail --show-error ", 1)
        runnable = runnable.split("     #", 1)[0]  # a trailing comment
        answer = subprocess.run(
            ["bash", "-o", "pipefail", "-c", runnable],
            env={"TOKEN": token, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert answer.returncode == 0, (command, answer.stderr)
