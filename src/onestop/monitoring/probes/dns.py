"""DNS check: ask one server (ip, port) for one record; latency, answers, expected answers.

Uses dnspython's asyncio query layer (dns.asyncquery) rather than its stub Resolver: a
monitor must see exactly what that one server said (NXDOMAIN, SERVFAIL, REFUSED, garbage) and
own the timeout and retries, while the Resolver hides rcodes behind exceptions, rotates
servers and retries by itself. Truncated UDP answers are asked again over TCP.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterable

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from .base import ProbeResult, ProbeStatus, elapsed_ms, finished, note, verbatim


async def probe_dns(
    *,
    server: str,
    name: str,
    timeout: float,
    record_type: str = "A",
    port: int = 53,
    expected: Iterable[str] | None = None,
    retries: int = 0,
) -> ProbeResult:
    """Query `server`:`port` (an IP address) for `name`/`record_type`.

    OK: NOERROR with at least one record of that type and, with `expected`, every expected
    value among the answers (extra answers are fine: round-robin pools grow). FAILED: any other
    answer (NXDOMAIN, SERVFAIL, no records, mismatch, an unparsable reply). UNREACHABLE: no
    answer within `timeout` (per attempt; only these are retried).
    Readings: dns.latency_ms, dns.rcode, dns.answer_count, dns.answer_match (with expected).
    """
    started = time.perf_counter()
    try:
        rdtype = dns.rdatatype.from_text(record_type.upper())
        query = dns.message.make_query(dns.name.from_text(name), rdtype)
        ipaddress.ip_address(server)
        wanted = {_normalize(rdtype, v) for v in expected} if expected is not None else None
    except (ValueError, dns.exception.DNSException) as exc:
        return finished(
            ProbeStatus.UNKNOWN,
            {},
            note("bad check configuration: {error}", error=str(exc)),
            started,
        )

    result = None
    for _ in range(max(0, retries) + 1):
        result = await _attempt(query, rdtype, server, port, timeout, wanted)
        if result.status is not ProbeStatus.UNREACHABLE:
            break
    assert result is not None
    return finished(result.status, result.readings, result.note, started)


async def _attempt(
    query: dns.message.Message,
    rdtype: dns.rdatatype.RdataType,
    server: str,
    port: int,
    timeout: float,
    wanted: set[str] | None,
) -> ProbeResult:
    started = time.perf_counter()
    try:
        # dnspython's own timeout covers each leg; asyncio.timeout bounds the UDP+TCP total.
        async with asyncio.timeout(timeout):
            try:
                response = await dns.asyncquery.udp(
                    query, server, timeout=timeout, port=port, raise_on_truncation=True
                )
            except dns.message.Truncated:
                response = await _over_tcp(query, server, port, timeout)
    except _TcpFallbackFailed as exc:
        # UDP did answer (truncated, or garbage with the TC bit set), so this is not "down".
        return finished(
            ProbeStatus.FAILED,
            {"dns.latency_ms": elapsed_ms(started)},
            note(
                "truncated UDP answer from {server} and no answer over TCP: {error}",
                server=server,
                error=str(exc),
            ),
            started,
        )
    except (TimeoutError, dns.exception.Timeout):
        return finished(
            ProbeStatus.UNREACHABLE,
            {},
            note("no answer from {server} within {timeout:g} s", server=server, timeout=timeout),
            started,
        )
    except OSError as exc:  # refused (ICMP port unreachable), network unreachable
        return finished(
            ProbeStatus.UNREACHABLE,
            {},
            note("no answer from {server}: {error}", server=server, error=str(exc)),
            started,
        )
    except (dns.exception.DNSException, ValueError, EOFError) as exc:
        # Something answered, but not with a DNS reply to our question.
        return finished(
            ProbeStatus.FAILED,
            {"dns.latency_ms": elapsed_ms(started)},
            note(
                "unparsable answer from {server}: {error}",
                server=server,
                error=f"{type(exc).__name__}: {exc}",
            ),
            started,
        )

    latency = elapsed_ms(started)
    rcode = response.rcode()
    answers = [
        _normalize(rdtype, rdata.to_text(), rdata)
        for rrset in response.answer
        if rrset.rdtype == rdtype
        for rdata in rrset
    ]
    readings = {
        "dns.latency_ms": latency,
        "dns.rcode": float(rcode),
        "dns.answer_count": float(len(answers)),
    }
    type_text = dns.rdatatype.to_text(rdtype)
    if rcode != dns.rcode.NOERROR:
        if wanted is not None:
            readings["dns.answer_match"] = 0.0
        return finished(ProbeStatus.FAILED, readings, verbatim(dns.rcode.to_text(rcode)), started)
    if not answers:
        if wanted is not None:
            readings["dns.answer_match"] = 0.0
        return finished(
            ProbeStatus.FAILED, readings, note("no {type} records", type=type_text), started
        )
    shown = ", ".join(answers[:10]) + (" …" if len(answers) > 10 else "")
    summary = note(
        "{type} {answers} in {latency:.0f} ms", type=type_text, answers=shown, latency=latency
    )
    if wanted is not None:
        missing = wanted - set(answers)
        readings["dns.answer_match"] = 0.0 if missing else 1.0
        if missing:
            return finished(
                ProbeStatus.FAILED,
                readings,
                note(
                    "{summary}; expected {missing} missing",
                    summary=summary,
                    missing=", ".join(sorted(missing)),
                ),
                started,
            )
    return finished(ProbeStatus.OK, readings, summary, started)


class _TcpFallbackFailed(Exception):
    pass


async def _over_tcp(
    query: dns.message.Message, server: str, port: int, timeout: float
) -> dns.message.Message:
    try:
        return await dns.asyncquery.tcp(query, server, timeout=timeout, port=port)
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        raise _TcpFallbackFailed(str(exc) or type(exc).__name__) from exc


def _normalize(rdtype: dns.rdatatype.RdataType, text: str, rdata=None) -> str:
    """One spelling per value, so expected answers compare equal to what the server sent."""
    if rdtype == dns.rdatatype.TXT:
        if rdata is not None:
            return b"".join(rdata.strings).decode("utf-8", errors="replace")
        return text
    text = text.strip()
    if rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            return text
    return text.rstrip(".").lower()  # names: case-insensitive, trailing dot optional
