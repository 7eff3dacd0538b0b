"""Low-level access to the buffers and chunks, shared by services and selectors.

Everything that depends on the database vendor lives here: SQLite writes take the database's
one write lock (immediate transactions), so they need nothing more; PostgreSQL writers hold a
shared advisory lock that the compaction takes exclusively for the instant it switches buffers.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from django.db import connection

from onestop.metrics import codec
from onestop.metrics.models import StoreState

BUFFERS = ("metrics_buffer0", "metrics_buffer1")
# Any constant the rest of OneStop does not use as an advisory lock key ("metr").
SWITCH_LOCK = 0x6D657472


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def ids_condition(column: str, ids: Iterable[int]) -> tuple[str, list]:
    """`column` is one of `ids`, as one bound parameter however many ids there are."""
    ids = list(ids)
    if is_postgres():
        return f"{column} = ANY(%s)", [ids]
    return f"{column} IN (SELECT value FROM json_each(%s))", [orjson.dumps(ids).decode()]


def state_row(*, for_update: bool = False) -> StoreState:
    """The bookkeeping row, created on first use."""
    StoreState.objects.get_or_create(pk=1)
    rows = StoreState.objects.filter(pk=1)
    return (rows.select_for_update() if for_update else rows).get()


def active_buffer(*, series_ids: Iterable[int] = ()) -> tuple[str, bool]:
    """The buffer the current write transaction must use (call inside that transaction), and
    whether every one of `series_ids` still names a series, read in the same statement.

    Writers cache series ids in memory; a restore or a test flush empties the series table under
    a running process, and a sample must never point at nothing.
    """
    ids = sorted(set(series_ids))
    with connection.cursor() as cursor:
        if is_postgres():
            # A statement of its own: its snapshot must be taken after the lock is granted.
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [SWITCH_LOCK])
            count, params = _series_count_pg(ids)
        else:
            condition, params = ids_condition("id", ids)
            count = f"SELECT COUNT(*) FROM metrics_series WHERE {condition}"
        cursor.execute(f"SELECT active, ({count}) FROM metrics_storestate WHERE id = 1", params)
        row = cursor.fetchone()
    if row is None:  # the bookkeeping row is made on first use
        state_row()
        return active_buffer(series_ids=ids)
    return BUFFERS[row[0]], row[1] == len(ids)


def _series_count_pg(ids: list[int]) -> tuple[str, list]:
    """SQL counting how many of these sorted, distinct ids are series.

    The ids of a batch mostly come in runs (a device's series are created together): a run
    costs one short index range scan where an id costs one index descent. The ids travel as
    one string: psycopg's client-side binding would format a list element by element in
    Python, which costs more than the query."""
    firsts: list[int] = []
    lasts: list[int] = []
    for sid in ids:
        if lasts and sid == lasts[-1] + 1:
            lasts[-1] = sid
        else:
            firsts.append(sid)
            lasts.append(sid)
    if len(firsts) * 4 > len(ids):  # mostly scattered ids: one descent each is cheaper
        return (
            "SELECT COUNT(*) FROM metrics_series WHERE id = ANY(string_to_array(%s, ',')::int8[])",
            [",".join(map(str, ids))],
        )
    return (
        "SELECT COALESCE(SUM((SELECT COUNT(*) FROM metrics_series "
        "WHERE id BETWEEN run.first AND run.last)), 0) FROM unnest("
        "string_to_array(%s, ',')::int8[], string_to_array(%s, ',')::int8[]) AS run(first, last)",
        [",".join(map(str, firsts)), ",".join(map(str, lasts))],
    )


def raw_points(
    series_ids: Iterable[int], start_ms: int, end_ms: int
) -> dict[int, list[tuple[int, float]]]:
    """The stored samples of these series with start_ms <= ts <= end_ms, each (ts, value) once,
    in time order; from the buffers and the chunks in one pass, not one query per series."""
    series_ids = list(series_ids)
    found: dict[int, dict[int, float]] = {sid: {} for sid in series_ids}
    if not series_ids:
        return {}
    condition, params = ids_condition("series_id", series_ids)
    with connection.cursor() as cursor:
        # Buffers first: a compaction that commits in between has already written the chunks,
        # so a sample is read twice (and kept once), never missed.
        cursor.execute(
            " UNION ALL ".join(
                f"SELECT series_id, ts, value FROM {table} WHERE {condition} "
                "AND ts >= %s AND ts <= %s"
                for table in BUFFERS
            ),
            [*params, start_ms, end_ms] * len(BUFFERS),
        )
        buffered = cursor.fetchall()
        cursor.execute(
            f"SELECT series_id, hour, count, data FROM metrics_chunk WHERE {condition} "
            "AND hour >= %s AND hour <= %s",
            [*params, start_ms // codec.HOUR_MS * 3600, end_ms // 1000],
        )
        for sid, hour, count, data in cursor.fetchall():
            points = found[sid]
            for ts, value in codec.chunk_unpack(hour, count, bytes(data)):
                if start_ms <= ts <= end_ms:
                    points[ts] = value
    for sid, ts, value in buffered:
        found[sid].setdefault(ts, value)
    return {sid: sorted(points.items()) for sid, points in found.items()}
