"""panva's oidc-provider on loopback, started with the machine's Node, and a no-browser sign-in driver.

Test people: alice (lifeline-admins), bob (lifeline-operators), carol (lifeline-viewers), dave (no
group). The accounts file is re-read at every sign-in, so `set_groups` changes them at the provider.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent / "oidc"
ACCOUNTS = {
    "alice": {"email": "alice@outpost.test", "name": "Alice Admin", "groups": ["lifeline-admins"]},
    "bob": {"email": "bob@outpost.test", "name": "Bob Operator", "groups": ["lifeline-operators"]},
    "carol": {"email": "carol@outpost.test", "name": "Carol Viewer", "groups": ["lifeline-viewers"]},
    "dave": {"email": "dave@outpost.test", "name": "Dave Nobody", "groups": ["elsewhere"]},
}
GROUP_SETTINGS = {
    "oidc_admin_groups": ["lifeline-admins"],
    "oidc_responder_groups": ["lifeline-operators"],
    "oidc_viewer_groups": ["lifeline-viewers"],
}


class ProviderMissing(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OidcServer:
    def __init__(self, tmp_dir: Path, redirect_uris: list[str]) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.accounts_file = tmp_dir / f"oidc-accounts-{self.port}.json"
        self.accounts_file.write_text(json.dumps(ACCOUNTS))
        self.redirect_uris = redirect_uris
        self.log = tmp_dir / f"oidc-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OidcServer:
        node = shutil.which("node")
        if node is None:
            raise ProviderMissing("node is missing (apt-get install nodejs)")
        if not (HERE / "node_modules" / "oidc-provider").exists():
            raise ProviderMissing(f"oidc-provider is not installed: run `npm ci` in {HERE} (make test does)")
        env = os.environ | {
            "OIDC_PORT": str(self.port),
            "OIDC_REDIRECT_URIS": ",".join(self.redirect_uris),
            "OIDC_ACCOUNTS_FILE": str(self.accounts_file),
        }
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([node, str(HERE / "server.mjs")], env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(self.issuer + "/.well-known/openid-configuration", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"oidc-provider did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def set_groups(self, user: str, groups: list[str]) -> None:
        accounts = json.loads(self.accounts_file.read_text())
        accounts[user]["groups"] = groups
        self.accounts_file.write_text(json.dumps(accounts))

    def settings(self, client_id: str = "lifeline") -> dict[str, Any]:
        return {
            "oidc_issuer": self.issuer,
            "oidc_client_id": client_id,
            "oidc_client_secret": f"{client_id}-secret",
            **GROUP_SETTINGS,
        }


def idp_login(idp: httpx.Client, authorize_url: str, user: str, *, stop_at: str) -> str:
    """Walk the provider's login and consent forms as `user`; returns the URL it sends back to `stop_at`."""
    response = idp.get(authorize_url)
    for _ in range(20):
        location = response.headers.get("location")
        if location is not None:
            url = str(response.url.join(location))
            if url.startswith(stop_at):
                return url
            response = idp.get(url)
            continue
        form = re.search(r'action="([^"]+)"', response.text)
        prompt = re.search(r'name="prompt" value="(\w+)"', response.text)
        if form and not prompt and "document.forms[0].submit()" in response.text:
            # A page that posts itself (signing the previous person out when another one logs in).
            hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', response.text))
            response = idp.post(response.url.join(form.group(1)), data=hidden)
            continue
        assert form and prompt, f"unexpected provider page {response.status_code}: {response.text[:500]}"
        data = {"prompt": prompt.group(1)}
        if prompt.group(1) == "login":
            data |= {"login": user, "password": "anything"}
        response = idp.post(response.url.join(form.group(1)), data=data)
    raise AssertionError("the provider never sent the browser back")
