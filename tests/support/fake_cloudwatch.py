"""A tiny CloudWatch stand-in on 127.0.0.1 for what moto's server cannot produce: real AWS error
responses (AccessDenied, Throttling). Anything not scripted is proxied to moto unchanged.

The installed botocore talks to CloudWatch in its AWS JSON 1.0 protocol (not the classic XML query
protocol), so errors are sent the way CloudWatch sends them there: a JSON body {"__type", "message"}
plus the query-compatible `x-amzn-query-error: <Code>;Sender` header carrying the classic code.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

ACCESS_DENIED_MESSAGE = (
    "User: arn:aws:iam::123456789012:user/lifeline is not authorized to perform: "
    "cloudwatch:GetMetricData because no identity-based policy allows the cloudwatch:GetMetricData action"
)
THROTTLING_MESSAGE = "Rate exceeded"


def json_error(type_name: str, message: str) -> bytes:
    return json.dumps({"__type": type_name, "message": message}).encode()


ERRORS = {
    "deny": (
        400,
        "com.amazon.coral.service#AccessDeniedException",
        "AccessDenied;Sender",
        ACCESS_DENIED_MESSAGE,
    ),
    "throttle": (400, "com.amazonaws.cloudwatch#Throttling", "Throttling;Sender", THROTTLING_MESSAGE),
}


class FakeCloudWatch:
    """Answers requests from `script` in order ("deny", "throttle", "proxy", "drop"); then `default`.

    "drop" reads the request and closes the connection without an answer: to botocore a dropped
    connection (ConnectionClosedError), as when a request dies half-way.
    """

    def __init__(self, upstream: str, script: list[str], default: str = "proxy") -> None:
        self.upstream = upstream
        self.script = list(script)
        self.default = default
        self.answers: list[str] = []
        self.tokens_seen: list[str | None] = []
        self._lock = threading.Lock()

    def next_answer(self) -> str:
        with self._lock:
            answer = self.script.pop(0) if self.script else self.default
            self.answers.append(answer)
            return answer


@contextmanager
def fake_cloudwatch(
    upstream: str, script: list[str], default: str = "proxy"
) -> Iterator[tuple[str, FakeCloudWatch]]:
    fake = FakeCloudWatch(upstream, script, default)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            answer = fake.next_answer()
            if answer == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if answer.startswith("page:"):
                # One page of a paginated answer: a datapoint for query q0 at the given epoch second,
                # StatusCode PartialData and a NextToken, the way CloudWatch splits large results.
                epoch = int(answer.split(":", 1)[1])
                fake.tokens_seen.append(json.loads(body).get("NextToken"))
                payload = json.dumps(
                    {
                        "MetricDataResults": [
                            {
                                "Id": "q0",
                                "Label": "ConnectedStatus",
                                "Timestamps": [epoch],
                                "Values": [0.0],
                                "StatusCode": "PartialData",
                            }
                        ],
                        "NextToken": "page-2",
                        "Messages": [],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
            elif answer == "proxy":
                fake.tokens_seen.append(json.loads(body).get("NextToken"))
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                upstream = httpx.post(fake.upstream + self.path, content=body, headers=headers, timeout=60)
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    ):
                        self.send_header(key, value)
                payload = upstream.content
            else:
                status, type_name, query_error, message = ERRORS[answer]
                payload = json_error(type_name, message)
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("x-amzn-query-error", query_error)
                self.send_header("x-amzn-RequestId", "c0ffee00-0000-4000-8000-000000000000")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", fake
    finally:
        server.shutdown()
        server.server_close()
