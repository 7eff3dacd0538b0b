"""HTTP(S) check with httpx: status, latency, body match, and the TLS certificate's health.

TLS semantics (a provider wants "site up" and "certificate good" as separate facts):

* The HTTP request itself does not judge the certificate: the poller's shared client
  (`make_client`) does not verify, so a site with a bad certificate still reports its status
  and latency.
* A separate TLS handshake fetches the peer certificate and verifies it (trust chain, hostname,
  dates) against the system trust store or `tls_context`. ``tls.days_left`` is reported even
  when verification fails (self-signed, expired), and ``tls.verified`` is 1/0.
* With ``verify_tls=True`` (the default) an unverifiable certificate makes the result FAILED,
  as a browser would refuse the site; the message keeps the HTTP status so "up but cert bad" is
  visible. ``verify_tls=False`` is for devices with self-signed certificates: expiry is still
  reported, verification does not affect the status. Expiring-soon is left to alert rules on
  ``tls.days_left``.

Certificate facts are cached per (host, port) for a few minutes: at thousands of checks a
minute a second handshake per check would double the TLS cost for a value that changes daily.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from cryptography import x509

from .base import Note, ProbeResult, ProbeStatus, finished, note, notes_joined, verbatim

USER_AGENT = "OneStop-monitor"
MAX_BODY = 1024 * 1024  # bytes read for the body match; the rest is not downloaded
DEFAULT_OK_STATUSES = range(200, 400)


def make_client(*, max_connections: int = 500, verify: bool = False) -> httpx.AsyncClient:
    """The poller's one shared client (create it inside the poller's event loop).

    verify=False: certificate validity is judged by the separate TLS check, so the request
    measures the site alone. trust_env=False: a proxy from the environment would measure the
    proxy, not the target. No keep-alive: every check measures a fresh connection, as a
    customer's browser would see the site, and httpx's pool stays small (with many idle
    connections kept, its bookkeeping made each request cost more CPU as checks grew:
    bench/poller.py).
    """
    return httpx.AsyncClient(
        verify=verify,
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=0,
        ),
    )


@dataclass(frozen=True)
class CertInfo:
    not_after: datetime | None  # None when the certificate could not be read
    verified: bool
    error: Note | None  # why verification failed or the certificate could not be read

    def days_left(self, now: datetime | None = None) -> float | None:
        if self.not_after is None:
            return None
        now = now or datetime.now(UTC)
        return round((self.not_after - now).total_seconds() / 86400, 3)


class CertCache:
    """(host, port, sni, context) -> CertInfo for `ttl` seconds; ttl=0 disables it."""

    def __init__(self, ttl: float = 600.0, max_entries: int = 50_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple, tuple[float, CertInfo]] = {}

    def get(self, key: tuple) -> CertInfo | None:
        hit = self._entries.get(key)
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return None
        return hit[1]

    def put(self, key: tuple, info: CertInfo) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; refilling costs one handshake each
        self._entries[key] = (time.monotonic(), info)


DEFAULT_CERT_CACHE = CertCache()


@functools.cache
def _default_verifying_context() -> ssl.SSLContext:
    return ssl.create_default_context()  # loading the trust store is slow: do it once


@functools.cache
def _insecure_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def fetch_certificate(
    host: str,
    port: int,
    *,
    timeout: float,
    server_hostname: str | None = None,
    context: ssl.SSLContext | None = None,
) -> CertInfo:
    """Handshake with host:port and describe its certificate; never raises.

    Verifies first; only when verification fails does a second, unverified handshake read
    the certificate anyway, so the common (valid) case costs one handshake.
    """
    sni = server_hostname or host
    try:
        der = await _peer_certificate(
            host, port, sni, context or _default_verifying_context(), timeout
        )
        verified, error = True, None
    except ssl.SSLCertVerificationError as exc:
        verified, error = False, verbatim(exc.verify_message or str(exc))
        try:
            der = await _peer_certificate(host, port, sni, _insecure_context(), timeout)
        except (OSError, TimeoutError) as exc2:
            return CertInfo(
                None,
                False,
                note(
                    "{error}; certificate unreadable: {reason}", error=error, reason=_describe(exc2)
                ),
            )
    except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
        return CertInfo(None, False, note("TLS handshake failed: {reason}", reason=_describe(exc)))
    if not der:
        return CertInfo(None, verified, error or note("no certificate presented"))
    try:
        not_after = x509.load_der_x509_certificate(der).not_valid_after_utc
    except ValueError as exc:
        return CertInfo(None, verified, note("unparsable certificate: {error}", error=str(exc)))
    return CertInfo(not_after, verified, error)


async def _peer_certificate(
    host: str, port: int, sni: str, context: ssl.SSLContext, timeout: float
) -> bytes | None:
    writer = None
    try:
        # asyncio.timeout covers connect + handshake; ssl_handshake_timeout alone would leave
        # the TCP connect to the OS default (minutes).
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=sni, ssl_handshake_timeout=timeout
            )
        ssl_object = writer.get_extra_info("ssl_object")
        return ssl_object.getpeercert(binary_form=True) if ssl_object else None
    finally:
        if writer is not None:
            # Not awaited: the TLS close_notify exchange finishes in the background (asyncio
            # aborts it after ssl_shutdown_timeout), so it never counts against the timeout.
            writer.close()


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


async def probe_http(
    *,
    url: str,
    timeout: float,
    client: httpx.AsyncClient | None = None,
    method: str = "GET",
    expected_status: list[int] | tuple[int, ...] | range | None = None,
    body_match: str | None = None,
    body_regex: bool = False,
    headers: dict[str, str] | None = None,
    verify_tls: bool = True,
    check_cert: bool = True,
    tls_context: ssl.SSLContext | None = None,
    cert_cache: CertCache | None = DEFAULT_CERT_CACHE,
    retries: int = 0,
) -> ProbeResult:
    """Request `url`; OK when the status is expected (default 200-399) and the body matches.

    `timeout` bounds each attempt, certificate check included (it runs alongside the request).
    Only "no HTTP answer" is retried. `client` should be the poller's shared `make_client()`;
    without one a client is made for this call (fine for one-offs and tests, slow in bulk).
    Readings: http.status, http.latency_ms, http.body_match (with body_match), and for https
    tls.days_left and tls.verified (with check_cert, when a certificate could be read).
    """
    started = time.perf_counter()
    try:
        parsed = urllib.parse.urlsplit(url)
        host, port = parsed.hostname, parsed.port
        pattern = _compile(body_match) if body_match is not None and body_regex else None
    except (ValueError, re.error) as exc:
        return finished(
            ProbeStatus.UNKNOWN,
            {},
            note("bad check configuration: {error}", error=str(exc)),
            started,
        )
    if parsed.scheme not in ("http", "https") or not host:
        return finished(
            ProbeStatus.UNKNOWN, {}, note("not an http(s) URL: {url}", url=url), started
        )
    port = port or (443 if parsed.scheme == "https" else 80)
    own_client = client is None
    if own_client:
        client = make_client(max_connections=4)
    try:
        for _ in range(max(0, retries) + 1):
            result = await _attempt(
                client,
                url=url,
                host=host,
                port=port,
                https=parsed.scheme == "https",
                timeout=timeout,
                method=method,
                expected=expected_status or DEFAULT_OK_STATUSES,
                body_match=body_match,
                pattern=pattern,
                headers=headers,
                verify_tls=verify_tls,
                check_cert=check_cert,
                tls_context=tls_context,
                cert_cache=cert_cache,
            )
            if result.status is not ProbeStatus.UNREACHABLE:
                break
    finally:
        if own_client:
            await client.aclose()
    return finished(result.status, result.readings, result.note, started)


async def _attempt(
    client: httpx.AsyncClient,
    *,
    url: str,
    host: str,
    port: int,
    https: bool,
    timeout: float,
    method: str,
    expected,
    body_match: str | None,
    pattern: re.Pattern[str] | None,
    headers: dict[str, str] | None,
    verify_tls: bool,
    check_cert: bool,
    tls_context: ssl.SSLContext | None,
    cert_cache: CertCache | None,
) -> ProbeResult:
    started = time.perf_counter()
    cert_task = None
    if https and check_cert:
        cert_task = asyncio.ensure_future(
            _cached_certificate(host, port, timeout, tls_context, cert_cache)
        )
    readings: dict[str, float] = {}
    try:
        try:
            response, body, latency_ms = await _request(
                client, method, url, headers, timeout, want_body=body_match is not None
            )
        except (httpx.HTTPError, httpx.InvalidURL, OSError, TimeoutError) as exc:
            response, failure = None, _describe_http(exc, timeout)
        cert = await cert_task if cert_task is not None else None
    finally:
        if cert_task is not None and not cert_task.done():
            cert_task.cancel()  # we were cancelled ourselves: leave nothing running

    if cert is not None and cert.not_after is not None:
        # Only from a certificate actually seen: a failed handshake says nothing about it,
        # and a "not verified" reading there would add a cert alert to the "down" alert.
        readings["tls.days_left"] = cert.days_left()
        readings["tls.verified"] = 1.0 if cert.verified else 0.0
    if response is None:
        return finished(ProbeStatus.UNREACHABLE, readings, failure, started)

    readings["http.status"] = float(response.status_code)
    readings["http.latency_ms"] = round(latency_ms, 3)
    problems: list[Note] = []
    if response.status_code not in expected:
        problems.append(note("unexpected status"))
    if body_match is not None:
        try:
            text = body.decode(response.encoding or "utf-8", errors="replace")
        except LookupError:  # the server named a charset Python does not know
            text = body.decode("utf-8", errors="replace")
        matched = pattern.search(text) is not None if pattern else body_match in text
        readings["http.body_match"] = 1.0 if matched else 0.0
        if not matched:
            problems.append(note("body does not match"))
    summary = note(
        "HTTP {status} in {latency:.0f} ms", status=response.status_code, latency=latency_ms
    )
    if cert is not None and not cert.verified and cert.error is not None:
        if verify_tls and cert.not_after is not None:
            problems.append(note("TLS certificate not valid: {error}", error=cert.error))
        else:
            # Unreadable or not judged: say so, don't fail.
            summary = notes_joined(summary, note("TLS: {error}", error=cert.error))
    if problems:
        return finished(ProbeStatus.FAILED, readings, notes_joined(summary, *problems), started)
    return finished(ProbeStatus.OK, readings, summary, started)


async def _request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: dict[str, str] | None,
    timeout: float,
    *,
    want_body: bool,
) -> tuple[httpx.Response, bytes, float]:
    started = time.perf_counter()
    # httpx's timeouts are per operation (a trickling body resets the read timeout), so
    # asyncio.timeout bounds the whole exchange. httpx's connect timeout applies to the TCP
    # connect and again to the TLS handshake; it must fire before ours, because httpcore
    # closes a half-done TLS connection on its own timeout but leaks the socket (until GC)
    # when cancelled from outside mid-handshake. Hence 0.45 of the budget for each.
    own = httpx.Timeout(timeout, connect=timeout * 0.45)
    async with asyncio.timeout(timeout):
        async with client.stream(method, url, headers=headers, timeout=own) as response:
            body = b""
            if want_body and method.upper() != "HEAD":
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= MAX_BODY:
                        break
    return response, body[:MAX_BODY], (time.perf_counter() - started) * 1000


async def _cached_certificate(
    host: str,
    port: int,
    timeout: float,
    context: ssl.SSLContext | None,
    cache: CertCache | None,
) -> CertInfo:
    key = (host, port, id(context) if context else None)
    if cache is not None and (info := cache.get(key)) is not None:
        return info
    info = await fetch_certificate(host, port, timeout=timeout, context=context)
    if cache is not None and info.not_after is not None:
        cache.put(key, info)
    return info


def _describe_http(exc: BaseException, timeout: float) -> Note:
    if isinstance(exc, httpx.ConnectTimeout):
        return note(
            "no HTTP answer: connect or TLS handshake timed out ({timeout:.3g} s)",
            timeout=timeout * 0.45,
        )
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return note(
            "no HTTP answer within {timeout:g} s ({error})",
            timeout=timeout,
            error=type(exc).__name__,
        )
    return note("no HTTP answer: {reason}", reason=_describe(exc))


def _describe(exc: BaseException) -> Note:
    if isinstance(exc, TimeoutError):
        return note("timed out")
    if isinstance(exc, ConnectionRefusedError):
        return note("connection refused")
    if isinstance(exc, ssl.SSLError):
        return verbatim(exc.reason or str(exc))
    cause = exc.__cause__ or exc.__context__
    return verbatim(str(exc) or (str(cause) if cause else "") or type(exc).__name__)
