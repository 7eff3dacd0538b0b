"""SNMP checks end to end: stored credentials, the poller's dispatcher against the recorded
agent (snmpsim), interface rates with labels in the metric store, a check on one interface."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from django.utils import timezone, translation

from onestop.assets import services as asset_services
from onestop.metrics import selectors as metric_selectors
from onestop.monitoring import selectors, services
from onestop.monitoring.models import CheckState
from onestop.monitoring.poller import Outcome, ProbeDispatcher

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def _rounds(count: int, pause: float):
    """`count` rounds of the poller's dispatcher over the current targets, one dispatcher (so
    it remembers the previous counters, as the running poller does)."""
    targets = selectors.poller_targets()

    async def run():
        dispatcher = ProbeDispatcher()
        rounds = []
        try:
            for index in range(count):
                if index:
                    await asyncio.sleep(pause)
                at = time.time()
                results = await asyncio.gather(*(dispatcher(t) for t in targets))
                rounds.append([Outcome(t, r, at) for t, r in zip(targets, results, strict=True)])
        finally:
            await dispatcher.close()
        return rounds

    return asyncio.run(run())


def test_interfaces_uptime_and_one_port_through_the_checks(world, snmpsim_agent):
    credential = services.snmp_credential_create(
        actor=world.admin,
        customer=world.customer_a,
        name="Lab",
        version="2c",
        community="onestop-counters",
    )
    switch = asset_services.device_create(
        actor=None,
        customer=world.customer_a,
        name="SW-LAB",
        kind="switch",
        ip_address=snmpsim_agent.host,
    )
    common = {
        "kind": "poller",
        "snmp_credential": credential,
        "params": {"port": snmpsim_agent.port},
    }
    interfaces = services.check_create(
        actor=None,
        device=switch,
        name="Interfaces",
        probe="snmp_interfaces",
        metric="snmp.if.down_count",
        warning=1,
        critical=2,
        **common,
    )
    port_down = services.check_create(
        actor=None,
        device=switch,
        name="hc0 link",
        probe="snmp_interfaces",
        metric="snmp.if.oper_status",
        labels={"ifname": "hc0"},
        critical=2,
        **common,
    )
    uptime = services.check_create(
        actor=None,
        device=switch,
        name="Uptime",
        probe="snmp_uptime",
        mode="availability",
        **common,
    )

    first, second = _rounds(2, pause=1.0)
    for outcomes in (first, second):
        services.poller_outcomes_store(outcomes=outcomes)

    checks = {c.pk: c for c in selectors.check_list(user=world.admin, device=switch)}
    assert checks[uptime.pk].state == CheckState.OK
    # hc0's ifOperStatus is 2 (down) in the recording: the one-interface check sees it.
    assert checks[port_down.pk].state == CheckState.CRITICAL
    assert checks[port_down.pk].last_value == 2
    assert checks[interfaces.pk].state == CheckState.WARNING  # one interface of two is down

    window = {
        "start": timezone.now() - dt.timedelta(minutes=5),
        "end": timezone.now() + dt.timedelta(minutes=1),
    }
    rates = metric_selectors.series_query(source_id=switch.pk, name="snmp.if.in_bps", **window)
    by_interface = {series.labels["ifname"]: series for series in rates}
    assert set(by_interface) == {"fast0", "hc0"}
    # hc0's 64-bit ifHCInOctets counts 1 MB/s in the recording: 8 Mbit/s.
    assert by_interface["hc0"].points[-1].avg == pytest.approx(8e6, rel=0.3)
    assert by_interface["hc0"].labels == {"ifname": "hc0", "ifindex": "2"}
    uptimes = metric_selectors.series_query(source_id=switch.pk, name="snmp.uptime_s", **window)
    assert uptimes and uptimes[0].points[-1].avg > 0
