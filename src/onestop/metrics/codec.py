"""Packing of chunks and rollups into bytes.

A chunk holds the millisecond offsets of its samples from the hour's start, delta-encoded as
uint32, then the values as float64, little-endian, zlib-compressed: regular intervals make the
offsets nearly free, so a sample costs about its value's eight bytes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

HOUR_MS = 3_600_000


def chunk_pack(hour: int, points: Sequence[tuple[int, float]]) -> bytes:
    """Packs (ts_ms, value) pairs, sorted by time and all inside the hour starting at `hour`."""
    previous = hour * 1000
    deltas = []
    for ts, _value in points:
        deltas.append(ts - previous)
        previous = ts
    n = len(points)
    raw = struct.pack(f"<{n}I{n}d", *deltas, *(value for _ts, value in points))
    return zlib.compress(raw, 6)


def chunk_unpack(hour: int, count: int, data: bytes) -> list[tuple[int, float]]:
    """The (ts_ms, value) pairs of a chunk, in time order."""
    fields = struct.unpack(f"<{count}I{count}d", zlib.decompress(data))
    ts = hour * 1000
    points = []
    for i in range(count):
        ts += fields[i]
        points.append((ts, fields[count + i]))
    return points


def rollup_pack(buckets: Sequence[tuple[int, int, float, float, float]]) -> bytes:
    """Packs (bucket index in the day, count, min, avg, max) rows, sorted by index."""
    n = len(buckets)
    columns = list(zip(*buckets, strict=True)) if buckets else [(), (), (), (), ()]
    raw = struct.pack(f"<I{n}H{n}I{n}d{n}d{n}d", n, *(v for column in columns for v in column))
    return zlib.compress(raw, 6)


def rollup_unpack(data: bytes) -> list[tuple[int, int, float, float, float]]:
    """The (bucket index, count, min, avg, max) rows of a rollup."""
    raw = zlib.decompress(data)
    (n,) = struct.unpack_from("<I", raw)
    fields = struct.unpack_from(f"<{n}H{n}I{n}d{n}d{n}d", raw, 4)
    return [
        (fields[i], fields[n + i], fields[2 * n + i], fields[3 * n + i], fields[4 * n + i])
        for i in range(n)
    ]
