"""An EC2 instance metadata service (IMDS) stand-in for the TESTS (never shipped): IMDSv2 sessions and, on demand, a
Spot interruption notice or a rebalance recommendation.

What the real IMDS does (EC2 user guide: "Use the Instance Metadata Service to access instance metadata", "Spot
Instance interruption notices", "EC2 instance rebalance recommendations"), and this stand-in with it:

- ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds: N`` (1 <= N <= 21600) answers 200 and a
  token valid N seconds. Without the header, or with N out of range, 400 Bad Request. A PUT carrying
  ``X-Forwarded-For`` is refused (403): IMDS does not take tokens asked for through a proxy.
- A GET with ``X-aws-ec2-metadata-token`` of a live token reads metadata; an unknown or expired token, or none on
  an instance requiring IMDSv2 (HttpTokens=required, as toil.cluster launches them), is 401 Unauthorized.
- ``/latest/meta-data/spot/instance-action``: 404 until an interruption is announced, then
  ``{"action": "terminate", "time": "2017-09-18T08:22:00Z"}`` (``action`` terminate, stop or hibernate).
- ``/latest/meta-data/events/recommendations/rebalance``: 404 until a recommendation, then
  ``{"noticeTime": "2020-11-05T08:22:00Z"}``.
- Any other path: 404 (this stand-in serves only these).

Use::

    with Imds() as imds:                      # 127.0.0.1, a free port; Imds(host=gateway) for podman hosts
        imds.announce("terminate", seconds=120)
        imds.recommend_rebalance()
        imds.url, imds.requests               # "METHOD path status" of each request
"""

from __future__ import annotations

import http.server
import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

MAX_TTL = 21600


def imds_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_args: object) -> None:  # quiet: requests are recorded instead
        pass

    def _send(self, code: int, body: str = "") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.server.imds.record(f"{self.command} {self.path} {code}")

    def do_PUT(self) -> None:  # noqa: N802 (http.server's name)
        imds = self.server.imds
        if self.path != "/latest/api/token":
            return self._send(404)
        if "X-Forwarded-For" in self.headers:
            return self._send(403)
        try:
            ttl = int(self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", ""))
        except ValueError:
            return self._send(400)
        if not 1 <= ttl <= MAX_TTL:
            return self._send(400)
        token = secrets.token_urlsafe(32)
        with imds.lock:
            imds.tokens[token] = time.monotonic() + ttl
        return self._send(200, token)

    def do_GET(self) -> None:  # noqa: N802
        imds = self.server.imds
        token = self.headers.get("X-aws-ec2-metadata-token")
        with imds.lock:
            expires = imds.tokens.get(token or "")
            body = imds.documents.get(self.path)
        if expires is None or expires < time.monotonic():
            return self._send(401)
        if body is None:
            return self._send(404)
        return self._send(200, body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    imds: Imds


class Imds:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}
        self.documents: dict[str, str] = {}
        self.requests: list[str] = []
        self._server = _Server((host, port), _Handler)
        self._server.imds = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, line: str) -> None:
        with self.lock:
            self.requests.append(line)

    def announce(self, action: str = "terminate", seconds: int = 120) -> str:
        """An interruption notice: ``action`` in ``seconds``; returns its time as IMDS writes it."""
        moment = imds_time(datetime.now(UTC) + timedelta(seconds=seconds))
        with self.lock:
            self.documents["/latest/meta-data/spot/instance-action"] = json.dumps({"action": action, "time": moment})
        return moment

    def recommend_rebalance(self) -> str:
        moment = imds_time(datetime.now(UTC))
        with self.lock:
            self.documents["/latest/meta-data/events/recommendations/rebalance"] = json.dumps({"noticeTime": moment})
        return moment

    def set_document(self, path: str, body: str) -> None:
        """Any answer at ``path`` (``/latest/meta-data/...``), for tests of malformed ones."""
        with self.lock:
            self.documents[path] = body

    def expire_tokens(self) -> None:
        """Every session ends, as when the TTL passes."""
        with self.lock:
            self.tokens.clear()

    def start(self) -> Imds:
        self._thread = threading.Thread(target=self._server.serve_forever, name="imds", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Imds:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
