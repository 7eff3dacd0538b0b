"""Real HTTP receivers on loopback that behave like the platforms OneStop's senders post to.

Each `RobotReceiver` checks the signature scheme of its platform on its own (nothing here
imports the senders), answers with that platform's error JSON, throttles like it, records what
it accepted and can be told to fail or hang for a while:

    with RobotReceiver(kind="dingtalk", secret="SEC") as robot:
        send_dingtalk(url=robot.url, secret="SEC", message=...)
        assert robot.messages[0]["msgtype"] == "markdown"
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Kind = Literal["webhook", "dingtalk", "wecom", "feishu"]

# What each platform answers when it throttles: (HTTP status, JSON body).
RATE_LIMITED: dict[str, tuple[int, dict[str, Any]]] = {
    "dingtalk": (200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}),
    "wecom": (200, {"errcode": 45009, "errmsg": "api freq out of limit"}),
    # Feishu's open APIs answer a frequency limit with HTTP 400 and the code in the body.
    "feishu": (400, {"code": 11232, "msg": "frequency limited"}),
}
BAD_SIGNATURE: dict[str, dict[str, Any]] = {
    "dingtalk": {"errcode": 310000, "errmsg": "sign not match"},
    "feishu": {
        "code": 19021,
        "msg": "sign match fail or timestamp is not within one hour from current time",
    },
}
BAD_TOKEN: dict[str, dict[str, Any]] = {
    "dingtalk": {"errcode": 300005, "errmsg": "token is not exist"},
    "wecom": {"errcode": 93000, "errmsg": "invalid webhook url"},
    "feishu": {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"},
}
OK: dict[str, dict[str, Any]] = {
    "dingtalk": {"errcode": 0, "errmsg": "ok"},
    "wecom": {"errcode": 0, "errmsg": "ok"},
    "feishu": {"code": 0, "data": {}, "msg": "success"},
}

# How far a signed timestamp may be from the receiver's clock, in seconds.
FRESHNESS = {"dingtalk": 3600, "feishu": 3600, "webhook": 300}


@dataclass(frozen=True)
class Received:
    """One accepted request as it arrived."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class RobotReceiver:
    """A threaded HTTP server on 127.0.0.1 (a free port) playing one platform's robot."""

    def __init__(
        self,
        *,
        kind: Kind,
        secret: str = "",
        token: str = "abc",  # noqa: S107 - a made-up token of a loopback receiver
        rate_limit: int = 20,
        rate_window: float = 60.0,
    ) -> None:
        self.kind = kind
        self.secret = secret
        self.token = token
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.messages: list[dict[str, Any]] = []
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._accepted_at: collections.deque[float] = collections.deque()
        self._failures: collections.deque[int] = collections.deque()
        self._hangs: collections.deque[float] = collections.deque()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.receiver = self  # type: ignore[attr-defined]
        # A short poll interval, because shutdown() waits for the loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The address in the platform's own shape, token included."""
        base = f"http://127.0.0.1:{self.port}"
        return {
            "webhook": f"{base}/hooks/{self.token}",
            "dingtalk": f"{base}/robot/send?access_token={self.token}",
            "wecom": f"{base}/cgi-bin/webhook/send?key={self.token}",
            "feishu": f"{base}/open-apis/bot/v2/hook/{self.token}",
        }[self.kind]

    def start(self) -> RobotReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes hanging handlers, so stopping never waits out a hang
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RobotReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next(self, n: int = 1, *, status: int = 500) -> None:
        """The next `n` requests get `status` with a plain-text body, as an outage would."""
        with self._lock:
            self._failures.extend([status] * n)

    def hang_next(self, n: int = 1, *, seconds: float = 5.0) -> None:
        """The next `n` requests get no answer for `seconds`, then the connection closes."""
        with self._lock:
            self._hangs.extend([seconds] * n)

    def handle(self, request: Received) -> tuple[int, dict[str, str], bytes] | None:
        """The answer to one request (status, headers, body), or None to answer nothing."""
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
            hang = self._hangs.popleft() if self._hangs else None
        if hang is not None:
            self._stopping.wait(hang)
            return None
        if failure is not None:
            return failure, {"Content-Type": "text/plain"}, b"simulated failure"
        if not self._token_ok(request):
            if self.kind == "webhook":
                return 404, {}, b""
            return _json(200, BAD_TOKEN[self.kind])
        try:
            message = json.loads(request.body)
        except ValueError:
            return 400, {}, b"body is not JSON"
        if self.secret and not self._signature_ok(request, message):
            if self.kind == "webhook":
                return 401, {}, b"bad signature"
            return _json(200, BAD_SIGNATURE[self.kind])
        with self._lock:
            now = time.monotonic()
            while self._accepted_at and now - self._accepted_at[0] >= self.rate_window:
                self._accepted_at.popleft()
            if len(self._accepted_at) >= self.rate_limit:
                wait = self.rate_window - (now - self._accepted_at[0])
                if self.kind == "webhook":
                    return 429, {"Retry-After": str(max(int(wait), 1))}, b"slow down"
                return _json(*RATE_LIMITED[self.kind])
            self._accepted_at.append(now)
            self.messages.append(message)
            self.received.append(request)
        if self.kind == "webhook":
            return 204, {}, b""
        return _json(200, OK[self.kind])

    def _token_ok(self, request: Received) -> bool:
        if self.kind == "dingtalk":
            token = request.query.get("access_token")
            return request.path == "/robot/send" and token == self.token
        if self.kind == "wecom":
            token = request.query.get("key")
            return request.path == "/cgi-bin/webhook/send" and token == self.token
        if self.kind == "feishu":
            return request.path == f"/open-apis/bot/v2/hook/{self.token}"
        return request.path == f"/hooks/{self.token}"

    def _signature_ok(self, request: Received, message: Any) -> bool:
        """Recomputes the platform's signature from its documented scheme."""
        secret = self.secret.encode()
        if self.kind == "dingtalk":
            # parse_qs has already URL-decoded `sign`; an unencoded "+" would be a space now.
            timestamp, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
            if not _fresh(timestamp, scale=1000, window=FRESHNESS["dingtalk"]):
                return False
            string_to_sign = f"{timestamp}\n{self.secret}".encode()
            digest = hmac.new(secret, string_to_sign, hashlib.sha256).digest()
            return hmac.compare_digest(base64.b64encode(digest), sign.encode())
        if self.kind == "feishu":
            if not isinstance(message, dict):
                return False
            timestamp, sign = str(message.get("timestamp", "")), str(message.get("sign", ""))
            if not _fresh(timestamp, scale=1, window=FRESHNESS["feishu"]):
                return False
            key = f"{timestamp}\n{self.secret}".encode()
            digest = hmac.new(key, b"", hashlib.sha256).digest()
            return hmac.compare_digest(base64.b64encode(digest), sign.encode())
        if self.kind == "webhook":
            timestamp = request.headers.get("x-onestop-timestamp", "")
            signature = request.headers.get("x-onestop-signature", "")
            if not _fresh(timestamp, scale=1, window=FRESHNESS["webhook"]):
                return False
            mac = hmac.new(secret, timestamp.encode() + b"." + request.body, hashlib.sha256)
            return hmac.compare_digest(f"sha256={mac.hexdigest()}".encode(), signature.encode())
        return True  # WeCom robots have no signing; the key in the URL is the credential


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        receiver: RobotReceiver = self.server.receiver  # type: ignore[attr-defined]
        parts = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Received(
            path=parts.path,
            query={key: values[0] for key, values in urllib.parse.parse_qs(parts.query).items()},
            headers={key.lower(): value for key, value in self.headers.items()},
            body=self.rfile.read(length),
        )
        answer = receiver.handle(request)
        if answer is None:
            self.close_connection = True
            return
        status, headers, body = answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on what was received, not on an access log."""


def _json(status: int, answer: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps(answer, ensure_ascii=False).encode()
    return status, {"Content-Type": "application/json; charset=utf-8"}, body


def _fresh(timestamp: str, *, scale: int, window: float) -> bool:
    """Whether a timestamp (in 1/scale seconds) lies within `window` seconds of now."""
    try:
        sent = int(timestamp) / scale
    except ValueError:
        return False
    return abs(time.time() - sent) <= window
