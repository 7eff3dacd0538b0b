"""The poller wired to the checks: targets read from the database (device address filled in,
shards), real probes against loopback servers, results through the state engine and into the
metric store."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone, translation

from onestop.assets import services as asset_services
from onestop.metrics import selectors as metric_selectors
from onestop.monitoring import poller_process, selectors, services
from onestop.monitoring.models import CheckState, CheckStateChange
from onestop.monitoring.poller import Outcome, Poller, ProbeDispatcher

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"status: healthy" if self.path == "/health" else b"status: degraded"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def web_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def _device(world):
    return asset_services.device_create(
        actor=None, customer=world.customer_a, name="WEB-01", kind="server", ip_address="127.0.0.1"
    )


def _poll(targets):
    """One round of the real probes over the targets, as the poller runs them."""

    async def run():
        dispatcher = ProbeDispatcher()
        try:
            at = timezone.now().timestamp()
            results = await asyncio.gather(*(dispatcher(target) for target in targets))
        finally:
            await dispatcher.close()
        return [Outcome(t, r, at) for t, r in zip(targets, results, strict=True)]

    return asyncio.run(run())


def test_checks_change_state_from_real_probes_and_readings_reach_the_store(
    world, web_server, closed_port
):
    device = _device(world)
    up = services.check_create(
        actor=None,
        device=device,
        name="Web",
        kind="poller",
        probe="http",
        timeout=10,
        mode="availability",
        params={"url": f"http://127.0.0.1:{web_server}/health", "body_match": "healthy"},
    )
    degraded = services.check_create(
        actor=None,
        device=device,
        name="Status page",
        kind="poller",
        probe="http",
        timeout=10,
        mode="availability",
        params={"url": f"http://127.0.0.1:{web_server}/status", "body_match": "healthy"},
    )
    down = services.check_create(
        actor=None,
        device=device,
        name="Database port",
        kind="poller",
        probe="tcp",
        mode="availability",
        params={"port": closed_port},
        consecutive=2,
    )
    slow = services.check_create(
        actor=None,
        device=device,
        name="Latency",
        kind="poller",
        probe="http",
        timeout=10,
        metric="http.latency_ms",
        warning=0.0001,
        critical=60_000,
        params={"url": f"http://127.0.0.1:{web_server}/health"},
    )

    targets = selectors.poller_targets()
    assert {t.check_id for t in targets} == {up.pk, degraded.pk, down.pk, slow.pk}
    tcp_target = next(t for t in targets if t.check_id == down.pk)
    assert tcp_target.params["host"] == "127.0.0.1"  # the device's address filled in
    assert tcp_target.source_id == device.pk

    services.poller_outcomes_store(outcomes=_poll(targets))
    states = {c.pk: c for c in selectors.check_list(user=world.admin, device=device)}
    assert states[up.pk].state == CheckState.OK
    assert states[degraded.pk].state == CheckState.CRITICAL  # answered, body does not match
    assert "does not match" in states[degraded.pk].last_message
    assert states[down.pk].state == CheckState.UNKNOWN  # as it started: two failures needed
    assert states[slow.pk].state == CheckState.WARNING and states[slow.pk].last_value > 0

    services.poller_outcomes_store(outcomes=_poll(selectors.poller_targets()))
    assert selectors.check_get(user=world.admin, pk=down.pk).state == CheckState.CRITICAL
    changes = CheckStateChange.objects.filter(check_obj_id=down.pk)
    assert list(changes.values_list("from_state", "to_state")) == [("unknown", "critical")]

    latest = metric_selectors.latest_values(source_ids=[device.pk], names=["http.latency_ms"])
    assert latest, "the HTTP latency readings were stored"
    points = metric_selectors.series_query(
        source_id=device.pk,
        name="http.status",
        start=timezone.now() - dt.timedelta(minutes=5),
        end=timezone.now() + dt.timedelta(minutes=1),
    )
    assert points and {p.avg for p in points[0].points} == {200.0}


def test_disabled_checks_and_other_shards_are_not_polled(world, closed_port):
    device = _device(world)
    checks = [
        services.check_create(
            actor=None,
            device=device,
            name=f"Port {i}",
            kind="poller",
            probe="tcp",
            mode="availability",
            params={"port": closed_port},
        )
        for i in range(12)
    ]
    services.check_update(actor=None, check=checks[0], enabled=False)

    everything = {t.check_id for t in selectors.poller_targets()}
    assert everything == {c.pk for c in checks[1:]}
    halves = [{t.check_id for t in selectors.poller_targets(shard=i, shards=2)} for i in (0, 1)]
    assert halves[0] | halves[1] == everything and not halves[0] & halves[1]


def test_a_check_deleted_while_its_result_was_on_the_way_is_skipped(world, closed_port):
    device = _device(world)
    check = services.check_create(
        actor=None,
        device=device,
        name="Port",
        kind="poller",
        probe="tcp",
        mode="availability",
        params={"port": closed_port},
    )
    outcomes = _poll(selectors.poller_targets())
    services.check_delete(actor=None, check=check)
    assert services.poller_outcomes_store(outcomes=outcomes) == 0


@pytest.mark.django_db(transaction=True)
def test_the_poller_loop_stores_through_its_worker_thread(world, web_server):
    # The real loop: targets loaded and results stored from the poller's threads.
    device = _device(world)
    check = services.check_create(
        actor=None,
        device=device,
        name="Web",
        kind="poller",
        probe="http",
        timeout=10,
        mode="availability",
        params={"url": f"http://127.0.0.1:{web_server}/health"},
        interval=10,
    )

    async def run(executor):
        stop = asyncio.Event()
        dispatcher = ProbeDispatcher()
        poller = Poller(
            run_probe=dispatcher,
            load_targets=lambda: poller_process.load_targets(0, 1),
            store=poller_process.store_outcomes,
            flush_every=0.2,
            executor=executor,
        )

        async def stop_after_the_first_run():
            # The first run comes at the check's spread offset inside its 10 s interval.
            for _ in range(150):
                if poller.stats.runs:
                    break
                await asyncio.sleep(0.1)
            stop.set()  # the poller stores what it has before it returns

        stopper = asyncio.create_task(stop_after_the_first_run())
        await poller.run(stop)
        await stopper
        await dispatcher.close()
        return poller.stats

    with poller_process.database_thread() as executor:
        stats = asyncio.run(run(executor))
    assert stats.runs >= 1 and stats.store_failures == 0
    check = selectors.check_get(user=world.admin, pk=check.pk)
    assert check.last_checked_at is not None and check.state == CheckState.OK
