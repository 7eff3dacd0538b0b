"""Ticket queue speed on PostgreSQL: a filtered page of 50 out of N tickets (default 1,000,000).

Goal (issue: service desk): p95 < 100 ms with a constant number of queries whatever the page
size; GLPI needs 1.72 s for 50 of 18,500 (../shared/BENCHMARKS.md). Creates a dedicated
database (dropped at the end unless --keep), loads the tickets with COPY, then times the
/api/v1/tickets endpoint end to end (auth, scoping, query, serialisation) through Django's
test client, as an admin and as an engineer who serves 5 of 200 customers.

Run: .venv/bin/python bench/ticket_queue.py [--tickets N] [--requests R]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import subprocess
import sys
import time

DB = "onestop_bench_queue"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
GOAL_P95_MS = 100.0
GLPI_MS = 1720.0


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{PG}/postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    psql(f"DROP DATABASE IF EXISTS {DB}")
    psql(
        f"CREATE DATABASE {DB} ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' "
        "TEMPLATE template0"
    )
    os.environ.update(
        DATABASE_URL=f"{PG}/{DB}",
        SECRET_KEY="bench-secret-key-long-enough-0123456789abcdef",
        ONESTOP_ENCRYPTION_KEY="bKev0GDh2MGAl9SSeLmZWOnhG-FbAn7sTkTec5F0PL4=",
        DJANGO_SETTINGS_MODULE="onestop.config.settings_test",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from onestop.core import services

    try:
        call_command("migrate", verbosity=0)
        rng = random.Random(7)
        customers = [
            services.customer_create(actor=None, name=f"客户{i}", short_code=f"B{i:04d}")
            for i in range(200)
        ]
        admin = services.user_create(
            actor=None, username="bench-admin", password=None, role="admin"
        )
        engineer = services.user_create(
            actor=None,
            username="bench-eng",
            password=None,
            role="engineer",
            customers=customers[:5],
        )
        statuses = ["new", "assigned", "in_progress", "waiting_customer", "resolved", "closed"]
        weights = [3, 5, 8, 4, 20, 60]
        columns = (
            "customer_id",
            "title",
            "description",
            "type",
            "category",
            "channel",
            "status",
            "impact",
            "urgency",
            "priority",
            "opened_at",
            "updated_at",
            "imported",
            "sla_provisional",
            "sla_paused_seconds",
            "sla_warned_percent",
            "first_response_breached",
            "resolution_breached",
            "search_text",
        )
        t0 = time.perf_counter()
        buffer = io.StringIO()
        for n in range(args.tickets):
            customer = customers[rng.randrange(200)]
            status = rng.choices(statuses, weights)[0]
            title = f"工单 {n} 打印机故障"
            buffer.write(
                "\t".join(
                    [
                        str(customer.pk),
                        title,
                        "",
                        "incident",
                        "",
                        "phone",
                        status,
                        "2",
                        "2",
                        rng.choice(["P1", "P2", "P3", "P4"]),
                        "2026-01-01 00:00:00+00",
                        "2026-01-01 00:00:00+00",
                        "t",
                        "f",
                        "0",
                        "0",
                        "f",
                        "t" if rng.random() < 0.05 else "f",
                        title,
                    ]
                )
                + "\n"
            )
        buffer.seek(0)
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY servicedesk_ticket ({', '.join(columns)}) FROM STDIN") as copy:
                copy.write(buffer.read())
            cursor.execute("ANALYZE servicedesk_ticket")
        load_seconds = time.perf_counter() - t0

        def client_for(user) -> Client:
            _token, raw = services.api_token_create(user=user)
            return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

        scenarios = [
            ("admin, open P1 tickets", client_for(admin), "is_open=true&priority=P1"),
            (
                "admin, one customer, open",
                client_for(admin),
                f"customer_id={customers[3].pk}&is_open=true",
            ),
            ("engineer (5 customers), open", client_for(engineer), "is_open=true"),
            ("admin, breached", client_for(admin), "breached=true"),
        ]
        print("bench: ticket queue, GET /api/v1/tickets?page_size=50 on PostgreSQL")
        print(
            f"settings: tickets={args.tickets} customers=200 requests={args.requests} per scenario"
        )
        print(f"load_seconds={load_seconds:.1f} (COPY)")
        for name, client, query in scenarios:
            url = f"/api/v1/tickets?page_size=50&{query}"
            client.get(url)
            timings = []
            for _ in range(args.requests):
                start = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, response.content[:200]
            with CaptureQueriesContext(connection) as small:
                client.get(f"/api/v1/tickets?page_size=10&{query}")
            with CaptureQueriesContext(connection) as large:
                client.get(f"/api/v1/tickets?page_size=200&{query}")
            timings.sort()
            p50 = statistics.median(timings)
            p95 = timings[int(len(timings) * 0.95) - 1]
            p99 = timings[int(len(timings) * 0.99) - 1]
            print(
                f"{name}: p50={p50:.1f}ms p95={p95:.1f}ms p99={p99:.1f}ms "
                f"queries(page 10/200)={len(small)}/{len(large)} "
                f"goal_p95={GOAL_P95_MS:.0f}ms ratio_vs_goal={GOAL_P95_MS / p95:.1f}x "
                f"vs_GLPI_50_of_18500={GLPI_MS / p95:.0f}x faster"
            )
    finally:
        connection.close()
        if not args.keep:
            psql(f"DROP DATABASE IF EXISTS {DB}")


if __name__ == "__main__":
    sys.exit(main())
