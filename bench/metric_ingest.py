"""Metric store ingest: samples/s through onestop.metrics.services.samples_write, end to end
(validation, series lookup, buffer write, commit), on SQLite and on PostgreSQL.

Goal (../shared/BENCHMARKS.md): at least 2x Zabbix 6.0 (about 94,000 values/s stored with 1,000
items, 108,000 with 10,000; 0.0125 CPU-seconds per 1,000 values, Zabbix + PostgreSQL), with the
same durability: a batch counts only once its transaction committed (PostgreSQL fsync and
synchronous_commit on). Beside it, in the same run, the floor: the same samples in the same
batches and transactions written raw into a plain (ts, series_id, value) table (COPY on
PostgreSQL, executemany on SQLite). Then the compaction into hourly chunks is timed, the stored
count is checked against the written count, and the bytes per sample are measured.

One writer process with one connection (Zabbix used 4). The series are created and cached by a
first, untimed round; the timed part is the steady state of agents reporting.

Run: .venv/bin/python bench/metric_ingest.py [--seconds 10] [--max-samples 1500000]
     [--batch 3000] [--series 1000,10000] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB = "onestop_bench_metrics"
ZABBIX = {1000: 94_000, 10_000: 108_000}
ZABBIX_CPU_PER_1000 = 0.0125
NAMES = [
    ("cpu.percent", {}),
    ("load.1", {}),
    ("load.5", {}),
    ("load.15", {}),
    ("mem.used_percent", {}),
    ("mem.available_bytes", {}),
    ("swap.used_percent", {}),
    ("uptime.seconds", {}),
    ("proc.count", {}),
    *[
        (name, {"mount": mount})
        for mount in ("/", "/var", "/home")
        for name in ("disk.used_percent", "disk.free_bytes", "disk.inodes_used_percent")
    ],
    *[
        (name, {"nic": nic})
        for nic in ("eth0", "eth1")
        for name in ("net.rx_bps", "net.tx_bps", "net.rx_errors", "net.tx_errors")
    ],
    *[("service.up", {"name": n}) for n in ("sshd", "cron", "nginx", "chronyd")],
]
assert len(NAMES) == 30


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{PG}/postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
    )


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process on this machine, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_backend(args: argparse.Namespace) -> None:
    postgres = args.backend == "postgres"
    data_dir = tempfile.mkdtemp(prefix="onestop-bench-metrics-")
    os.environ.update(
        ONESTOP_DATA_DIR=data_dir,
        SECRET_KEY="bench-secret-key-long-enough-0123456789abcdef",
        ONESTOP_ENCRYPTION_KEY="bKev0GDh2MGAl9SSeLmZWOnhG-FbAn7sTkTec5F0PL4=",
        DJANGO_SETTINGS_MODULE="onestop.config.settings",
    )
    if postgres:
        psql(f"DROP DATABASE IF EXISTS {DB}")
        psql(
            f"CREATE DATABASE {DB} ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' "
            "TEMPLATE template0"
        )
        os.environ["DATABASE_URL"] = f"{PG}/{DB}"
    else:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import Sum

    from onestop.metrics import services
    from onestop.metrics.models import Chunk

    def query(sql: str):
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()

    try:
        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_floor (ts bigint, series_id bigint, value float8)")
        if postgres:
            backend_pid = query("SELECT pg_backend_pid()")[0]
            settings = "synchronous_commit={} fsync={} wal_level={} shared_buffers={}".format(
                query("SHOW synchronous_commit")[0],
                query("SHOW fsync")[0],
                query("SHOW wal_level")[0],
                query("SHOW shared_buffers")[0],
            )
            print(f"bench: metric ingest, {query('SELECT version()')[0].split(' on ')[0]}")
            cpu_note = "writer process + its PostgreSQL backend (from /proc)"
        else:
            backend_pid = None
            settings = "journal_mode={} synchronous={} (project default: WAL, NORMAL)".format(
                query("PRAGMA journal_mode")[0], query("PRAGMA synchronous")[0]
            )
            print(f"bench: metric ingest, SQLite {query('SELECT sqlite_version()')[0]}")
            cpu_note = "writer process (SQLite runs inside it)"
        print(
            f"settings: {settings}; batch={args.batch} samples per call and transaction; "
            f"{args.seconds:.0f} s or {args.max_samples:,} samples per scenario; 1 writer"
        )

        def cpu() -> float:
            own = time.process_time()
            return own + (proc_cpu(backend_pid) if backend_pid else 0.0)

        def disk_bytes(tables: list[str]) -> int:
            if postgres:
                sizes = " + ".join(f"pg_total_relation_size('{table}')" for table in tables)
                return int(query(f"SELECT {sizes}")[0])
            # SQLite keeps freed pages in the file: count the pages of these tables and indexes.
            names = ", ".join(f"'{table}'" for table in tables)
            return int(
                query(
                    f"SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN ({names}) OR "
                    f"name IN (SELECT name FROM sqlite_master WHERE tbl_name IN ({names}))"
                )[0]
            )

        store_tables = ["metrics_series", "metrics_buffer0", "metrics_buffer1", "metrics_chunk"]
        first_source = 1
        for series_count in args.series:
            devices = series_count // len(NAMES)
            sources = range(first_source, first_source + devices)
            first_source += devices
            per_round = devices * len(NAMES)
            # Readings as agents send them (one decimal), so compression is not flattered.
            rng = random.Random(series_count)
            values = [round(rng.uniform(0, 100), 1) for _ in range(100_003)]
            rounds_cap = max(1, args.max_samples // per_round)
            t_start = int(time.time()) // 3600 * 3600 - 2 * 86400

            def round_batches(r: int, sources=sources, t_start=t_start, values=values):
                ts = t_start + 60 * r
                batch = []
                for source in sources:
                    for i, (name, labels) in enumerate(NAMES):
                        batch.append(
                            (source, name, labels, ts, values[(source * 31 + i + r) % len(values)])
                        )
                        if len(batch) == args.batch:
                            yield batch
                            batch = []
                if batch:
                    yield batch

            # Untimed first round: creates the series and warms the cache.
            written = 0
            for batch in round_batches(0):
                written += services.samples_write(samples=batch)
            before_bytes = disk_bytes(store_tables)
            # The floor: the same rows in the same batches, one transaction each, written raw
            # into a plain table right after the store wrote them, so both see the same load.
            series_ids: dict[tuple, int] = {}
            floor_before = disk_bytes(["bench_floor"])

            def floor_write(batch: list[tuple], series_ids=series_ids) -> None:
                with transaction.atomic(), connection.cursor() as cursor:
                    rows = [
                        (
                            int(ts * 1000),
                            series_ids.setdefault((s, n, tuple(labels.items())), len(series_ids)),
                            v,
                        )
                        for s, n, labels, ts, v in batch
                    ]
                    if postgres:
                        with cursor.copy(
                            "COPY bench_floor (ts, series_id, value) FROM STDIN"
                        ) as cp:
                            cp.write("".join(f"{a}\t{b}\t{c!r}\n" for a, b, c in rows))
                    else:
                        cursor.executemany(
                            "INSERT INTO bench_floor (ts, series_id, value) VALUES (%s, %s, %s)",
                            rows,
                        )

            timed = 0
            wall = cpu_used = floor_wall = floor_cpu = 0.0
            r = 1
            while r <= rounds_cap and wall < args.seconds:
                for batch in round_batches(r):
                    c0, w0 = cpu(), time.perf_counter()
                    timed += services.samples_write(samples=batch)
                    wall += time.perf_counter() - w0
                    cpu_used += cpu() - c0
                    c0, w0 = cpu(), time.perf_counter()
                    floor_write(batch)
                    floor_wall += time.perf_counter() - w0
                    floor_cpu += cpu() - c0
                r += 1
            written += timed
            floor_bytes = disk_bytes(["bench_floor"]) - floor_before
            hot_bytes = disk_bytes(store_tables) - before_bytes
            c0, w0 = cpu(), time.perf_counter()
            moved = services.buffers_compact()
            compact_wall = time.perf_counter() - w0
            compact_cpu = cpu() - c0
            stored = Chunk.objects.filter(series__source_id__in=sources).aggregate(n=Sum("count"))[
                "n"
            ]
            compact_bytes = disk_bytes(store_tables) - before_bytes

            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE bench_floor" if postgres else "DELETE FROM bench_floor")

            rate = timed / wall
            floor_rate = timed / floor_wall
            zabbix = ZABBIX.get(series_count, ZABBIX[1000])
            cpu_per_1000 = cpu_used / timed * 1000
            print(
                f"{series_count:,} series ({devices} sources x {len(NAMES)}): "
                f"samples_write {rate:,.0f} samples/s ({timed:,} samples in {wall:.1f} s), "
                f"cpu {cpu_per_1000:.4f} s/1000 samples; "
                f"floor raw {'COPY' if postgres else 'executemany'} {floor_rate:,.0f} samples/s, "
                f"cpu {floor_cpu / timed * 1000:.4f} s/1000; store/floor {rate / floor_rate:.2f}"
            )
            print(
                f"  vs Zabbix {zabbix:,}/s: {rate / zabbix:.2f}x (goal >= 2x); cpu vs Zabbix "
                f"{ZABBIX_CPU_PER_1000:.4f} s/1000: "
                f"{ZABBIX_CPU_PER_1000 / cpu_per_1000:.1f}x less; cpu counted: {cpu_note}"
            )
            print(
                f"  bytes/sample: buffered {hot_bytes / written:.1f}, compacted into chunks "
                f"{compact_bytes / written:.1f}, floor table {floor_bytes / timed:.1f}"
                + ("" if postgres else " (SQLite pages of the tables and indexes, dbstat)")
            )
            print(
                f"  compaction: {moved:,} rows in {compact_wall:.1f} s "
                f"({moved / compact_wall:,.0f} samples/s, cpu {compact_cpu / moved * 1000:.4f} "
                f"s/1000); stored {stored:,} of {written:,} written: "
                + ("nothing lost" if stored == written else "MISMATCH")
            )
            if stored != written:
                raise SystemExit(1)
    finally:
        connection.close()
        if postgres and not args.keep:
            psql(f"DROP DATABASE IF EXISTS {DB}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-samples", type=int, default=1_500_000)
    parser.add_argument("--batch", type=int, default=3000)
    parser.add_argument("--series", default="1000,10000")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    args.series = [int(n) for n in args.series.split(",")]
    if args.backend != "both":
        run_backend(args)
        return
    # Django is set up once per process, so each database runs in a child of its own.
    for backend in ("sqlite", "postgres"):
        argv = [a for a in sys.argv[1:] if not a.startswith("--backend")]
        subprocess.run([sys.executable, __file__, *argv, "--backend", backend], check=True)


if __name__ == "__main__":
    sys.exit(main())
