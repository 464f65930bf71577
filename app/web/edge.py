"""Input hygiene at the edge, before any route runs: control characters are refused with a 422 that
names the field.

PostgreSQL cannot store NUL in text (the landed version answered `username=bob%00` with a 500), and
other C0 control characters and DEL are never meaningful in a name, a filter or a form field; they
only hide things from people reading the audit trail or a terminal. Tab, line feed and carriage
return stay allowed in bodies (a CSR or a fleet file has lines), never in the path or the query.

Checked: the path, every query parameter, and urlencoded-form and JSON bodies (keys and values).
Multipart uploads are left to their handlers.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL_STRICT = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_CHECKED_BODY = 2 * 1024 * 1024


def _bad(value: str, strict: bool) -> str | None:
    match = (CONTROL_STRICT if strict else CONTROL_TEXT).search(value)
    return f"U+{ord(match.group()):04X}" if match else None


def find_control(data: Any, where: list[str | int]) -> tuple[list[str | int], str] | None:
    """The first string (key or value) in a decoded JSON document holding a control character."""
    stack: list[tuple[Any, list[str | int]]] = [(data, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if char := _bad(item, strict=False):
                return path, char
        elif isinstance(item, dict):
            for key, value in item.items():
                if char := _bad(str(key), strict=True):
                    return [*path, str(key)], char
                stack.append((value, [*path, str(key)]))
        elif isinstance(item, list):
            stack.extend((value, [*path, index]) for index, value in enumerate(item))
    return None


class ControlCharacterMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = self._in_url(scope)
        if found is not None:
            await self._refuse(scope, found)(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("application/x-www-form-urlencoded", "application/json"):
            await self.app(scope, receive, send)
            return
        body, messages = await _read_body(receive)
        if len(body) <= MAX_CHECKED_BODY:
            found = _in_body(kind, body)
            if found is not None:
                await self._refuse(scope, found)(scope, receive, send)
                return
        replay = list(messages)

        async def replayed() -> Message:
            if replay:
                return replay.pop(0)
            return await receive()

        await self.app(scope, replayed, send)

    @staticmethod
    def _in_url(scope: Scope) -> tuple[list[str | int], str] | None:
        if char := _bad(scope.get("path", ""), strict=True):
            return ["path"], char
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
            if char := _bad(name, strict=True) or _bad(value, strict=True):
                return ["query", name], char
        return None

    @staticmethod
    def _refuse(scope: Scope, found: tuple[list[str | int], str]) -> Any:
        loc, char = found
        field = ".".join(str(part) for part in loc[1:]) or str(loc[0])
        message = (
            "the JSON body nests too deeply"
            if char == "nesting"
            else f"{field} contains the control character {char}; remove it"
        )
        path = scope.get("path", "")
        accept = dict(scope.get("headers", [])).get(b"accept", b"").decode("latin-1")
        if path.startswith("/api/") or "application/json" in accept:
            detail = [{"loc": loc, "msg": message, "type": "control_character"}]
            return JSONResponse({"detail": detail}, status_code=422)
        return PlainTextResponse(f"Refused: {message}.", status_code=422)


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    chunks: list[bytes] = []
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


def _in_body(kind: str, body: bytes) -> tuple[list[str | int], str] | None:
    text = body.decode("utf-8", errors="replace")
    if kind == "application/x-www-form-urlencoded":
        for name, value in parse_qsl(text, keep_blank_values=True, errors="replace"):
            if char := _bad(name, strict=True) or _bad(value, strict=False):
                return ["body", name], char
        return None
    try:
        data = json.loads(text)
    except RecursionError:
        return ["body"], "nesting"
    except ValueError:
        return None  # FastAPI answers malformed JSON itself
    return find_control(data, ["body"])
