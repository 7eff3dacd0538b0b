"""Metric store ingest: samples/s through onestop.metrics.services.samples_write, end to end
(validation, series lookup, buffer write, commit), on SQLite and on PostgreSQL.

Goal (../shared/BENCHMARKS.md): at least 2x Zabbix 6.0 (about 94,000 values/s stored with 1,000
items, 108,000 with 10,000, with 4 connections; 0.0125 CPU-seconds per 1,000 values, Zabbix +
PostgreSQL), with the same durability: a batch counts only once its transaction committed
(PostgreSQL fsync and synchronous_commit on).

Each scenario (a series count and a writer count) runs N writer processes, each with its own
database connection and its own share of the series (the sources are dealt out between the
writers, as agents report their own device), for the same duration. A first, untimed round
creates the series and fills each writer's series cache; the timed part is the steady state of
agents reporting. Then the floor: the same writers write the same samples in the same batches
and transactions raw into a plain (ts, series_id, value) table (COPY on PostgreSQL, executemany
on SQLite). Then the compaction into hourly chunks is timed, the stored count is checked against
the written count, and the bytes per sample are measured.

CPU is read from /proc: each writer's own, its PostgreSQL backend's, and PostgreSQL's shared
processes (WAL writer, checkpointer, background writer, autovacuum workers), polled every 0.2 s.
The whole machine's busy time is read from /proc/stat too: what is left after the bench's
processes is other work on the machine, which slows the run and is printed beside it.

Run: .venv/bin/python bench/metric_ingest.py [--seconds 10] [--max-samples 3000000]
     [--batch 3000] [--series 1000,10000] [--writers 1,4] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import multiprocessing.synchronize
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB = "onestop_bench_metrics"
ZABBIX = {1000: 94_000, 10_000: 108_000}
ZABBIX_CPU_PER_1000 = 0.0125
TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
# Share of the machine used by other processes during a phase above which the run is flagged.
OTHERS_NOTICEABLE = 5
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
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy since boot (all cores), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / TICK


def load_line(when: str) -> str:
    # The bench's own previous scenario is in these figures too: other work is told apart by
    # the CPU the machine spent outside the bench, printed with each phase.
    one, five, fifteen = os.getloadavg()
    return f"  load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} ({CORES} cores)"


class SharedCpu(threading.Thread):
    """Polls the CPU of PostgreSQL's shared processes (and autovacuum workers of the bench
    database); one that ended keeps what it had when last seen."""

    ROLES = ("walwriter", "checkpointer", "background writer", "autovacuum worker")

    def __init__(self, db_name: str, enabled: bool) -> None:
        """Starts polling at once (not at all for SQLite, which has no such processes)."""
        super().__init__(daemon=True)
        self.db_name = db_name
        self.seen: dict[int, list[float]] = {}  # pid -> [cpu at first sight, cpu last seen]
        self.first = True
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.enabled = enabled
        if enabled:
            self.poll()
            self.start()

    def poll(self) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                cpu = proc_cpu(pid)
            except (OSError, IndexError):
                continue
            if not line.startswith("postgres: ") or not any(r in line for r in self.ROLES):
                continue
            if "autovacuum worker" in line and self.db_name not in line:
                continue
            with self.lock:
                known = self.seen.setdefault(pid, [cpu if self.first else 0.0, cpu])
                known[1] = cpu
        self.first = False

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            self.poll()

    def total(self) -> float:
        if not self.enabled:
            return 0.0
        self.stopped.set()
        self.join()
        self.poll()
        with self.lock:
            return sum(last - first for first, last in self.seen.values())


@dataclass
class Phase:
    """What the writers of one phase did, summed."""

    samples: int = 0
    start: float = float("inf")
    end: float = 0.0
    own_cpu: float = 0.0
    backend_cpu: float = 0.0
    shared_cpu: float = 0.0
    machine_cpu: float = 0.0

    @property
    def wall(self) -> float:
        return self.end - self.start

    @property
    def rate(self) -> float:
        return self.samples / self.wall

    def cpu_per_1000(self, with_shared: bool = False) -> float:
        cpu = self.own_cpu + self.backend_cpu + (self.shared_cpu if with_shared else 0.0)
        return cpu / self.samples * 1000

    def add(self, samples: int, start: float, end: float, own: float, backend: float) -> None:
        self.samples += samples
        self.start = min(self.start, start)
        self.end = max(self.end, end)
        self.own_cpu += own
        self.backend_cpu += backend

    def others(self) -> float:
        """CPU seconds the machine spent on anything but the bench during the phase."""
        return max(0.0, self.machine_cpu - self.own_cpu - self.backend_cpu - self.shared_cpu)


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

    def backend_pid() -> int | None:
        return query("SELECT pg_backend_pid()")[0] if postgres else None

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

    def floor_write(batch: list[tuple], series_ids: dict[tuple, int]) -> None:
        """The batch written raw, in a transaction of its own, as the store would."""
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
                with cursor.copy("COPY bench_floor (ts, series_id, value) FROM STDIN") as cp:
                    cp.write("".join(f"{a}\t{b}\t{c!r}\n" for a, b, c in rows))
            else:
                cursor.executemany(
                    "INSERT INTO bench_floor (ts, series_id, value) VALUES (%s, %s, %s)", rows
                )

    def writer(
        sources: list[int],
        t_start: int,
        values: list[float],
        cap: int,
        *,
        barrier: multiprocessing.synchronize.Barrier,
        results: multiprocessing.Queue,
    ) -> None:
        """One writer process: its own connection and series; store phase, then floor phase."""

        def round_batches(r: int) -> Iterator[list[tuple]]:
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

        def timed(
            write: Callable[[list[tuple]], int], rounds: list[list[list[tuple]]], limit: float
        ) -> tuple:
            pid = backend_pid()
            written = done = 0
            barrier.wait()
            backend0 = proc_cpu(pid) if pid else 0.0
            cpu0, start = time.process_time(), time.perf_counter()
            for batches in rounds:
                for batch in batches:
                    written += write(batch)
                done += 1
                if time.perf_counter() - start >= limit:
                    break
            end = time.perf_counter()
            own = time.process_time() - cpu0
            backend = (proc_cpu(pid) if pid else 0.0) - backend0
            return done, (written, start, end, own, backend)

        try:
            first = sum(services.samples_write(samples=batch) for batch in round_batches(0))
            # Made before the clock starts, so that the timed part is the writes alone.
            count = max(1, cap // (len(sources) * len(NAMES)))
            rounds = [list(round_batches(r)) for r in range(1, count + 1)]
            done, store = timed(
                lambda batch: services.samples_write(samples=batch), rounds, args.seconds
            )
            series_ids: dict[tuple, int] = {}

            def floor(batch: list[tuple]) -> int:
                floor_write(batch, series_ids)
                return len(batch)

            # The floor writes what the store phase wrote, whatever time that takes.
            _done, floor_phase = timed(floor, rounds[:done], math.inf)
        except BaseException:
            barrier.abort()  # the others and the bench stop waiting for this writer
            raise
        connection.close()
        results.put((first, store, floor_phase))

    def scenario(series_count: int, writers: int, first_source: int) -> bool:
        devices = series_count // len(NAMES)
        sources = list(range(first_source, first_source + devices))
        # Readings as agents send them (one decimal), so compression is not flattered.
        rng = random.Random(series_count)
        values = [round(rng.uniform(0, 100), 1) for _ in range(100_003)]
        t_start = int(time.time()) // 3600 * 3600 - 2 * 86400
        print(load_line("before"))
        store_tables = ["metrics_series", "metrics_buffer0", "metrics_buffer1", "metrics_chunk"]
        before_bytes = disk_bytes(store_tables)
        floor_before = disk_bytes(["bench_floor"])
        # Each writer opens a connection of its own: none may be inherited across the fork.
        connection.close()
        context = multiprocessing.get_context("fork")
        # A writer that fails breaks the barrier instead of leaving the others waiting.
        barrier = context.Barrier(writers + 1, timeout=600)
        results = context.Queue()
        processes = [
            context.Process(
                target=writer,
                args=(sources[k::writers], t_start, values, args.max_samples // writers),
                kwargs={"barrier": barrier, "results": results},
            )
            for k in range(writers)
        ]
        for process in processes:
            process.start()
        store, floor = Phase(), Phase()
        barrier.wait()  # the store phase starts
        machine0, shared = machine_busy(), SharedCpu(DB, postgres)
        barrier.wait()  # every writer has finished the store phase: the floor phase starts
        machine1 = machine_busy()
        store.machine_cpu, store.shared_cpu = machine1 - machine0, shared.total()
        shared = SharedCpu(DB, postgres)
        outcomes = [results.get(timeout=600) for _process in processes]
        floor.machine_cpu, floor.shared_cpu = machine_busy() - machine1, shared.total()
        for process in processes:
            process.join()
        written = 0
        for first, store_part, floor_part in outcomes:
            written += first + store_part[0]
            store.add(*store_part)
            floor.add(*floor_part)
        hot_bytes = disk_bytes(store_tables) - before_bytes
        floor_bytes = disk_bytes(["bench_floor"]) - floor_before
        c0, w0 = time.process_time(), time.perf_counter()
        pid = backend_pid()
        b0 = proc_cpu(pid) if pid else 0.0
        moved = services.buffers_compact()
        compact_wall = time.perf_counter() - w0
        compact_cpu = time.process_time() - c0 + ((proc_cpu(pid) - b0) if pid else 0.0)
        stored = Chunk.objects.filter(series__source_id__in=sources).aggregate(n=Sum("count"))["n"]
        compact_bytes = disk_bytes(store_tables) - before_bytes
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE bench_floor" if postgres else "DELETE FROM bench_floor")

        zabbix = ZABBIX.get(series_count, ZABBIX[1000])
        raw = "COPY" if postgres else "executemany"
        print(
            f"{series_count:,} series ({devices} sources x {len(NAMES)}), {writers} writer(s): "
            f"samples_write {store.rate:,.0f} samples/s ({store.samples:,} samples in "
            f"{store.wall:.1f} s); floor raw {raw} {floor.rate:,.0f} samples/s; "
            f"store/floor {store.rate / floor.rate:.2f}"
        )
        print(
            f"  vs Zabbix {zabbix:,}/s: {store.rate / zabbix:.2f}x (goal >= 2x, "
            f"{2 * zabbix:,}/s): " + ("MET" if store.rate >= 2 * zabbix else "not met")
        )
        for label, phase in (("store", store), ("floor", floor)):
            counted = "writers + their backends" if postgres else "writers (SQLite inside)"
            line = f"  cpu {label}: {phase.cpu_per_1000():.4f} s/1000 samples ({counted})"
            if postgres:
                line += (
                    f", {phase.cpu_per_1000(with_shared=True):.4f} with PostgreSQL's shared "
                    f"processes ({phase.shared_cpu:.1f} s)"
                )
            busy = phase.machine_cpu / (phase.wall * CORES) * 100
            others = phase.others() / (phase.wall * CORES) * 100
            print(
                f"{line}; machine {busy:.0f} % busy, {others:.0f} % outside the bench"
                + (" - OTHER WORK RAN: figures depressed" if others > OTHERS_NOTICEABLE else "")
            )
        print(
            f"  cpu vs Zabbix {ZABBIX_CPU_PER_1000:.4f} s/1000: "
            f"{ZABBIX_CPU_PER_1000 / store.cpu_per_1000(with_shared=True):.1f}x less"
        )
        print(
            f"  bytes/sample: buffered {hot_bytes / written:.1f}, compacted into chunks "
            f"{compact_bytes / written:.1f}, floor table {floor_bytes / floor.samples:.1f}"
            + ("" if postgres else " (SQLite pages of the tables and indexes, dbstat)")
        )
        print(
            f"  compaction: {moved:,} rows in {compact_wall:.1f} s "
            f"({moved / compact_wall:,.0f} samples/s, cpu {compact_cpu / moved * 1000:.4f} "
            f"s/1000); stored {stored:,} of {written:,} written: "
            + ("nothing lost" if stored == written else "MISMATCH")
        )
        return stored == written

    try:
        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_floor (ts bigint, series_id bigint, value float8)")
        if postgres:
            settings = "synchronous_commit={} fsync={} wal_level={} shared_buffers={}".format(
                query("SHOW synchronous_commit")[0],
                query("SHOW fsync")[0],
                query("SHOW wal_level")[0],
                query("SHOW shared_buffers")[0],
            )
            print(f"bench: metric ingest, {query('SELECT version()')[0].split(' on ')[0]}")
        else:
            settings = "journal_mode={} synchronous={} (project default: WAL, NORMAL)".format(
                query("PRAGMA journal_mode")[0], query("PRAGMA synchronous")[0]
            )
            print(f"bench: metric ingest, SQLite {query('SELECT sqlite_version()')[0]}")
        print(
            f"settings: {settings}; batch={args.batch} samples per call and transaction; "
            f"{args.seconds:.0f} s or {args.max_samples:,} samples per scenario; "
            f"writers {','.join(map(str, args.writers))} (processes, one connection each, "
            "the series dealt out between them)"
        )
        first_source = 1
        ok = True
        for series_count in args.series:
            for writers in args.writers:
                ok = scenario(series_count, writers, first_source) and ok
                first_source += series_count // len(NAMES)
        print(load_line("after"))
        if not ok:
            raise SystemExit(1)
    finally:
        connection.close()
        if postgres and not args.keep:
            psql(f"DROP DATABASE IF EXISTS {DB}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="of writes, per scenario")
    parser.add_argument("--max-samples", type=int, default=3_000_000, help="per scenario")
    parser.add_argument("--batch", type=int, default=3000, help="samples per call")
    parser.add_argument("--series", default="1000,10000", help="series counts, comma-separated")
    parser.add_argument(
        "--writers", default="1,4", help="writer processes (connections), comma-separated"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    args.series = [int(n) for n in args.series.split(",")]
    args.writers = [int(n) for n in args.writers.split(",")]
    if not 1 <= max(args.writers) <= min(args.series) // len(NAMES):
        parser.error(f"each writer needs a source of its own ({len(NAMES)} series)")
    if args.backend != "both":
        run_backend(args)
        return
    # Django is set up once per process, so each database runs in a child of its own.
    for backend in ("sqlite", "postgres"):
        argv = [a for a in sys.argv[1:] if not a.startswith("--backend")]
        subprocess.run([sys.executable, __file__, *argv, "--backend", backend], check=True)


if __name__ == "__main__":
    sys.exit(main())
