"""The metric store on its own: writes, chunks, rollups, retention, queries, bad input."""

from __future__ import annotations

import math
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from onestop.metrics import codec, services, storage
from onestop.metrics.models import Chunk, Rollup, Series
from onestop.metrics.selectors import MAX_POINTS, latest_values, series_list, series_query

pytestmark = pytest.mark.django_db
HOUR = 3600
DAY = 86_400


def _recent_hour(hours_ago: int = 3) -> int:
    now = int(time.time())
    return now - now % HOUR - hours_ago * HOUR


def _buffered() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT COUNT(*) FROM metrics_buffer0) + (SELECT COUNT(*) FROM metrics_buffer1)"
        )
        return cursor.fetchone()[0]


def _values(source_id=1, name="cpu.percent", **kwargs) -> list[tuple[float, float]]:
    (series,) = series_query(source_id=source_id, name=name, **kwargs)
    return [(p.ts, p.avg) for p in series.points]


def test_round_trip_before_and_after_compaction():
    base = _recent_hour()
    samples = [(1, "cpu.percent", {}, base + 60 * i + 0.5, float(i) / 3) for i in range(120)]
    samples.append((1, "disk.used_percent", {"mount": "/"}, base, 61.2))
    assert services.samples_write(samples=samples) == 121
    expected = [(ts, value) for _s, _n, _l, ts, value in samples[:120]]
    window = {"start": base, "end": base + 2 * HOUR}
    assert _values(**window) == expected

    assert services.buffers_compact() == 121
    assert _buffered() == 0
    assert Chunk.objects.count() == 3  # two hours of cpu, one of disk
    assert _values(**window) == expected
    assert [(s.name, s.labels) for s in series_list(source_id=1)] == [
        ("cpu.percent", {}),
        ("disk.used_percent", {"mount": "/"}),
    ]
    (disk,) = series_query(source_id=1, name="disk.used_percent", labels={"mount": "/"}, **window)
    assert disk.points[0].avg == 61.2
    assert (
        series_query(source_id=1, name="disk.used_percent", labels={"mount": "/x"}, **window) == []
    )


def test_same_sample_written_twice_is_stored_once():
    base = _recent_hour()
    samples = [(7, "load.1", {}, base + 60 * i, float(i)) for i in range(10)]
    services.samples_write(samples=samples)
    services.samples_write(samples=samples)  # a replayed report, still buffered
    assert len(_values(source_id=7, name="load.1", start=base, end=base + HOUR)) == 10
    services.buffers_compact()
    services.samples_write(samples=samples + samples)  # replayed again after compaction
    assert len(_values(source_id=7, name="load.1", start=base, end=base + HOUR)) == 10
    services.buffers_compact()
    assert list(Chunk.objects.values_list("count", flat=True)) == [10]
    assert Series.objects.count() == 1


def test_chunks_split_exactly_on_hour_edges():
    base = _recent_hour()
    edge = [base + HOUR - 0.001, base + HOUR, base + 2 * HOUR - 0.001, base + 2 * HOUR]
    services.samples_write(samples=[(2, "mem.used_percent", {}, ts, ts - base) for ts in edge])
    services.buffers_compact()
    chunks = {c.hour: c for c in Chunk.objects.all()}
    assert sorted(chunks) == [base, base + HOUR, base + 2 * HOUR]
    assert [chunks[h].count for h in sorted(chunks)] == [1, 2, 1]
    first = chunks[base]
    assert codec.chunk_unpack(first.hour, first.count, bytes(first.data)) == [
        ((base + HOUR) * 1000 - 1, pytest.approx(HOUR - 0.001))
    ]
    got = _values(source_id=2, name="mem.used_percent", start=base, end=base + 3 * HOUR)
    assert [ts for ts, _v in got] == pytest.approx(edge)
    # The range's ends are inclusive, to the millisecond.
    inner = _values(source_id=2, name="mem.used_percent", start=base + HOUR, end=edge[2])
    assert [ts for ts, _v in inner] == pytest.approx(edge[1:3])


def _day_of_data(day: int, source_id: int = 3) -> list[tuple]:
    """One sample a minute; values 0..9 repeating, so each 5-minute bucket has a known shape."""
    return [
        (source_id, "net.rx_bps", {"nic": "eth0"}, day + 60 * i, float(i % 10)) for i in range(1440)
    ]


def test_rollups_of_a_closed_day_are_right_and_idempotent():
    now = time.time()
    day = int(now // DAY * DAY) - 3 * DAY
    services.samples_write(samples=_day_of_data(day))
    # Before compaction nothing is rolled: the day's samples are not all in chunks yet.
    assert services.rollups_compute(now=now) == 0
    services.buffers_compact(now=now)
    assert services.rollups_compute(now=now) == 1
    assert services.rollups_compute(now=now) == 0
    rows = {r.resolution: codec.rollup_unpack(bytes(r.data)) for r in Rollup.objects.all()}
    five = rows[300]
    assert len(five) == 288
    # Bucket 0 holds minutes 0-4 (values 0..4), bucket 1 minutes 5-9 (values 5..9).
    assert five[0] == (0, 5, 0.0, 2.0, 4.0)
    assert five[1] == (1, 5, 5.0, 7.0, 9.0)
    hourly = rows[3600]
    assert len(hourly) == 24
    assert hourly[0] == (0, 60, 0.0, 4.5, 9.0)

    before = sorted((r.series_id, r.resolution, r.day, bytes(r.data)) for r in Rollup.objects.all())
    state = storage.state_row()
    state.rolled_until = 0
    state.save()
    assert services.rollups_compute(now=now) == 1
    after = sorted((r.series_id, r.resolution, r.day, bytes(r.data)) for r in Rollup.objects.all())
    assert after == before

    (series,) = series_query(source_id=3, name="net.rx_bps", start=day, end=day + DAY - 1, step=300)
    assert series.resolution == 300 and series.step == 300
    assert series.points[1] == (day + 300, 5.0, 7.0, 9.0, 5)


def _rollups(day: int) -> dict[int, dict[int, tuple]]:
    return {
        row.resolution: {bucket[0]: bucket[1:] for bucket in codec.rollup_unpack(bytes(row.data))}
        for row in Rollup.objects.filter(day=day)
    }


def test_samples_of_a_day_already_rolled_up_are_added_to_its_rollups_once():
    now = time.time()
    day = int(now // DAY * DAY) - 3 * DAY
    # The day's first half, rolled up; then the agent's buffered second half arrives, with a
    # replay of a sample already stored (which must not count twice).
    first_half = _day_of_data(day)[:720]
    services.samples_write(samples=first_half)
    services.store_maintain(now=now)
    assert storage.state_row().rolled_until > day
    assert set(_rollups(day)[3600]) == set(range(12))
    services.samples_write(samples=[*_day_of_data(day)[720:], first_half[-1]])
    services.buffers_compact(now=now)

    late = _rollups(day)
    assert len(late[300]) == 288 and len(late[3600]) == 24
    assert late[300][1] == (5, 5.0, 7.0, 9.0)
    assert late[3600][11] == late[3600][12] == (60, 0.0, 4.5, 9.0)
    # The same as rolling the whole day up from its chunks.
    state = storage.state_row()
    state.rolled_until = 0
    state.save()
    services.rollups_compute(now=now)
    assert _rollups(day) == late


def test_late_samples_are_merged_into_rollups_whose_raw_chunks_are_gone():
    now = time.time()
    day = int(now // DAY * DAY) - 10 * DAY
    services.samples_write(samples=_day_of_data(day)[:60])  # the first hour: values 0..9
    services.store_maintain(now=now)
    assert not Chunk.objects.filter(hour__lt=day + DAY).exists()  # past the raw retention
    services.samples_write(samples=[(3, "net.rx_bps", {"nic": "eth0"}, day + 30, 20.0)])
    services.buffers_compact(now=now)
    assert _rollups(day)[3600][0] == (61, 0.0, pytest.approx((270 + 20) / 61), 20.0)
    assert _rollups(day)[300][0] == (6, 0.0, pytest.approx(30 / 6), 20.0)


def test_query_falls_back_to_raw_for_days_not_rolled_up_yet():
    now = time.time()
    day = int(now // DAY * DAY) - 2 * DAY
    services.samples_write(samples=_day_of_data(day))
    (series,) = series_query(source_id=3, name="net.rx_bps", start=day, end=day + DAY - 1, step=300)
    assert series.resolution == 300
    assert len(series.points) == 288
    assert series.points[0] == (day, 0.0, 2.0, 4.0, 5)


def test_retention_drops_whole_chunks_only_after_rollup():
    now = time.time()
    old_day = int(now // DAY * DAY) - 9 * DAY
    services.samples_write(samples=_day_of_data(old_day))
    services.samples_write(samples=[(3, "net.rx_bps", {"nic": "eth0"}, now - 60, 1.0)])
    services.buffers_compact(now=now)
    state = storage.state_row()
    assert Chunk.objects.filter(hour__lt=old_day + DAY).count() == 24
    # Not rolled up yet: the raw chunks must stay, expired or not.
    state.rolled_until = 0
    state.save()
    assert services.retention_apply(now=now)["raw"] == 0

    result = services.store_maintain(now=now)
    assert result["rolled_days"] >= 1
    assert result["dropped_raw"] == 24
    assert not Chunk.objects.filter(hour__lt=old_day + DAY).exists()
    assert Chunk.objects.count() == 1  # the recent hour stays
    assert Rollup.objects.filter(day=old_day).count() == 2

    # 5-minute rollups go after 90 days, hourly ones after two years; the recent chunk stays
    # however late it gets, as its day is not rolled up.
    later = old_day + 91 * DAY
    assert services.retention_apply(now=later) == {"raw": 0, "5m": 1, "1h": 0}
    assert list(Rollup.objects.values_list("resolution", flat=True)) == [3600]
    assert services.retention_apply(now=old_day + 731 * DAY)["1h"] == 1


def test_query_picks_resolution_and_caps_points():
    now = time.time()
    start = int(now // HOUR * HOUR) - 6 * HOUR
    samples = [(4, "cpu.percent", {}, start + 10 * i, float(i % 100)) for i in range(6 * 360)]
    services.samples_write(samples=samples)
    (raw,) = series_query(source_id=4, name="cpu.percent", start=start, end=start + 6 * HOUR)
    assert raw.resolution == 0
    assert raw.step == 30  # 2,160 samples do not fit in 1,000 points
    assert len(raw.points) == 720 and sum(p.count for p in raw.points) == 2160
    assert raw.points[0] == (start, 0.0, 1.0, 2.0, 3)

    (short,) = series_query(source_id=4, name="cpu.percent", start=start, end=start + HOUR)
    assert short.step == 0 and len(short.points) == 361  # raw as stored

    month = series_query(source_id=4, name="cpu.percent", start=now - 30 * DAY, end=now)[0]
    assert (month.resolution, month.step) == (300, 3600)
    assert 1 <= len(month.points) <= 7
    assert sum(p.count for p in month.points) == 2160

    (year,) = series_query(source_id=4, name="cpu.percent", start=now - 365 * DAY, end=now)
    assert year.resolution == 3600 and len(year.points) <= MAX_POINTS

    (stepped,) = series_query(
        source_id=4, name="cpu.percent", start=start, end=start + HOUR, step=60
    )
    assert (stepped.resolution, stepped.step, len(stepped.points)) == (0, 60, 61)

    with pytest.raises(ValidationError):
        series_query(source_id=4, name="cpu.percent", start=now, end=now - 1)
    with pytest.raises(ValidationError):
        series_query(source_id=4, name="cpu.percent", start=now - 1, end=now, step=0)


@pytest.fixture
def series_cache():
    """The writers' series cache, filled by the commits a test runs, emptied afterwards (the
    test's transaction is rolled back, so its ids name nothing in the next test)."""
    services._series_cache.clear()
    yield services._series_cache
    services._series_cache.clear()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ((1, "cpu.percent", {}, 1764446400.0, math.nan), "finite"),
        ((1, "cpu.percent", {}, 1764446400.0, math.inf), "finite"),
        ((1, "cpu.percent", {}, 1764446400.0, True), "finite"),
        ((1, "cpu.percent", {}, 1764446400.0, "12"), "finite"),
        ((1, "cpu.percent", {}, math.nan, 1.0), "unix seconds"),
        ((1, "cpu.percent", {}, 1764446400000.0, 1.0), "unix seconds"),
        ((1, "CPU percent", {}, 1764446400.0, 1.0), "metric name"),
        ((1, "", {}, 1764446400.0, 1.0), "metric name"),
        ((1, "x" * 101, {}, 1764446400.0, 1.0), "metric name"),
        ((-1, "cpu.percent", {}, 1764446400.0, 1.0), "source"),
        (("1", "cpu.percent", {}, 1764446400.0, 1.0), "source"),
        ((1, "cpu.percent", {"mount": "x" * 201}, 1764446400.0, 1.0), "label value"),
        ((1, "cpu.percent", {"mount": 3}, 1764446400.0, 1.0), "label value"),
        ((1, "cpu.percent", {"bad key": "x"}, 1764446400.0, 1.0), "label name"),
        ((1, "cpu.percent", {f"k{i}": "v" for i in range(17)}, 1764446400.0, 1.0), "at most"),
        ((1, "cpu.percent", ["mount"], 1764446400.0, 1.0), "expected"),
        ((1, "cpu.percent", {}, 1764446400.0), "expected"),
        # Equal as a dict key to the cached series (1, "cpu.percent", {}), yet not valid.
        ((True, "cpu.percent", {}, 1764446400.0, 1.0), "source"),
        ((1.0, "cpu.percent", {}, 1764446400.0, 1.0), "source"),
        ((1, "cpu.percent", None, 1764446400.0, 1.0), "mapping"),
        ((1, "cpu.percent", {}, 1764446400.0, 10**400), "finite"),
    ],
)
@pytest.mark.parametrize("cached", [False, True], ids=["new series", "cached series"])
def test_bad_input_is_rejected_and_nothing_is_stored(
    bad, message, cached, series_cache, django_capture_on_commit_callbacks
):
    good = (1, "cpu.percent", {}, 1764446340.0, 5.0)
    if cached:
        with django_capture_on_commit_callbacks(execute=True):
            services.samples_write(samples=[good])
        assert series_cache
    with translation.override("en"), pytest.raises(ValidationError) as raised:
        services.samples_write(samples=[good, bad])
    text = raised.value.messages[0]
    assert text.startswith("Sample 1:") and message in text
    assert Series.objects.count() == _buffered() == (1 if cached else 0)


def _stored_series_ids() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT series_id FROM metrics_buffer0 UNION SELECT series_id FROM metrics_buffer1"
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize("kept", ["a run of ids", "scattered ids"])
def test_a_stale_series_cache_never_points_a_sample_at_nothing(
    kept, series_cache, django_capture_on_commit_callbacks
):
    base = _recent_hour()
    names = [f"disk.used_percent.{i}" for i in range(12)]
    with django_capture_on_commit_callbacks(execute=True):
        services.samples_write(samples=[(5, name, {}, base, 1.0) for name in names])
    assert len(series_cache) == 12
    # A batch of consecutive ids, or of every other one (checked one by one on PostgreSQL).
    batch = names if kept == "a run of ids" else names[::2]
    # A restore from before these series (or a flush) took some of them away, not all.
    lost = Series.objects.filter(name=batch[3])
    lost_id = lost.get().pk
    lost.delete()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM metrics_buffer0")
        cursor.execute("DELETE FROM metrics_buffer1")

    samples = [(5, name, {}, base + 60, 2.0) for name in batch]
    with django_capture_on_commit_callbacks(execute=True):
        assert services.samples_write(samples=samples) == len(batch)
    assert _stored_series_ids() <= set(Series.objects.values_list("pk", flat=True))
    assert lost_id not in series_cache.values()
    assert Series.objects.filter(name__in=batch).count() == len(batch)
    (points,) = series_query(source_id=5, name=batch[3], start=base, end=base + HOUR)
    assert [(p.ts, p.avg) for p in points.points] == [(base + 60, 2.0)]


@pytest.mark.parametrize(
    "ids",
    [
        [],
        [1],
        list(range(1, 13)),
        [*range(1, 5), *range(6, 21)],
        [1, 3, 5, 7, 9, 11],
        [1, 3, 7, 9, 11, 13],
    ],
    ids=["none", "one", "a run over it", "runs around it", "scattered over it", "scattered"],
)
def test_the_active_buffer_tells_whether_every_id_still_names_a_series(ids):
    created = Series.objects.bulk_create(
        Series(source_id=9, name=f"m{i}", key=f"{i:032x}") for i in range(1, 31)
    )
    first = created[0].pk
    Series.objects.filter(pk=first + 4).delete()  # the fifth one is gone
    real = [first - 1 + i for i in ids]
    complete = 5 not in ids
    assert storage.active_buffer(series_ids=real) == ("metrics_buffer0", complete)
    # In another order and with repeats: the same answer.
    assert storage.active_buffer(series_ids=real[::-1] + real)[1] is complete
    assert storage.active_buffer(series_ids=[*real, first + 99])[1] is False


def test_a_new_series_and_a_cached_one_keep_the_first_value_of_a_batch(
    series_cache, django_capture_on_commit_callbacks
):
    base = _recent_hour()
    with django_capture_on_commit_callbacks(execute=True):
        services.samples_write(samples=[(6, "load.1", {}, base, 0.5)])
    batch = [
        (6, "load.1", {}, base + 60, 1.0),
        (6, "load.5", {}, base + 60, 2.0),
        (6, "load.1", {}, base + 60, 9.0),
        (6, "load.5", {}, base + 60, 8.0),
        (6, "load.5", {}, base + 120, 3),  # an int is stored as a float
    ]
    assert services.samples_write(samples=batch) == 3
    window = {"source_id": 6, "start": base, "end": base + HOUR}
    assert _values(name="load.1", **window) == [(base, 0.5), (base + 60, 1.0)]
    assert _values(name="load.5", **window) == [(base + 60, 2.0), (base + 120, 3.0)]


def test_latest_values_take_a_constant_number_of_queries():
    base = _recent_hour()

    def load(sources: range) -> None:
        services.samples_write(
            samples=[
                (source, name, {"mount": "/"} if name == "disk.used_percent" else {}, ts, ts - base)
                for source in sources
                for name in ("cpu.percent", "mem.used_percent", "disk.used_percent")
                for ts in (base + 30, base + 90)
            ]
        )

    load(range(1, 4))
    with CaptureQueriesContext(connection) as few:
        small = latest_values(source_ids=range(1, 4), names=["cpu.percent", "disk.used_percent"])
    assert len(small) == 6
    load(range(4, 61))
    services.buffers_compact()
    # Source 60 has a newer sample in the buffer than in its chunk, source 59 an older one.
    services.samples_write(samples=[(60, "cpu.percent", {}, base + 150, 99.0)])
    services.samples_write(samples=[(59, "cpu.percent", {}, base + 10, -1.0)])
    with CaptureQueriesContext(connection) as many:
        values = latest_values(
            source_ids=range(1, 61), names=["cpu.percent", "mem.used_percent", "disk.used_percent"]
        )
    assert len(many) == len(few) == 3
    assert len(values) == 180
    by_key = {(v.source_id, v.name): v for v in values}
    assert (by_key[60, "cpu.percent"].ts, by_key[60, "cpu.percent"].value) == (base + 150, 99.0)
    assert (by_key[59, "cpu.percent"].ts, by_key[59, "cpu.percent"].value) == (base + 90, 90.0)
    assert by_key[1, "disk.used_percent"].labels == {"mount": "/"}
    assert latest_values(source_ids=[999], names=["cpu.percent"]) == []
