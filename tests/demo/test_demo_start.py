"""A newcomer's first five minutes with `lifeline demo`: LIFELINE_PORT is honoured, every start prints
where the data is, what the data key is (or why server-held keys are off) and a sign-in that works,
and the clusters come with readiness findings from the start-up run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
BOUND = 150  # seconds: a bound for a loaded CI machine, not a target (the bench measures the figure)


class DemoProcess:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "demo"],
            cwd=cwd,
            env={**env, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(
            target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")),  # type: ignore[union-attr]
            daemon=True,
        )
        self.reader.start()

    def line(self, label: str) -> str:
        started = time.monotonic()
        while time.monotonic() - started < BOUND:
            assert self.proc.poll() is None, "".join(self.lines)[-3000:]
            found = next((line for line in self.lines if line.strip().startswith(label)), None)
            if found is not None:
                return found.split(label, 1)[1].strip()
            time.sleep(0.3)
        raise AssertionError(f"no {label!r} line: {''.join(self.lines)[-3000:]}")

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=90)
        self.reader.join(timeout=10)
        return "".join(self.lines)


def _sign_in(web: httpx.Client, login: str) -> None:
    username, password = login.split("   ")[0].split(" / ")
    started = time.monotonic()
    while time.monotonic() - started < BOUND:
        try:
            web.get("/login")
            answer = web.post(
                "/login",
                data={
                    "username": username,
                    "password": password,
                    "csrf_token": web.cookies.get("lifeline_csrf", ""),
                },
            )
            assert "Sign in" not in answer.text or answer.url.path != "/login", (
                "the printed sign-in was refused"
            )
            return
        except httpx.TransportError:
            time.sleep(0.5)
    raise AssertionError("the dashboard did not answer")


@pytest.mark.slow
def test_every_start_prints_a_working_sign_in_and_where_things_are(tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "kept-demo.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_")}
    env.update({"LIFELINE_PORT": str(port), "LIFELINE_DATABASE_URL": f"sqlite:///{database}"})
    for start in (1, 2):
        demo = DemoProcess(env, tmp_path)
        try:
            assert demo.line("Dashboard:") == f"http://127.0.0.1:{port}/"
            login = demo.line("Sign in:")
            assert str(database) in demo.line("Database:")
            assert "server-held keys are off" in demo.line("Data key:")
            web = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, follow_redirects=True)
            _sign_in(web, login)
            assert web.get("/").status_code == 200, f"start {start}: the printed sign-in does not work"
            if start == 1:
                # The start-up run discovers the clusters and polls them at once.
                clusters: list[dict[str, object]] = []
                begun = time.monotonic()
                while time.monotonic() - begun < BOUND:
                    clusters = web.get("/api/v1/clusters").json()
                    if len(clusters) == 3 and all(c["last_polled_at"] for c in clusters):
                        break
                    time.sleep(1)
                assert len(clusters) == 3 and all(c["last_polled_at"] and c["counts"] for c in clusters), (
                    clusters
                )
        finally:
            output = demo.stop()
        assert demo.proc.returncode == 0, output[-3000:]
