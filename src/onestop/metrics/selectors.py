"""Reads of the metric store: series of a source, chart data, latest values."""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from onestop.metrics import codec, storage
from onestop.metrics.models import Rollup, Series
from onestop.metrics.services import DAY, FIVE_MINUTE_DAYS, RAW_DAYS

MAX_POINTS = 1000
# Bucket widths a chart reads well (seconds); a query's width is the first one wide enough.
WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)


class Point(NamedTuple):
    """One point of a chart: the bucket's start (unix seconds) and its samples' summary; a raw
    sample is a bucket of one."""

    ts: float
    min: float
    avg: float
    max: float
    count: int


@dataclass(frozen=True)
class SeriesPoints:
    """The points of one series over a query's range."""

    name: str
    labels: dict[str, str]
    resolution: int  # where the points come from: 0 raw samples, 300 or 3600 rollups
    step: int  # the bucket width of the points in seconds, 0 for raw samples as stored
    points: list[Point]


@dataclass(frozen=True)
class LatestValue:
    """The last stored sample of one series."""

    source_id: int
    name: str
    labels: dict[str, str]
    ts: float
    value: float


def series_list(*, source_id: int) -> QuerySet[Series]:
    """The series of one source, by name and labels."""
    return Series.objects.filter(source_id=source_id).order_by("name", "key")


def _seconds(value: float | datetime.datetime) -> float:
    return value.timestamp() if isinstance(value, datetime.datetime) else float(value)


def _width(wanted: float, resolution: int) -> int:
    wanted = max(wanted, resolution, 1)
    for width in WIDTHS:
        if width >= wanted:
            return width
    return math.ceil(wanted / DAY) * DAY


def _buckets(points: Iterable[Point], width: int) -> list[Point]:
    merged: dict[int, list] = {}
    for ts, low, avg, high, count in points:
        start = int(ts // width * width)
        bucket = merged.get(start)
        if bucket is None:
            merged[start] = [low, avg * count, high, count]
        else:
            bucket[0] = min(bucket[0], low)
            bucket[1] += avg * count
            bucket[2] = max(bucket[2], high)
            bucket[3] += count
    return [
        Point(float(start), low, total / count, high, count)
        for start, (low, total, high, count) in sorted(merged.items())
    ]


def _raw(ids: list[int], start: float, end: float) -> dict[int, list[Point]]:
    found = storage.raw_points(ids, math.ceil(start * 1000), math.floor(end * 1000))
    return {
        sid: [Point(ts / 1000, value, value, value, 1) for ts, value in points]
        for sid, points in found.items()
    }


def _rolled(ids: list[int], resolution: int, start: float, end: float) -> dict[int, list[Point]]:
    """Rollup buckets starting in [start, end]; the days not rolled up yet come from the raw
    samples, bucketed the same way, so that a chart reaches up to now."""
    rolled_until = storage.state_row().rolled_until
    aligned = start // resolution * resolution
    found: dict[int, list[Point]] = {sid: [] for sid in ids}
    rows = Rollup.objects.filter(
        series_id__in=ids,
        resolution=resolution,
        day__gte=aligned // DAY * DAY,
        day__lte=end,
        day__lt=rolled_until,
    ).values_list("series_id", "day", "data")
    for sid, day, data in rows:
        for index, count, low, avg, high in codec.rollup_unpack(bytes(data)):
            ts = day + index * resolution
            if aligned <= ts <= end:
                found[sid].append(Point(float(ts), low, avg, high, count))
    if end >= rolled_until:
        for sid, points in _raw(ids, max(start, rolled_until), end).items():
            found[sid].extend(_buckets(points, resolution))
    return found


def series_query(
    *,
    source_id: int,
    name: str,
    labels: Mapping[str, str] | None = None,
    start: float | datetime.datetime,
    end: float | datetime.datetime,
    step: float | None = None,
) -> list[SeriesPoints]:
    """Chart data of a source's series named `name` (only those having all of `labels`)
    between start and end (unix seconds or aware datetimes): raw samples, 5-minute or 1-hour
    rollups, whichever is the finest that gives buckets of at least `step` seconds and at most
    MAX_POINTS points per series."""
    t0, t1 = _seconds(start), _seconds(end)
    if not (math.isfinite(t0) and math.isfinite(t1) and t1 > t0):
        raise ValidationError(_("The end of the range must be after its start."), code="range")
    if step is not None and not (math.isfinite(step) and step > 0):
        raise ValidationError(_("The step must be a positive number of seconds."), code="step")
    wanted = max(step or 0.0, (t1 - t0) / (MAX_POINTS - 2))
    now = time.time()
    if wanted < 300 and t0 >= now - RAW_DAYS * DAY:
        resolution = 0
    elif wanted < 3600 and t0 >= now - FIVE_MINUTE_DAYS * DAY:
        resolution = 300
    else:
        resolution = 3600
    wanted_labels = dict(labels or {})
    series = [
        s
        for s in Series.objects.filter(source_id=source_id, name=name).order_by("key")
        if wanted_labels.items() <= s.labels.items()
    ]
    ids = [s.pk for s in series]
    data = _rolled(ids, resolution, t0, t1) if resolution else _raw(ids, t0, t1)
    result = []
    for s in series:
        points = data[s.pk]
        if resolution == 0 and step is None and len(points) <= MAX_POINTS:
            width = 0
        else:
            width = _width(wanted, resolution)
            if width > resolution:
                points = _buckets(points, width)
        result.append(SeriesPoints(s.name, s.labels, resolution, width, points))
    return sorted(result, key=lambda r: sorted(r.labels.items()))


def latest_values(*, source_ids: Iterable[int], names: Iterable[str]) -> list[LatestValue]:
    """The last sample of every series of these sources with one of these names, in three
    queries however many series there are; series without samples are left out."""
    series = {
        sid: (source_id, name, labels)
        for sid, source_id, name, labels in Series.objects.filter(
            source_id__in=list(source_ids), name__in=list(names)
        ).values_list("id", "source_id", "name", "labels")
    }
    if not series:
        return []
    condition, params = storage.ids_condition("series_id", series)
    last: dict[int, tuple[int, float]] = {}
    with connection.cursor() as cursor:
        # Buffers before chunks, as in storage.raw_points, so a concurrent compaction hides
        # nothing.
        cursor.execute(
            " UNION ALL ".join(
                f"SELECT b.series_id, b.ts, b.value FROM {table} b JOIN (SELECT series_id, "
                f"MAX(ts) AS ts FROM {table} WHERE {condition} GROUP BY series_id) m "
                "ON b.series_id = m.series_id AND b.ts = m.ts"
                for table in storage.BUFFERS
            ),
            params * len(storage.BUFFERS),
        )
        for sid, ts, value in cursor.fetchall():
            if sid not in last or ts > last[sid][0]:
                last[sid] = (ts, value)
        cursor.execute(
            "SELECT c.series_id, c.hour, c.count, c.data FROM metrics_chunk c JOIN (SELECT "
            f"series_id, MAX(hour) AS hour FROM metrics_chunk WHERE {condition} "
            "GROUP BY series_id) m ON c.series_id = m.series_id AND c.hour = m.hour",
            params,
        )
        for sid, hour, count, data in cursor.fetchall():
            ts, value = codec.chunk_unpack(hour, count, bytes(data))[-1]
            if sid not in last or ts > last[sid][0]:
                last[sid] = (ts, value)
    return [
        LatestValue(series[sid][0], series[sid][1], series[sid][2], ts / 1000, value)
        for sid, (ts, value) in sorted(last.items())
    ]
