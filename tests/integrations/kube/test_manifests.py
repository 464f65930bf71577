"""The manifest loader: multi-document YAML, kubectl Lists, and errors that name the document."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.integrations.kube.manifests import ManifestError, load_manifest_file, load_manifests

NODE = "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n"


def test_multi_document_and_list_are_flattened() -> None:
    text = (
        f"{NODE}---\n"
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n"
        "- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n"
        "---\n"  # a trailing empty document is fine
    )
    objects = load_manifests(text)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Node", "n1"),
        ("Namespace", "a"),
        ("Namespace", "b"),
    ]


def test_typed_lists_from_kubectl_are_expanded() -> None:
    text = "apiVersion: v1\nkind: PodList\nitems: []\n---\n" + NODE
    assert [o["kind"] for o in load_manifests(text)] == ["Node"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{NODE}---\nkind: [unclosed\n", "<manifests>: document 2: invalid YAML at line"),
        (f"{NODE}---\n- just\n- a list\n", "document 2: expected a Kubernetes object (a mapping), got list"),
        (f"{NODE}---\napiVersion: v1\nmetadata: {{name: x}}\n", "document 2: missing `kind`"),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {namespace: a}\n",
            "document 1: Pod is missing `metadata.name`",
        ),
        ("kind: Pod\nmetadata: {name: a}\n", "document 1: Pod is missing `apiVersion`"),
        (
            "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}}\n- 42\n",
            "document 1, item 2: expected a mapping, got int",
        ),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: [1]\n", "Pod a: `spec` must be a mapping"),
    ],
)
def test_errors_name_the_document(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifests(text)
    assert message in str(caught.value)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dump.yaml"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ManifestError, match=r"dump.yaml: document 1: not UTF-8"):
        load_manifest_file(path)


def test_check_and_the_simulator_read_the_same_file_the_same_way(tmp_path: Path) -> None:
    """One loader: the same bad List item has the same number, and UTF-8 is read whatever the locale."""
    path = tmp_path / "dump.yaml"
    path.write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: Namespace, metadata: {name: a, annotations: {note: Überwachung}}}\n"
        "- {apiVersion: v1, kind: Namespace, metadata: {}}\n",
        encoding="utf-8",
    )
    # An ASCII locale with Python's UTF-8 mode off: a loader that trusts the locale cannot read the file.
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    errors = {}
    for command in (["check", "--manifests"], ["simulate", "cluster", "--manifests"]):
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", *command, str(path)],
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=env,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        errors[command[0]] = proc.stderr
    for stderr in errors.values():
        assert f"{path}: document 1, item 2: Namespace" in stderr
        assert "Traceback" not in stderr
