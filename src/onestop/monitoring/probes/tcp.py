"""TCP port check: connect time, optionally a request sent and an expected banner read back."""

from __future__ import annotations

import asyncio
import time

from .base import Note, ProbeResult, ProbeStatus, finished, note, verbatim

MAX_READ = 64 * 1024  # enough for any banner; a chatty service must not fill memory


async def probe_tcp(
    *,
    host: str,
    port: int,
    timeout: float,
    send: bytes | None = None,
    expect: bytes | str | None = None,
    retries: int = 0,
) -> ProbeResult:
    """Connect to host:port; with `expect`, read until it appears (after writing `send`).

    `timeout` bounds each attempt (connect and banner together); only "nothing answered"
    (refused, timeout, unreachable) is retried, a wrong banner is an answer and is not.
    Readings: tcp.connect_ms, and with send/expect tcp.response_ms and tcp.expect_match (1/0).
    """
    started = time.perf_counter()
    result = None
    for _ in range(max(0, retries) + 1):
        result = await _attempt(host, port, timeout, send, expect)
        if result.status is not ProbeStatus.UNREACHABLE:
            break
    assert result is not None
    return ProbeResult(
        result.status, result.readings, result.note, (time.perf_counter() - started) * 1000
    )


async def _attempt(
    host: str, port: int, timeout: float, send: bytes | None, expect: bytes | str | None
) -> ProbeResult:
    started = time.perf_counter()
    readings: dict[str, float] = {}
    writer = None
    seen = bytearray()  # outlives a timeout, so the message can show what did arrive
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            connected = time.perf_counter()
            readings["tcp.connect_ms"] = round((connected - started) * 1000, 3)
            if send is None and expect is None:
                return finished(
                    ProbeStatus.OK,
                    readings,
                    note("connected to {host}:{port}", host=host, port=port),
                    started,
                )
            if send:
                writer.write(send)
                await writer.drain()
            wanted = expect.encode() if isinstance(expect, str) else expect
            if wanted is not None:
                await _read_until(reader, wanted, seen)
            readings["tcp.response_ms"] = round((time.perf_counter() - connected) * 1000, 3)
    except TimeoutError:
        if "tcp.connect_ms" in readings:
            # Connected, so the port is up; it just did not say what we expected in time.
            readings["tcp.expect_match"] = 0.0
            return finished(
                ProbeStatus.FAILED,
                readings,
                note(
                    "no expected answer within {timeout:g} s, got {seen}",
                    timeout=timeout,
                    seen=repr(bytes(seen[:80])),
                ),
                started,
            )
        return finished(
            ProbeStatus.UNREACHABLE,
            readings,
            note("connect timed out after {timeout:g} s", timeout=timeout),
            started,
        )
    except OSError as exc:  # refused, unreachable, reset, name lookup (socket.gaierror)
        status = ProbeStatus.FAILED if "tcp.connect_ms" in readings else ProbeStatus.UNREACHABLE
        return finished(status, readings, _describe(exc), started)
    finally:
        if writer is not None:
            # Not awaited: the close finishes in the background, outside the timeout. A peer
            # that never reads would hold unsent data (and the socket) forever: drop it.
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()
            else:
                writer.close()
    if wanted is None:
        return finished(
            ProbeStatus.OK, readings, note("sent {count} bytes", count=len(send or b"")), started
        )
    if wanted in seen:
        readings["tcp.expect_match"] = 1.0
        return finished(
            ProbeStatus.OK,
            readings,
            note("expected answer from {host}:{port}", host=host, port=port),
            started,
        )
    readings["tcp.expect_match"] = 0.0
    return finished(
        ProbeStatus.FAILED,
        readings,
        note("unexpected answer: {seen}", seen=repr(bytes(seen[:80]))),
        started,
    )


async def _read_until(reader: asyncio.StreamReader, wanted: bytes, seen: bytearray) -> None:
    """Read into `seen` until `wanted` shows up, the peer closes, or MAX_READ bytes."""
    while len(seen) < MAX_READ and wanted not in seen:
        chunk = await reader.read(MAX_READ - len(seen))
        if not chunk:
            break
        seen += chunk


def _describe(exc: OSError) -> Note:
    if isinstance(exc, ConnectionRefusedError):
        return note("connection refused")
    return verbatim(exc.strerror or str(exc) or type(exc).__name__)
