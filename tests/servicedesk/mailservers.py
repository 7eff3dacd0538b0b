"""Real mail servers on loopback for the mail tests: Dovecot (IMAP and IMAPS with a self-signed
certificate, password and XOAUTH2 logins) and an aiosmtpd SMTP server that records what it gets.

Dovecot runs as its own instance from a temporary folder (config, certificate, sockets, maildir)
on free ports, so a system Dovecot, if any, is not touched. A test module loads the fixtures
with `pytest_plugins = ["tests.servicedesk.mailservers"]`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import grp
import http.server
import imaplib
import ipaddress
import json
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import require_peer

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, root: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    logs = [root / "output.log", root / "dovecot.log"]
    text = "".join(log.read_text(errors="replace") for log in logs if log.exists())
    raise RuntimeError(f"dovecot did not listen on {HOST}:{port}:\n{text[-3000:]}")


def write_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1; it is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def decode_mailbox_name(name: str) -> str:
    """IMAP modified UTF-7 (RFC 3501 5.1.3) to text, written apart from the client's encoder."""

    def shifted(match: re.Match[str]) -> str:
        data = match.group(1).replace(",", "/")
        if not data:
            return "&"
        return base64.b64decode(data + "=" * (-len(data) % 4)).decode("utf-16-be")

    return re.sub(r"&([^-]*)-", shifted, name)


@dataclass
class Dovecot:
    """A running Dovecot with one user, `username`, reachable by password or `oauth2_token`."""

    imap_port: int
    imaps_port: int
    ca_file: Path
    host: str = HOST
    username: str = "agent"
    password: str = "agent-secret"
    oauth2_token: str = field(default="token-of-agent", repr=False)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    @contextlib.contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        """A plain imaplib connection logged in as the user: the tests' view of the mailbox."""
        conn = imaplib.IMAP4(self.host, self.imap_port, timeout=10)
        try:
            conn.login(self.username, self.password)
            yield conn
        finally:
            conn.logout()

    def deliver(self, raw: bytes, *, folder: str = "INBOX", flags: str = "") -> None:
        """Puts `raw` into `folder` (IMAP APPEND), as a delivery agent would."""
        with self.client() as conn:
            status, data = conn.append(folder, f"({flags})" if flags else None, None, raw)
            assert status == "OK", data

    def create_folder(self, encoded_name: str) -> None:
        """`encoded_name` is already in modified UTF-7."""
        with self.client() as conn:
            status, data = conn.create(f'"{encoded_name}"')
            assert status == "OK", data

    def folders(self) -> list[str]:
        with self.client() as conn:
            status, data = conn.list('""', "*")
            assert status == "OK", data
        names = []
        for line in data:
            match = re.search(rb' "[^"]*" (?:"((?:[^"\\]|\\.)*)"|(\S+))$', line)
            assert match, line
            names.append(decode_mailbox_name((match.group(1) or match.group(2)).decode()))
        return sorted(names)

    def messages(self, folder: str = "INBOX") -> list[tuple[set[str], bytes]]:
        """(flags, raw) of each message in `folder`, read without changing anything."""
        with self.client() as conn:
            status, data = conn.select(f'"{folder}"', readonly=True)
            assert status == "OK", data
            if int(data[0]) == 0:
                return []
            status, data = conn.fetch("1:*", "(FLAGS BODY.PEEK[])")
            assert status == "OK", data
        found = []
        for item in data:
            if isinstance(item, tuple):
                flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
                found.append((set((flags.group(1) if flags else b"").decode().split()), item[1]))
        return found

    def reset(self) -> None:
        """An empty INBOX and no other folder."""
        names = [name for name in self._raw_folder_names() if name.upper() != "INBOX"]
        with self.client() as conn:
            for name in sorted(names, key=len, reverse=True):
                conn.delete(f'"{name}"')
            _status, data = conn.select("INBOX")
            if int(data[0]):
                conn.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
                conn.expunge()

    def _raw_folder_names(self) -> list[str]:
        with self.client() as conn:
            _status, data = conn.list('""', "*")
        return [re.split(rb' "[^"]*" ', line)[-1].strip(b'"').decode() for line in data]


class _Introspection(http.server.BaseHTTPRequestHandler):
    """The OAuth 2.0 provider's user-info endpoint that Dovecot asks about a bearer token;
    each server subclasses it with its own `token` and `username`."""

    token = ""
    username = ""

    def do_GET(self) -> None:
        if self.headers.get("Authorization") == f"Bearer {self.token}":
            status, body = 200, {"email": self.username, "active": True}
        else:
            status, body = 200, {"active": False}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None
    )


def _users() -> tuple[str, str, pwd.struct_passwd]:
    """(internal user, login user, mail user). Run as root, Dovecot refuses root for its login
    processes and for mail access, so those get unprivileged system accounts; run as anyone
    else, everything runs as that user."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, me.pw_name, me
    login = "dovenull"
    try:
        pwd.getpwnam(login)
    except KeyError:
        login = "nobody"
    return "root", login, pwd.getpwnam("nobody")


def _write_config(root: Path, server: Dovecot, introspection_url: str, extra_config: str) -> Path:
    cert_file, key_file = write_certificate(root)
    internal_user, login_user, mail_user = _users()
    internal_group = grp.getgrgid(pwd.getpwnam(internal_user).pw_gid).gr_name
    home = root / "home"
    home.mkdir()
    os.chown(home, mail_user.pw_uid, mail_user.pw_gid)
    (root / "passwd").write_text(
        f"{server.username}:{{PLAIN}}{server.password}:"
        f"{mail_user.pw_uid}:{mail_user.pw_gid}::{home}\n"
    )
    (root / "oauth2.conf.ext").write_text(
        f"introspection_mode = auth\nintrospection_url = {introspection_url}\n"
        "username_attribute = email\nactive_attribute = active\nactive_value = true\n"
    )
    config = root / "dovecot.conf"
    config.write_text(
        f"""
base_dir = {root}/run
state_dir = {root}/state
instance_name = onestop-test-{root.name}
log_path = {root}/dovecot.log
protocols = imap
listen = {HOST}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = {mail_user.pw_uid}
first_valid_gid = {mail_user.pw_gid}
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
# No delay after a failed login, and no growing penalty for the next ones from 127.0.0.1:
# the tests fail logins on purpose.
auth_failure_delay = 0
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
ssl = yes
ssl_cert = <{cert_file}
ssl_key = <{key_file}
ssl_min_protocol = TLSv1.2
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2
  args = {root}/oauth2.conf.ext
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
# No chroot: only root may chroot, and the suite may run as anyone.
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {server.imap_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {server.imaps_port}
    ssl = yes
  }}
}}
{extra_config}
"""
    )
    return config


@contextlib.contextmanager
def running_dovecot(*, extra_config: str = "") -> Iterator[Dovecot]:
    """Starts a Dovecot of its own (`dovecot -F -c ...`) and stops it on leaving."""
    binary = dovecot_binary()
    require_peer(
        binary is not None, "dovecot-imapd is not installed (apt-get install dovecot-imapd)"
    )
    assert binary is not None
    # Short path in /tmp: Dovecot's unix sockets live under it. World-traversable: the login
    # processes run as another user.
    root = Path(tempfile.mkdtemp(prefix="onestop-dovecot-", dir="/tmp"))
    root.chmod(0o755)
    server = Dovecot(imap_port=free_port(), imaps_port=free_port(), ca_file=root / "cert.pem")
    handler = type(
        "Introspection",
        (_Introspection,),
        {"token": server.oauth2_token, "username": server.username},
    )
    introspection = http.server.ThreadingHTTPServer((HOST, 0), handler)
    threading.Thread(target=introspection.serve_forever, daemon=True).start()
    try:
        config = _write_config(
            root,
            server,
            f"http://{HOST}:{introspection.server_address[1]}/userinfo",
            extra_config,
        )
        # Errors before the log is set up (a bad config) go to the output.
        with (root / "output.log").open("wb") as output:
            process = subprocess.Popen(
                [binary, "-F", "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            for port in (server.imaps_port, server.imap_port):
                _wait_for_port(port, process, root)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        introspection.shutdown()
        introspection.server_close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@pytest.fixture
def dovecot(dovecot_server: Dovecot) -> Dovecot:
    """The session's Dovecot with an empty mailbox."""
    dovecot_server.reset()
    return dovecot_server


@pytest.fixture
def start_dovecot() -> Iterator[Callable[..., Dovecot]]:
    """Starts more Dovecots, e.g. `start_dovecot(extra_config=...)`; they stop after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda **options: stack.enter_context(running_dovecot(**options))


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class SmtpServer:
    host: str
    port: int
    received: list[ReceivedMail] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                content=envelope.original_content or b"",
            )
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server on loopback that records every message (aiosmtpd)."""
    server = SmtpServer(host=HOST, port=free_port())
    controller = Controller(server, hostname=server.host, port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
