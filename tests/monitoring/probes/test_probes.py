"""The agentless probes against real servers on loopback, started by each test.

ICMP pings 127.0.0.1 and a TEST-NET-2 address nothing answers; TCP, HTTPS (certificates made
here with `cryptography`, of known expiry) and DNS (a UDP server answering with dnspython's
message API) run in the test's own event loop. No Django: the probes are plain asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import dns.message
import dns.rcode
import dns.rrset
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from onestop.monitoring.probes import icmp
from onestop.monitoring.probes.base import ProbeResult, ProbeStatus
from onestop.monitoring.probes.dns import probe_dns
from onestop.monitoring.probes.http import CertCache, fetch_certificate, make_client, probe_http
from onestop.monitoring.probes.icmp import IcmpAccess, IcmpMode, decide_icmp_mode, probe_ping
from onestop.monitoring.probes.tcp import probe_tcp
from tests.conftest import require_peer

# TEST-NET-2 (RFC 5737): documentation only, nothing may answer it. (TEST-NET-1 192.0.2.0/24
# is the container network on some CI machines, so it is not used here.)
DEAD_ADDRESS = "198.51.100.1"


def run(coro: Awaitable[ProbeResult]):
    return asyncio.run(coro)


def free_port() -> int:
    """A loopback TCP port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- base ---------------------------------------------------------------------------------------


def test_result_rejects_metric_names_the_store_would_refuse():
    ProbeResult(ProbeStatus.OK, {"http.latency_ms": 1.0}, "", 1.0)
    with pytest.raises(ValueError, match="invalid metric name"):
        ProbeResult(ProbeStatus.OK, {"HTTP Latency": 1.0}, "", 1.0)


# --- ICMP privilege decision -----------------------------------------------------------------


def test_raw_sockets_win_when_the_process_has_cap_net_raw():
    access = decide_icmp_mode(cap_net_raw=True, groups=[1000], group_range=(1, 0))
    assert access.mode is IcmpMode.RAW


def test_datagram_sockets_when_a_group_is_in_ping_group_range():
    access = decide_icmp_mode(cap_net_raw=False, groups=[1000, 27], group_range=(0, 2147483647))
    assert access.mode is IcmpMode.DATAGRAM
    narrow = decide_icmp_mode(cap_net_raw=False, groups=[1000, 27], group_range=(20, 30))
    assert narrow.mode is IcmpMode.DATAGRAM
    assert "27" in str(narrow.reason)


def test_no_icmp_when_the_kernel_default_range_excludes_everyone():
    # "1 0" is the kernel's default: an empty range.
    access = decide_icmp_mode(cap_net_raw=False, groups=[0, 1000], group_range=(1, 0))
    assert access.mode is IcmpMode.NONE
    assert "net.ipv4.ping_group_range" in str(access.reason)
    assert "cap_net_raw" in str(access.reason)


def test_no_range_file_means_no_datagram_sockets_except_where_the_platform_allows_them():
    linux = decide_icmp_mode(cap_net_raw=False, groups=[1000], group_range=None)
    assert linux.mode is IcmpMode.NONE
    mac = decide_icmp_mode(
        cap_net_raw=False, groups=[1000], group_range=None, datagram_without_range=True
    )
    assert mac.mode is IcmpMode.DATAGRAM


def test_group_range_is_read_from_the_sysctl_file(tmp_path: Path):
    path = tmp_path / "ping_group_range"
    path.write_text("0\t2147483647\n")
    assert icmp._read_group_range(str(path)) == (0, 2147483647)
    path.write_text("garbage")
    assert icmp._read_group_range(str(path)) is None
    assert icmp._read_group_range(str(tmp_path / "missing")) is None


def test_decision_is_made_once_per_process():
    assert icmp.icmp_access() is icmp.icmp_access()


def test_ping_without_permission_is_unknown_with_the_fix_and_sends_nothing():
    denied = IcmpAccess(IcmpMode.NONE, icmp.FIX_HINT)
    result = run(probe_ping(host=DEAD_ADDRESS, timeout=5, access=denied))
    assert result.status is ProbeStatus.UNKNOWN
    assert "ping_group_range" in result.message
    assert result.readings == {}
    assert result.duration_ms < 100


# --- ICMP on the wire ---------------------------------------------------------------------------


def _require_icmp() -> IcmpAccess:
    access = icmp.icmp_access()
    require_peer(access.mode is not IcmpMode.NONE, f"this process may not ping: {access.reason}")
    return access


def test_ping_loopback_answers_with_round_trip_times():
    _require_icmp()
    result = run(probe_ping(host="127.0.0.1", timeout=2, count=3, interval=0.05))
    assert result.status is ProbeStatus.OK, result.message
    r = result.readings
    assert r["ping.loss_pct"] == 0
    assert 0 <= r["ping.rtt_min_ms"] <= r["ping.rtt_ms"] <= r["ping.rtt_max_ms"] < 1000
    assert "loss 0 %" in result.message


def test_ping_an_address_nothing_answers_is_unreachable_with_full_loss_within_timeout():
    _require_icmp()
    started = time.monotonic()
    result = run(probe_ping(host=DEAD_ADDRESS, timeout=0.6, count=2, interval=0.1))
    elapsed = time.monotonic() - started
    assert result.status is ProbeStatus.UNREACHABLE, result.message
    assert result.readings == {"ping.loss_pct": 100.0}
    assert "ping.rtt_ms" not in result.readings
    assert elapsed < 1.2


def test_ping_with_datagram_sockets_follows_the_sysctl():
    """Forcing unprivileged sockets: they work exactly when ping_group_range lets us in."""
    allowed = decide_icmp_mode(
        cap_net_raw=False,
        groups={*os.getgroups(), os.getegid()},
        group_range=icmp._read_group_range(),
    )
    forced = IcmpAccess(IcmpMode.DATAGRAM, "forced by the test")
    result = run(probe_ping(host="127.0.0.1", timeout=1, count=1, access=forced))
    if allowed.mode is IcmpMode.DATAGRAM:
        assert result.status is ProbeStatus.OK, result.message
    else:
        assert result.status is ProbeStatus.UNKNOWN
        assert "ping_group_range" in result.message


def test_ping_a_name_that_does_not_resolve_is_unknown():
    _require_icmp()
    result = run(probe_ping(host="no-such-host.invalid", timeout=2, count=1))
    assert result.status in (ProbeStatus.UNKNOWN, ProbeStatus.UNREACHABLE)
    assert result.readings == {}


# --- TCP ------------------------------------------------------------------------------------------


async def _with_server(
    handler: Callable, body: Callable[[int], Awaitable], *, ssl_context=None
) -> object:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
    port = server.sockets[0].getsockname()[1]
    try:
        return await body(port)
    finally:
        server.close()
        # Handlers still blocked (the never-answering ones) must not hold the loop open.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                await server.wait_closed()


async def _banner_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OneStopTest\r\n")
    with contextlib.suppress(Exception):
        line = await reader.readline()
        if line == b"PING\n":
            writer.write(b"PONG\n")
        await writer.drain()
    writer.close()


def test_tcp_open_port_reports_connect_time():
    async def body(port):
        return await probe_tcp(host="127.0.0.1", port=port, timeout=2)

    result = run(_with_server(_banner_handler, body))
    assert result.status is ProbeStatus.OK, result.message
    assert 0 <= result.readings["tcp.connect_ms"] < 1000
    assert set(result.readings) == {"tcp.connect_ms"}


def test_tcp_banner_expected_and_request_response():
    async def body(port):
        banner = await probe_tcp(host="127.0.0.1", port=port, timeout=2, expect="SSH-2.0")
        # The server then waits for a line: the probe gives up at its timeout.
        wrong = await probe_tcp(host="127.0.0.1", port=port, timeout=0.5, expect=b"220 smtp")
        pong = await probe_tcp(
            host="127.0.0.1", port=port, timeout=2, send=b"PING\n", expect=b"PONG"
        )
        return banner, wrong, pong

    banner, wrong, pong = run(_with_server(_banner_handler, body))
    assert banner.status is ProbeStatus.OK, banner.message
    assert banner.readings["tcp.expect_match"] == 1.0
    assert "tcp.response_ms" in banner.readings
    assert wrong.status is ProbeStatus.FAILED
    assert wrong.readings["tcp.expect_match"] == 0.0
    assert "SSH-2.0-OneStopTest" in wrong.message
    assert pong.status is ProbeStatus.OK, pong.message


def test_tcp_closed_port_is_unreachable_refused_and_retried():
    port = free_port()
    result = run(probe_tcp(host="127.0.0.1", port=port, timeout=2, retries=2))
    assert result.status is ProbeStatus.UNREACHABLE
    assert "refused" in result.message
    assert result.readings == {}


def test_tcp_silent_service_fails_the_banner_check_within_timeout():
    async def silent(reader, writer):
        try:
            await reader.read()  # never says anything; waits for the client to go
        except OSError:
            pass
        finally:
            writer.close()  # also when cancelled at the end of the test

    async def body(port):
        return await probe_tcp(host="127.0.0.1", port=port, timeout=0.4, expect="220")

    started = time.monotonic()
    result = run(_with_server(silent, body))
    assert time.monotonic() - started < 2
    assert result.status is ProbeStatus.FAILED
    assert "tcp.connect_ms" in result.readings
    assert result.readings["tcp.expect_match"] == 0.0
    assert result.duration_ms < 1000


def test_tcp_unresolvable_host_does_not_raise():
    result = run(probe_tcp(host="no-such-host.invalid", port=80, timeout=2))
    assert result.status is ProbeStatus.UNREACHABLE
    assert result.message


# --- HTTPS ------------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(
    tmp_path: Path,
    label: str,
    *,
    not_before: dt.timedelta,
    not_after: dt.timedelta,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    is_ca: bool = False,
) -> tuple[Path, Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A P-256 certificate for localhost/127.0.0.1, valid now+not_before .. now+not_after."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = _name(f"onestop test {label}")
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + not_before)
        .not_valid_after(now + not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        if issuer:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
                critical=False,
            )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    cert_path = tmp_path / f"{label}.crt"
    key_path = tmp_path / f"{label}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, cert, key


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


async def _http_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A tiny HTTP/1.1 server: / is 200 with a known body, /error is 500, /trickle never ends."""
    try:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ", 2)[1].decode()
        if path == "/trickle":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while True:
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.05)
        status, body = (
            ("500 Internal Server Error", b"database on fire")
            if path == "/error"
            else ("200 OK", "<h1>OneStop 一站式 status: all good</h1>".encode())
        )
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
        pass  # the certificate check connects and leaves without a request
    finally:
        writer.close()


def https(port: int, path: str = "/") -> str:
    return f"https://127.0.0.1:{port}{path}"


@pytest.fixture
def self_signed_10_days(tmp_path):
    cert, key, *_ = make_cert(
        tmp_path, "selfsigned", not_before=dt.timedelta(days=-1), not_after=dt.timedelta(days=10)
    )
    return server_context(cert, key)


def test_https_self_signed_site_is_up_with_days_left_when_verification_is_off(
    self_signed_10_days,
):
    async def body(port):
        async with make_client() as client:
            plain = await probe_http(
                url=https(port), timeout=3, client=client, verify_tls=False, cert_cache=None
            )
            regex = await probe_http(
                url=https(port),
                timeout=3,
                client=client,
                verify_tls=False,
                body_match=r"status:\s+all\s+good",
                body_regex=True,
                cert_cache=None,
            )
            chinese = await probe_http(
                url=https(port), timeout=3, client=client, verify_tls=False, body_match="一站式"
            )
            return plain, regex, chinese

    plain, regex, chinese = run(_with_server(_http_handler, body, ssl_context=self_signed_10_days))
    assert plain.status is ProbeStatus.OK, plain.message
    r = plain.readings
    assert r["http.status"] == 200
    assert 0 < r["http.latency_ms"] < 3000
    assert 9.99 < r["tls.days_left"] <= 10.0
    assert r["tls.verified"] == 0.0
    assert "self-signed" in plain.message  # reported, not judged
    assert "http.body_match" not in r
    assert regex.status is ProbeStatus.OK, regex.message
    assert regex.readings["http.body_match"] == 1.0
    assert chinese.readings["http.body_match"] == 1.0


def test_https_self_signed_fails_when_verification_is_on_but_keeps_the_site_facts(
    self_signed_10_days,
):
    async def body(port):
        return await probe_http(url=https(port), timeout=3, cert_cache=None)

    result = run(_with_server(_http_handler, body, ssl_context=self_signed_10_days))
    assert result.status is ProbeStatus.FAILED
    assert result.readings["http.status"] == 200
    assert result.readings["tls.verified"] == 0.0
    assert 9.99 < result.readings["tls.days_left"] <= 10.0
    assert "HTTP 200" in result.message
    assert "self-signed certificate" in result.message


def test_https_certificate_from_a_trusted_ca_verifies(tmp_path):
    ca_path, _, ca_cert, ca_key = make_cert(
        tmp_path,
        "ca",
        not_before=dt.timedelta(days=-1),
        not_after=dt.timedelta(days=365),
        is_ca=True,
    )
    leaf, leaf_key, *_ = make_cert(
        tmp_path,
        "leaf",
        not_before=dt.timedelta(days=-1),
        not_after=dt.timedelta(days=30),
        issuer=(ca_cert, ca_key),
    )
    trust = ssl.create_default_context(cafile=str(ca_path))

    async def body(port):
        return await probe_http(url=https(port), timeout=3, tls_context=trust, cert_cache=None)

    result = run(_with_server(_http_handler, body, ssl_context=server_context(leaf, leaf_key)))
    assert result.status is ProbeStatus.OK, result.message
    assert result.readings["tls.verified"] == 1.0
    assert 29.99 < result.readings["tls.days_left"] <= 30.0


def test_https_expired_certificate_reports_negative_days_and_fails(tmp_path):
    ca_path, _, ca_cert, ca_key = make_cert(
        tmp_path,
        "ca",
        not_before=dt.timedelta(days=-400),
        not_after=dt.timedelta(days=365),
        is_ca=True,
    )
    leaf, leaf_key, *_ = make_cert(
        tmp_path,
        "expired",
        not_before=dt.timedelta(days=-30),
        not_after=dt.timedelta(days=-2),
        issuer=(ca_cert, ca_key),
    )
    trust = ssl.create_default_context(cafile=str(ca_path))

    async def body(port):
        return await probe_http(url=https(port), timeout=3, tls_context=trust, cert_cache=None)

    result = run(_with_server(_http_handler, body, ssl_context=server_context(leaf, leaf_key)))
    assert result.status is ProbeStatus.FAILED
    assert -2.01 < result.readings["tls.days_left"] < -1.99
    assert result.readings["tls.verified"] == 0.0
    assert "expired" in result.message
    assert result.readings["http.status"] == 200  # the site itself is up


def test_https_500_and_body_mismatch_fail_and_expected_status_is_honoured(self_signed_10_days):
    async def body(port):
        kw = {"timeout": 3, "verify_tls": False, "cert_cache": None}
        error = await probe_http(url=https(port, "/error"), **kw)
        wanted_500 = await probe_http(url=https(port, "/error"), expected_status=[500], **kw)
        mismatch = await probe_http(url=https(port), body_match="maintenance", **kw)
        head = await probe_http(url=https(port), method="HEAD", **kw)
        return error, wanted_500, mismatch, head

    error, wanted_500, mismatch, head = run(
        _with_server(_http_handler, body, ssl_context=self_signed_10_days)
    )
    assert error.status is ProbeStatus.FAILED
    assert error.readings["http.status"] == 500
    assert "HTTP 500" in error.message and "unexpected status" in error.message
    assert wanted_500.status is ProbeStatus.OK, wanted_500.message
    assert mismatch.status is ProbeStatus.FAILED
    assert mismatch.readings["http.body_match"] == 0.0
    assert "body does not match" in mismatch.message
    assert head.status is ProbeStatus.OK, head.message


def test_https_server_that_never_completes_the_handshake_returns_within_timeout():
    async def stall(reader, writer):
        try:
            await reader.read()  # accepts TCP, never answers the ClientHello
        except OSError:
            pass
        finally:
            writer.close()  # also when cancelled at the end of the test

    async def body(port):
        started = time.monotonic()
        result = await probe_http(url=https(port), timeout=0.5, cert_cache=None)
        cert = await fetch_certificate("127.0.0.1", port, timeout=0.5)
        return result, cert, time.monotonic() - started

    result, cert, elapsed = run(_with_server(stall, body))  # plain TCP server: no TLS at all
    assert elapsed < 2.0
    assert result.status is ProbeStatus.UNREACHABLE
    assert "TLS handshake timed out" in result.message
    assert "http.status" not in result.readings
    assert result.readings == {}  # no certificate seen, so no tls.* readings either
    assert result.duration_ms < 1000
    assert cert.not_after is None
    assert "handshake" in str(cert.error)


def test_http_body_that_never_ends_is_cut_off_at_the_timeout(self_signed_10_days):
    async def body(port):
        return await probe_http(
            url=https(port, "/trickle"),
            timeout=0.5,
            verify_tls=False,
            body_match="never",
            cert_cache=None,
        )

    result = run(_with_server(_http_handler, body, ssl_context=self_signed_10_days))
    assert result.status is ProbeStatus.UNREACHABLE
    assert result.duration_ms < 1000


def test_http_refused_retries_and_bad_configuration():
    port = free_port()
    refused = run(probe_http(url=f"http://127.0.0.1:{port}/", timeout=2, retries=1))
    assert refused.status is ProbeStatus.UNREACHABLE
    assert "no HTTP answer" in refused.message
    bad_regex = run(probe_http(url="http://127.0.0.1/", timeout=1, body_match="(", body_regex=True))
    assert bad_regex.status is ProbeStatus.UNKNOWN
    not_http = run(probe_http(url="ftp://127.0.0.1/", timeout=1))
    assert not_http.status is ProbeStatus.UNKNOWN


def test_plain_http_has_no_tls_readings():
    async def body(port):
        return await probe_http(url=f"http://127.0.0.1:{port}/", timeout=2)

    result = run(_with_server(_http_handler, body))
    assert result.status is ProbeStatus.OK, result.message
    assert set(result.readings) == {"http.status", "http.latency_ms"}


def test_certificate_facts_are_cached_per_host_and_port(self_signed_10_days, tmp_path):
    cache = CertCache(ttl=60)

    async def body(port):
        first = await probe_http(url=https(port), timeout=3, verify_tls=False, cert_cache=cache)
        assert cache.get(("127.0.0.1", port, None)) is not None
        second = await probe_http(url=https(port), timeout=3, verify_tls=False, cert_cache=cache)
        return first, second

    first, second = run(_with_server(_http_handler, body, ssl_context=self_signed_10_days))
    assert first.readings["tls.verified"] == second.readings["tls.verified"] == 0.0
    assert abs(first.readings["tls.days_left"] - second.readings["tls.days_left"]) < 0.001


# --- DNS ------------------------------------------------------------------------------------------


class _DnsServer(asyncio.DatagramProtocol):
    """Answers by name: www → two A records, missing → NXDOMAIN, broken → SERVFAIL,
    garbage/short → bytes that are not DNS, silent → nothing, empty → NOERROR without records."""

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        query = dns.message.from_wire(data)
        qname = query.question[0].name.to_text().lower()
        if qname.startswith("silent."):
            return
        if qname.startswith("garbage."):
            # A DNS header would read this as truncated (TC bit set), with a wrong id.
            self.transport.sendto(b"\x13\x37not dns at all", addr)
            return
        if qname.startswith("short."):
            self.transport.sendto(b"\x13\x37", addr)  # not even a header
            return
        response = dns.message.make_response(query)
        if qname.startswith("www."):
            response.answer.append(
                dns.rrset.from_text(qname, 300, "IN", "A", "192.0.2.10", "192.0.2.11")
            )
        elif qname.startswith("missing."):
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif qname.startswith("broken."):
            response.set_rcode(dns.rcode.SERVFAIL)
        self.transport.sendto(response.to_wire(), addr)


async def _with_dns(body: Callable[[int], Awaitable]):
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_DnsServer, local_addr=("127.0.0.1", 0))
    try:
        return await body(transport.get_extra_info("sockname")[1])
    finally:
        transport.close()


def dns_probe(port: int, name: str, **kw):
    return probe_dns(server="127.0.0.1", port=port, name=name, **{"timeout": 1, **kw})


def test_dns_answers_latency_and_expected_answers():
    async def body(port):
        plain = await dns_probe(port, "www.example.test")
        match = await dns_probe(port, "WWW.example.test.", expected=["192.0.2.11"])
        mismatch = await dns_probe(port, "www.example.test", expected=["192.0.2.99"])
        return plain, match, mismatch

    plain, match, mismatch = run(_with_dns(body))
    assert plain.status is ProbeStatus.OK, plain.message
    assert 0 <= plain.readings["dns.latency_ms"] < 1000
    assert plain.readings["dns.answer_count"] == 2
    assert plain.readings["dns.rcode"] == 0
    assert "192.0.2.10" in plain.message and "192.0.2.11" in plain.message
    assert "dns.answer_match" not in plain.readings
    assert match.status is ProbeStatus.OK, match.message
    assert match.readings["dns.answer_match"] == 1.0
    assert mismatch.status is ProbeStatus.FAILED
    assert mismatch.readings["dns.answer_match"] == 0.0
    assert "192.0.2.99" in mismatch.message


def test_dns_nxdomain_servfail_and_no_records_fail_clearly():
    async def body(port):
        return (
            await dns_probe(port, "missing.example.test", expected=["192.0.2.10"]),
            await dns_probe(port, "broken.example.test"),
            await dns_probe(port, "empty.example.test"),
        )

    nxdomain, servfail, empty = run(_with_dns(body))
    assert nxdomain.status is ProbeStatus.FAILED
    assert nxdomain.message == "NXDOMAIN"
    assert nxdomain.readings["dns.rcode"] == dns.rcode.NXDOMAIN
    assert nxdomain.readings["dns.answer_match"] == 0.0
    assert servfail.status is ProbeStatus.FAILED
    assert servfail.message == "SERVFAIL"
    assert empty.status is ProbeStatus.FAILED
    assert empty.message == "no A records"
    assert empty.readings["dns.answer_count"] == 0


def test_dns_garbage_answers_are_failed_not_raised():
    async def body(port):
        return (
            await dns_probe(port, "garbage.example.test"),
            await dns_probe(port, "short.example.test"),
        )

    garbage, short = run(_with_dns(body))
    assert garbage.status is ProbeStatus.FAILED
    assert "truncated UDP answer" in garbage.message  # and nothing listens on TCP
    assert short.status is ProbeStatus.FAILED
    assert "unparsable answer" in short.message
    assert "dns.latency_ms" in short.readings


def test_dns_silent_server_is_unreachable_within_timeout_and_retried():
    async def body(port):
        return await dns_probe(port, "silent.example.test", timeout=0.3, retries=1)

    started = time.monotonic()
    result = run(_with_dns(body))
    elapsed = time.monotonic() - started
    assert result.status is ProbeStatus.UNREACHABLE
    assert "no answer" in result.message
    assert 0.55 < elapsed < 1.5  # two attempts of 0.3 s
    assert result.readings == {}


def test_dns_bad_configuration_is_unknown():
    assert run(probe_dns(server="dns.example", name="x.test", timeout=1)).status is (
        ProbeStatus.UNKNOWN
    )
    assert run(
        probe_dns(server="127.0.0.1", name="x.test", record_type="NOPE", timeout=1)
    ).status is (ProbeStatus.UNKNOWN)
