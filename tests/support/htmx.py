"""Both renderings of one URL: the full page, which extends layout/base.html, and the HTMX partial
of the same URL, which does not. The `htmx` fixture (tests/conftest.py) gives one per test run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

BASE_TEMPLATE = "layout/base.html"


def template_chain(name: str) -> list[str]:
    """`name` and every template it extends, nearest first."""
    from app.web.templating import templates

    env = templates.env
    assert env.loader is not None
    chain = [name]
    while True:
        source, _, _ = env.loader.get_source(env, chain[-1])
        parents = [
            node.template.value
            for node in env.parse(source).find_all(nodes.Extends)
            if isinstance(node.template, nodes.Const)
        ]
        if not parents:
            return chain
        chain.append(parents[0])


@dataclass(frozen=True)
class Rendering:
    """One of the two renderings: `headers` to send, and `check` for what must come back."""

    partial: bool

    @property
    def headers(self) -> dict[str, str]:
        return {"HX-Request": "true"} if self.partial else {}

    def check(self, response: Any) -> None:
        """The full page extends layout/base.html and is a whole document; the partial is neither."""
        # TestClient exposes the rendered template; a partial served from a cache has none.
        template = getattr(response, "template", None)
        if template is not None:
            chain = template_chain(template.name)
            assert (BASE_TEMPLATE in chain) is not self.partial, f"{self}: {' -> '.join(chain)}"
        document = response.text.lstrip().lower().startswith("<!doctype html>")
        assert document is not self.partial, f"{self}: {response.text[:80]!r}"

    def __str__(self) -> str:
        return "partial" if self.partial else "full"
