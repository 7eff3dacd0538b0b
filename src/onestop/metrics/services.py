"""Every write to the metric store: samples in, compaction, rollups, retention.

Samples land in the active buffer (one narrow row each, COPY on PostgreSQL); every few minutes
`store_maintain` freezes that buffer, packs its rows into hourly chunks and empties it whole,
rolls closed days up into 5-minute and 1-hour buckets, and drops what has expired a whole chunk
or rollup row at a time. Each step is idempotent, so a crash anywhere is repaired by a rerun.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Mapping, Sequence

import orjson
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext as _

from onestop.metrics import codec, storage
from onestop.metrics.models import Series

RAW_DAYS = 7
FIVE_MINUTE_DAYS = 90
HOUR_DAYS = 730
DAY = 86_400
# How late after its period a sample may still arrive and be counted in that period's rollup.
GRACE_SECONDS = 300
# Series per transaction in compaction and rollups: keeps SQLite's write lock short.
BATCH_SERIES = 1000

NAME_RE = re.compile(r"[a-z0-9_.]{1,100}")
LABEL_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_LABELS = 16
MAX_LABEL_VALUE = 200
# Unix seconds of 2000-01-01 and 2100-01-01: anything outside is a unit or clock mistake.
MIN_TS = 946_684_800
MAX_TS = 4_102_444_800

Sample = tuple[int, str, Mapping[str, str], float, float]
# A batch's rows, (series, ts in ms) -> value; the series is its id, or its identity
# (source_id, name, sorted labels) until it is created.
Rows = dict[tuple[int | tuple, int], float]
_NUMBER = (float, int)

# (source_id, name, sorted label items) -> series id, filled only after the series committed.
_series_cache: dict[tuple, int] = {}
SERIES_CACHE_SIZE = 500_000


def _invalid(index: int, problem: str) -> ValidationError:
    return ValidationError(
        _("Sample %(index)d: %(problem)s"),
        code="invalid_sample",
        params={"index": index, "problem": problem},
    )


def _series_problem(source_id: object, name: object, labels: object) -> str | None:
    if type(source_id) is not int or not 0 <= source_id < 2**63:
        return _("the source must be a non-negative integer")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        return _("the metric name must be 1 to 100 of a-z, 0-9, '_' and '.'")
    if not isinstance(labels, Mapping) or len(labels) > MAX_LABELS:
        return _("labels must be a mapping of at most %(count)d entries") % {"count": MAX_LABELS}
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY_RE.fullmatch(key):
            return _("a label name must be 1 to 64 of A-Z, a-z, 0-9 and '_'")
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE:
            return _("a label value must be a string of at most %(count)d characters") % {
                "count": MAX_LABEL_VALUE
            }
    return None


def series_key(*, source_id: int, name: str, labels: Mapping[str, str]) -> str:
    """The stable identity of a series: blake2b-128 of its canonical JSON."""
    canonical = orjson.dumps([source_id, name, dict(labels)], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def _series_resolve(new: dict[tuple, tuple[int, str, Mapping[str, str]]]) -> dict[tuple, int]:
    """Ids of these series, creating the missing ones; two writers creating the same series at
    once meet on the unique key and both read the one row."""
    keys = {
        ident: series_key(source_id=source_id, name=name, labels=labels)
        for ident, (source_id, name, labels) in new.items()
    }
    ids = dict(Series.objects.filter(key__in=keys.values()).values_list("key", "id"))
    missing = [
        Series(source_id=new[ident][0], name=new[ident][1], labels=dict(new[ident][2]), key=key)
        for ident, key in keys.items()
        if key not in ids
    ]
    if missing:
        Series.objects.bulk_create(missing, ignore_conflicts=True, batch_size=1000)
        created = Series.objects.filter(key__in=[s.key for s in missing])
        ids.update(created.values_list("key", "id"))
    return {ident: ids[key] for ident, key in keys.items()}


def samples_write(*, samples: Sequence[Sample]) -> int:
    """Stores samples given as (source_id, name, labels, unix time, value); returns how many
    distinct (series, time) pairs the batch held.

    All or nothing: one bad sample raises ValidationError naming its index and stores none. A
    (series, time) already stored is kept once whatever the number of writes. The samples are
    durable when the enclosing transaction commits, which is on return unless the caller holds
    one of its own.
    """
    rows, new = _samples_parse(samples, _series_cache)
    if not rows:
        return 0
    # The batch is valid: what follows can fail only in the database. No savepoint of its own,
    # so inside a caller's transaction (an agent's report) two round trips per batch are saved;
    # such a failure breaks the caller's transaction, which PostgreSQL does anyway.
    with transaction.atomic(savepoint=False):
        # The ids the cache gave: the new series are still keyed by their identity.
        cached = {series for series, _ts in rows}.difference(new)
        buffer, cached_valid = storage.active_buffer(series_ids=cached)
        if not cached_valid:
            # A restore or a flush took series away under this process: every series of the
            # batch is looked up again, in this transaction.
            _series_cache.clear()
            rows, new = _samples_parse(samples, {})
        if new:
            resolved = _series_resolve(new)
            transaction.on_commit(lambda: _series_cache_add(resolved))
            rows = _rows_resolve(rows, resolved)
        _buffer_insert(buffer, rows)
    return len(rows)


def _samples_parse(
    samples: Sequence[Sample], cache: Mapping[tuple, int]
) -> tuple[Rows, dict[tuple, tuple[int, str, Mapping[str, str]]]]:
    """Validates a batch: its rows (the first value of a (series, time) kept) and the series
    missing from `cache`, by identity."""
    rows: Rows = {}
    new: dict[tuple, tuple[int, str, Mapping[str, str]]] = {}
    # Bound once: this loop runs for every sample stored.
    lookup, keep, isfinite = cache.get, rows.setdefault, math.isfinite
    for index, sample in enumerate(samples):
        try:
            source_id, name, labels, ts, value = sample
            ident = (source_id, name, tuple(sorted(labels.items())) if labels else ())
            sid = lookup(ident)
        except (TypeError, ValueError, AttributeError):
            raise _invalid(index, _("expected (source_id, name, labels, time, value)")) from None
        if type(ts) not in _NUMBER or not MIN_TS <= ts <= MAX_TS:
            raise _invalid(index, _("the time must be unix seconds between 2000 and 2100"))
        if type(value) is not float:
            value = _value_float(index, value)
        if not isfinite(value):
            raise _invalid(index, _("the value must be a finite number"))
        # A cached identity proves the series valid, unless this sample only hashes like it
        # (True like 1, None like {}): that one is checked in full.
        if sid is None or type(source_id) is not int or not (labels or type(labels) is dict):
            problem = _series_problem(source_id, name, labels)
            if problem:
                raise _invalid(index, problem)
            if sid is None:
                new[ident] = (source_id, name, labels)
                sid = ident
        keep((sid, round(ts * 1000)), value)
    return rows, new


def _value_float(index: int, value: object) -> float:
    """An int value as a float; anything else (a bool, a string) or an int beyond the float
    range is refused."""
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            pass
    raise _invalid(index, _("the value must be a finite number"))


def _rows_resolve(rows: Rows, resolved: dict[tuple, int]) -> dict[tuple[int, int], float]:
    """The rows with every series by id, in the batch's order, so the first value still wins."""
    out: dict[tuple[int, int], float] = {}
    for (series, ts_ms), value in rows.items():
        out.setdefault((resolved[series] if type(series) is tuple else series, ts_ms), value)
    return out


def _series_cache_add(resolved: dict[tuple, int]) -> None:
    # Dropped wholesale when full: refilling costs one query per batch for a while.
    if len(_series_cache) > SERIES_CACHE_SIZE:
        _series_cache.clear()
    _series_cache.update(resolved)


def _buffer_insert(table: str, rows: Rows) -> None:
    with connection.cursor() as cursor:
        if storage.is_postgres():
            # COPY's text lines from orjson's [[sid,ts,value],...], twice as fast as formatting
            # each row in Python: only numbers, so the commas and brackets are the separators.
            # orjson writes a float in its shortest exact form, which PostgreSQL reads back
            # exactly.
            data = orjson.dumps([(sid, ts, value) for (sid, ts), value in rows.items()])
            text = data[2:-2].replace(b"],[", b"\n").replace(b",", b"\t") + b"\n"
            with cursor.copy(f"COPY {table} (series_id, ts, value) FROM STDIN") as copy:
                copy.write(text)
        else:
            cursor.executemany(
                f"INSERT INTO {table} (series_id, ts, value) VALUES (%s, %s, %s)",
                [(sid, ts, value) for (sid, ts), value in rows.items()],
            )


def _batches(ids: list[int]) -> list[tuple[int, int]]:
    return [
        (ids[i], ids[min(i + BATCH_SERIES, len(ids)) - 1]) for i in range(0, len(ids), BATCH_SERIES)
    ]


def _column(sql: str, params: Sequence = ()) -> list:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def buffers_compact(*, now: float | None = None) -> int:
    """Freezes the active buffer, packs its samples into hourly chunks (merged with chunks
    already stored) and empties it whole; returns how many buffered rows it moved."""
    now = int(now if now is not None else time.time())
    with transaction.atomic():
        state = storage.state_row(for_update=True)
        if not state.frozen:
            if storage.is_postgres():
                # Waits for the writers inside a transaction; later ones see the other buffer.
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [storage.SWITCH_LOCK])
            state.active = 1 - state.active
            state.frozen = True
            state.frozen_at = now
            state.save()
    frozen = storage.BUFFERS[1 - state.active]
    moved = 0
    for low, high in _batches(_column(f"SELECT DISTINCT series_id FROM {frozen} ORDER BY 1")):
        with transaction.atomic():
            moved += _chunks_merge(frozen, low, high, rolled_until=state.rolled_until)
    with transaction.atomic():
        state = storage.state_row(for_update=True)
        with connection.cursor() as cursor:
            # Emptied whole, never row by row: TRUNCATE, or SQLite's truncate optimisation.
            cursor.execute(
                f"TRUNCATE {frozen}" if storage.is_postgres() else f"DELETE FROM {frozen}"
            )
        state.frozen = False
        state.compacted_until = state.frozen_at
        state.save()
    return moved


def _chunks_merge(table: str, low: int, high: int, *, rolled_until: int) -> int:
    """Merges a series range of the frozen buffer into the chunks; samples of days already
    rolled up (an agent that was offline for days) are added to those days' rollups too."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT series_id, ts, value FROM {table} WHERE series_id >= %s AND series_id <= %s",
            [low, high],
        )
        rows = cursor.fetchall()
        incoming: dict[tuple[int, int], dict[int, float]] = {}
        for sid, ts, value in rows:
            incoming.setdefault((sid, ts // codec.HOUR_MS * 3600), {}).setdefault(ts, value)
        condition, params = storage.ids_condition("hour", {hour for _sid, hour in incoming})
        cursor.execute(
            "SELECT series_id, hour, count, data FROM metrics_chunk "
            f"WHERE series_id >= %s AND series_id <= %s AND {condition}",
            [low, high, *params],
        )
        stored: dict[tuple[int, int], dict[int, float]] = {}
        for sid, hour, count, data in cursor.fetchall():
            if (sid, hour) in incoming:
                stored[(sid, hour)] = dict(codec.chunk_unpack(hour, count, bytes(data)))
        late: dict[tuple[int, int], list[tuple[int, float]]] = {}
        for (sid, hour), points in incoming.items():
            before = stored.get((sid, hour), {})
            if hour < rolled_until:
                day = hour - hour % DAY
                late.setdefault((sid, day), []).extend(
                    (ts, value) for ts, value in points.items() if ts not in before
                )
            # What was stored first stays: a replayed sample changes nothing.
            points.update(before)
        cursor.executemany(
            "INSERT INTO metrics_chunk (series_id, hour, count, data) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (series_id, hour) DO UPDATE SET count = excluded.count, "
            "data = excluded.data",
            [
                (sid, hour, len(points), codec.chunk_pack(hour, sorted(points.items())))
                for (sid, hour), points in incoming.items()
            ],
        )
    if any(late.values()):
        _rollups_add(low, high, {key: points for key, points in late.items() if points})
    return len(rows)


def _rollups_add(low: int, high: int, late: dict[tuple[int, int], list[tuple[int, float]]]) -> None:
    """Adds samples to the rollups of their (series, day), merged bucket by bucket with what is
    there: the day's raw chunks may be gone already, so the rollups are not computed again."""
    condition, params = storage.ids_condition("day", {day for _sid, day in late})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT series_id, resolution, day, data FROM metrics_rollup "
            f"WHERE series_id >= %s AND series_id <= %s AND {condition}",
            [low, high, *params],
        )
        existing = {(sid, resolution, day): bytes(data) for sid, resolution, day, data in cursor}
        rows = []
        for (sid, day), points in late.items():
            for resolution, buckets in _day_buckets(points, day).items():
                data = existing.get((sid, resolution, day))
                if data is not None:
                    for index, count, low_value, avg, high_value in codec.rollup_unpack(data):
                        _bucket_add(buckets, index, count, low_value, avg * count, high_value)
                rows.append((sid, resolution, day, _buckets_pack(buckets)))
        cursor.executemany(
            "INSERT INTO metrics_rollup (series_id, resolution, day, data) "
            "VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (series_id, resolution, day) DO UPDATE SET data = excluded.data",
            rows,
        )


def _bucket_add(
    buckets: dict[int, list[float]], index: int, count: int, low: float, total: float, high: float
) -> None:
    bucket = buckets.get(index)
    if bucket is None:
        buckets[index] = [count, low, total, high]
    else:
        bucket[0] += count
        bucket[1] = min(bucket[1], low)
        bucket[2] += total
        bucket[3] = max(bucket[3], high)


def _day_buckets(points: list[tuple[int, float]], day: int) -> dict[int, dict[int, list[float]]]:
    """Per resolution, bucket index -> [count, min, total, max] of (ts_ms, value) points."""
    by_resolution = {}
    for resolution in (300, 3600):
        buckets: dict[int, list[float]] = {}
        for ts, value in points:  # inline, not _bucket_add: a day of every series goes here
            index = (ts // 1000 - day) // resolution
            bucket = buckets.get(index)
            if bucket is None:
                buckets[index] = [1, value, value, value]
            else:
                bucket[0] += 1
                bucket[1] = min(bucket[1], value)
                bucket[2] += value
                bucket[3] = max(bucket[3], value)
        by_resolution[resolution] = buckets
    return by_resolution


def _buckets_pack(buckets: dict[int, list[float]]) -> bytes:
    return codec.rollup_pack(
        [(i, n, low, total / n, high) for i, (n, low, total, high) in sorted(buckets.items())]
    )


def _day_rollups(points: list[tuple[int, float]], day: int) -> dict[int, bytes]:
    return {
        resolution: _buckets_pack(buckets)
        for resolution, buckets in _day_buckets(points, day).items()
    }


def rollups_compute(*, now: float | None = None) -> int:
    """Rolls every closed, compacted day up into 5-minute and 1-hour min/avg/max/count
    buckets; returns how many days it rolled. Rerunning a day rewrites the same rows."""
    now = int(now if now is not None else time.time())
    state = storage.state_row()
    rolled = 0
    day = state.rolled_until
    while True:
        first = _column("SELECT MIN(hour) FROM metrics_chunk WHERE hour >= %s", [day])[0]
        if first is None:
            break
        day = first - first % DAY
        # Only once every sample of the day (and its grace) has reached the chunks.
        if day + DAY + GRACE_SECONDS > min(state.compacted_until, now):
            break
        ids = _column(
            "SELECT DISTINCT series_id FROM metrics_chunk WHERE hour >= %s AND hour < %s "
            "ORDER BY 1",
            [day, day + DAY],
        )
        for low, high in _batches(ids):
            with transaction.atomic():
                _rollups_write(day, low, high)
        day += DAY
        with transaction.atomic():
            state = storage.state_row(for_update=True)
            state.rolled_until = day
            state.save(update_fields=["rolled_until"])
        rolled += 1
    return rolled


def _rollups_write(day: int, low: int, high: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT series_id, hour, count, data FROM metrics_chunk "
            "WHERE series_id >= %s AND series_id <= %s AND hour >= %s AND hour < %s",
            [low, high, day, day + DAY],
        )
        points: dict[int, list[tuple[int, float]]] = {}
        for sid, hour, count, data in cursor.fetchall():
            points.setdefault(sid, []).extend(codec.chunk_unpack(hour, count, bytes(data)))
        cursor.executemany(
            "INSERT INTO metrics_rollup (series_id, resolution, day, data) "
            "VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (series_id, resolution, day) DO UPDATE SET data = excluded.data",
            [
                (sid, resolution, day, data)
                for sid, series_points in points.items()
                for resolution, data in _day_rollups(sorted(series_points), day).items()
            ],
        )


def retention_apply(*, now: float | None = None) -> dict[str, int]:
    """Drops expired data a whole chunk or rollup row at a time, one period per transaction;
    raw chunks stay until their day is rolled up. Returns the rows dropped per kind."""
    now = int(now if now is not None else time.time())
    raw_cutoff = min(now - RAW_DAYS * DAY, storage.state_row().rolled_until)
    dropped = {"raw": 0, "5m": 0, "1h": 0}
    for hour in _column(
        "SELECT DISTINCT hour FROM metrics_chunk WHERE hour <= %s ORDER BY 1", [raw_cutoff - 3600]
    ):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM metrics_chunk WHERE hour = %s", [hour])
            dropped["raw"] += cursor.rowcount
    for kind, resolution, days in (("5m", 300, FIVE_MINUTE_DAYS), ("1h", 3600, HOUR_DAYS)):
        for day in _column(
            "SELECT DISTINCT day FROM metrics_rollup WHERE resolution = %s AND day <= %s "
            "ORDER BY 1",
            [resolution, now - days * DAY - DAY],
        ):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM metrics_rollup WHERE resolution = %s AND day = %s",
                    [resolution, day],
                )
                dropped[kind] += cursor.rowcount
    return dropped


def store_maintain(*, now: float | None = None) -> dict[str, int]:
    """The periodic work in order: compact, roll up, then expire (which waits for rollups)."""
    moved = buffers_compact(now=now)
    days = rollups_compute(now=now)
    dropped = retention_apply(now=now)
    return {
        "compacted": moved,
        "rolled_days": days,
        **{f"dropped_{kind}": count for kind, count in dropped.items()},
    }
