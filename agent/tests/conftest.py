"""A real stdlib HTTP(S) server on loopback that plays the server side of the agent API."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GOOD_TOKEN = "et_good"
SECRET = "s3cret"
AGENT_ID = 17
# Every metric name docs/agent-protocol.md lets the server accept.
PROTOCOL_METRICS = {
    "cpu.percent",
    "load.1",
    "load.5",
    "load.15",
    "mem.used_percent",
    "mem.available_bytes",
    "swap.used_percent",
    "disk.used_percent",
    "disk.free_bytes",
    "disk.inodes_used_percent",
    "net.rx_bps",
    "net.tx_bps",
    "net.rx_errors",
    "net.tx_errors",
    "uptime.seconds",
    "proc.count",
    "service.up",
    "process.up",
}


@dataclass
class Received:
    method: str
    path: str
    request_line: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeServer:
    """The server's side of docs/agent-protocol.md, with switches for outages and refusals."""

    url: str = ""
    report_status: int = 200
    # Store the report, then answer report_status anyway (an acknowledgement lost on the way).
    store_then_fail: bool = False
    config: dict[str, Any] = field(
        default_factory=lambda: {
            "version": "v1",
            "interval": 60,
            "inventory_interval": 21600,
            "watch_services": [],
            "watch_processes": [],
        }
    )
    received: list[Received] = field(default_factory=list)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_seq: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reports(self) -> list[dict[str, Any]]:
        """Stored reports, in the order they were stored."""
        return list(self.stored.values())

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def answer(self, method: str, path: str, headers: dict[str, str], body: dict[str, Any]):
        if path == "/api/agent/v1/enroll":
            if body.get("token") != GOOD_TOKEN:
                return 401, {"title": "Unauthorized", "code": "token_invalid"}
            return 201, {
                "agent_id": AGENT_ID,
                "secret": SECRET,
                "device_id": 42,
                "config": self.config,
            }
        if headers.get("authorization") != f"Agent {AGENT_ID}:{SECRET}":
            return 401, {"title": "Unauthorized", "code": "credential_invalid"}
        if path == "/api/agent/v1/config" and method == "GET":
            return 200, self.config
        if path == "/api/agent/v1/inventory":
            return 200, {"changes": 0}
        if path == "/api/agent/v1/report":
            return self.report(body)
        return 404, {"title": "Not Found"}

    def report(self, body: dict[str, Any]):
        if self.report_status != 200 and not self.store_then_fail:
            return self.report_status, {"title": "unavailable"}
        if body["report_id"] not in self.stored:
            if body["seq"] <= self.last_seq:
                return 409, {"title": "Conflict", "code": "reenroll"}
            self.stored[body["report_id"]] = body
            self.last_seq = body["seq"]
        if self.store_then_fail:
            return self.report_status, {"title": "unavailable"}
        accepted = len(body["samples"])
        return 200, {"accepted": accepted, "rejected": 0, "config_version": self.config["version"]}


def make_handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: pytest shows failures, not access logs."""

        def handle_any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else {}
            # Through a proxy the request line carries the absolute URL.
            path = urlsplit(self.path).path
            headers = {k.lower(): v for k, v in self.headers.items()}
            with server.lock:
                server.received.append(Received(self.command, path, self.path, headers, body))
                status, answer = server.answer(self.command, path, headers, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            ctype = "application/json" if status < 400 else "application/problem+json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = handle_any
        do_POST = handle_any

    return Handler


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback tests must not go through a proxy from the developer's environment."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)


def serve(fake: FakeServer, context: ssl.SSLContext | None = None) -> Iterator[FakeServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
    scheme = "http"
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    fake.url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    yield from serve(FakeServer())


@dataclass
class TlsFiles:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1, made with `cryptography`."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "onestop test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(folder / "cert.pem", folder / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@pytest.fixture
def tls_server(tls_files: TlsFiles) -> Iterator[FakeServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    yield from serve(FakeServer(), context)


@pytest.fixture
def enrolled_dir(server: FakeServer, tmp_path: Path) -> Path:
    """A state folder enrolled with the plain-HTTP fake server."""
    from onestop_agent import cli

    state_dir = tmp_path / "state"
    cli.main(
        ["enroll", "--server", server.url, "--token", GOOD_TOKEN, "--state-dir", str(state_dir)]
    )
    return state_dir
