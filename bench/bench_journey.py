"""Benchmark (issue 10): the on-call journey during a disconnect, end to end, on a live demo.

`lifeline demo` runs as a real process (its own port and SQLite file). The bench signs in with the
sign-in the demo prints, issues a credential for `plant7-local` while everything is connected (the
"prepared" on-call engineer), then for each journey:

1. switch the Outpost off (POST /demo/outposts/<id>, as the /demo page does);
2. the overview shows it: GET / until the Outpost's row says DISCONNECTED;
3. the kubeconfig is downloaded over HTTP with the signed-in session;
4. the real `kubectl get nodes` answers through the kubeconfig's first direct context (the demo's
   endpoint names are in no DNS outside the demo process);

then switches it back on and waits for the row to say CONNECTED. Each step is printed beside
baselines measured in the same run: a static file fetch (GET /static/css/app.css), a render of the
overview with nothing changing, and `kubectl version --client` (kubectl's own start-up). The start-up
figures (launch to sign-in line, and to three clusters with readiness findings) come first.

Run: `python -m bench bench_journey` (BENCH_JOURNEYS=3 by default: about 2 minutes).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

OUTPOST = "op-0f1e2d3c4b5a69781"  # Plant 7 Reno, rack A: runs plant7-local
CLUSTER = "plant7-local"
REPO = Path(__file__).resolve().parents[1]
LIMIT = 180.0  # seconds before a step counts as "not seen"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Demo:
    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_")}
        env.update({"LIFELINE_PORT": str(self.port), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "demo"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out = self.proc.stdout
        assert out is not None
        threading.Thread(target=lambda: self.lines.extend(iter(out.readline, "")), daemon=True).start()

    def line(self, label: str) -> str:
        while time.monotonic() - self.started < LIMIT:
            if self.proc.poll() is not None:
                raise RuntimeError("".join(self.lines)[-3000:])
            found = next((x for x in self.lines if x.strip().startswith(label)), None)
            if found is not None:
                return found.split(label, 1)[1].strip()
            time.sleep(0.05)
        raise RuntimeError(f"no {label!r} line")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=90)


def _timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def _until(check: Any, interval: float = 0.1) -> float | None:
    start = time.perf_counter()
    while time.perf_counter() - start < LIMIT:
        if check():
            return time.perf_counter() - start
        time.sleep(interval)
    return None


def _row_state(web: httpx.Client) -> str | None:
    match = re.search(rf'data-outpost-id="{OUTPOST}" data-state="([A-Z_]+)"', web.get("/").text)
    return match.group(1) if match else None


def _fmt(values: list[float | None]) -> str:
    seen = [v for v in values if v is not None]
    if not seen:
        return "not seen"
    text = f"median {statistics.median(seen) * 1000:8.0f} ms   max {max(seen) * 1000:8.0f} ms"
    return text + (
        f"   ({len(values) - len(seen)} not seen in {LIMIT:.0f} s)" if len(seen) < len(values) else ""
    )


def main() -> None:
    kubectl = shutil.which("kubectl") or "/usr/bin/kubectl"
    journeys = int(os.environ.get("BENCH_JOURNEYS", "3"))
    folder = Path(tempfile.mkdtemp(prefix="bench-journey-"))
    demo = Demo(folder)
    try:
        login = demo.line("Sign in:")
        to_login = time.monotonic() - demo.started
        username, password = login.split("   ")[0].split(" / ")
        web = httpx.Client(base_url=f"http://127.0.0.1:{demo.port}", timeout=30)
        while True:
            try:
                web.get("/login")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        web.post("/login", data={"username": username, "password": password,
                                 "csrf_token": web.cookies.get("lifeline_csrf", "")})  # fmt: skip
        csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', web.get("/account").text)
        assert csrf is not None, "no CSRF token on the page"
        web.headers["X-CSRF-Token"] = csrf.group(1)

        def findings_everywhere() -> bool:
            clusters = web.get("/api/v1/clusters").json()
            return len(clusters) == 3 and all(c["last_polled_at"] and c["counts"] for c in clusters)

        _until(findings_everywhere, interval=0.5)
        to_findings = time.monotonic() - demo.started
        issued = web.post(f"/api/v1/clusters/{CLUSTER}/credentials", json={"lifetime_seconds": 86400})
        assert issued.status_code == 201, issued.text
        credential = issued.json()["id"]
        _until(lambda: _row_state(web) == "CONNECTED")

        steps: dict[str, list[float | None]] = {
            k: [] for k in ("switch", "overview", "download", "kubectl", "total")
        }
        base: dict[str, list[float | None]] = {"static": [], "overview render": [], "kubectl --client": []}
        config = folder / "kubeconfig"
        for _ in range(journeys):
            for _ in range(5):
                base["static"].append(_timed(lambda: web.get("/static/css/app.css"))[0])
                base["overview render"].append(_timed(lambda: web.get("/"))[0])
                base["kubectl --client"].append(
                    _timed(
                        lambda: subprocess.run(
                            [kubectl, "version", "--client"], capture_output=True, check=True
                        )
                    )[0]
                )
            begun = time.perf_counter()
            seconds, answer = _timed(
                lambda: web.post(f"/demo/outposts/{OUTPOST}", data={"action": "disconnect"})
            )
            assert answer.status_code in (200, 303), answer.status_code
            steps["switch"].append(seconds)
            steps["overview"].append(_until(lambda: _row_state(web) == "DISCONNECTED"))
            seconds, download = _timed(lambda: web.get(f"/credentials/{credential}/kubeconfig"))
            assert download.status_code == 200 and "apiVersion" in download.text, download.status_code
            config.write_text(download.text)
            config.chmod(0o600)
            steps["download"].append(seconds)
            direct = yaml.safe_load(download.text)["contexts"][1]["name"]
            command = [kubectl, "--kubeconfig", str(config), "--context", direct, "get", "nodes"]
            seconds, nodes = _timed(
                lambda c=command: subprocess.run(c, capture_output=True, text=True, check=False)
            )
            assert nodes.returncode == 0, nodes.stderr
            steps["kubectl"].append(seconds)
            steps["total"].append(time.perf_counter() - begun)
            web.post(f"/demo/outposts/{OUTPOST}", data={"action": "connect"})
            _until(lambda: _row_state(web) == "CONNECTED")
    finally:
        demo.stop()
    print(f"start-up: sign-in printed after {to_login:.1f} s; 3 clusters with readiness findings after "
          f"{to_findings:.1f} s (launch of `lifeline demo` to GET /api/v1/clusters)")  # fmt: skip
    print(
        f"{journeys} journeys (switch off -> overview shows it -> kubeconfig downloaded -> kubectl answered)"
    )
    labels = {
        "switch": "1 switch the Outpost off",
        "overview": "2 overview row DISCONNECTED",
        "download": "3 kubeconfig downloaded (HTTP)",
        "kubectl": "4 kubectl get nodes (direct)",
        "total": "  whole journey",
    }
    for key, label in labels.items():
        print(f"  {label:34} {_fmt(steps[key])}")
    print("baselines (same run):")
    for key, values in base.items():
        print(f"  {key:34} {_fmt(values)}")


if __name__ == "__main__":
    main()
