"""The issue's whole path: network gear found by discovery gets its checks from a template,
is polled over SNMP, and its check changes state with thresholds, hysteresis and a
maintenance window, against the recorded Cisco switch (snmpsim) on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from django.utils import timezone

from onestop.assets.models import Device
from onestop.monitoring import selectors, services
from onestop.monitoring.models import Check, CheckState, CheckStateChange
from onestop.monitoring.poller import Outcome, ProbeDispatcher

pytestmark = pytest.mark.django_db


def _poll_once() -> None:
    targets = selectors.poller_targets()

    async def run():
        dispatcher = ProbeDispatcher()
        try:
            at = time.time()
            results = await asyncio.gather(*(dispatcher(target) for target in targets))
        finally:
            await dispatcher.close()
        return [Outcome(t, r, at) for t, r in zip(targets, results, strict=True)]

    services.poller_outcomes_store(outcomes=asyncio.run(run()))


def test_discovered_switch_is_polled_and_its_check_follows_hysteresis_and_maintenance(
    world, snmpsim_agent
):
    credential = services.snmp_credential_create(
        actor=world.admin,
        customer=world.customer_a,
        name="Lab switches",
        version="2c",
        community="cisco-c3750",
    )
    template = services.check_template_create(
        actor=world.admin,
        name="Switch CPU",
        customer=world.customer_a,
        device_kind=Device.Kind.SWITCH,
        kind="poller",
        probe="snmp_cpu_memory",
        params={"port": snmpsim_agent.port},
        snmp_credential=credential,
        metric="snmp.cpu_pct",
        warning=20,
        critical=50,
        recovery=15,
    )

    job = services.discovery_job_create(
        actor=world.admin,
        customer=world.customer_a,
        network="127.0.0.1/32",
        snmp_credential=credential,
        port=snmpsim_agent.port,
    )
    services.discovery_job_run(job_id=job.pk)
    switch = Device.objects.get(customer=world.customer_a, ip_address="127.0.0.1")
    assert switch.kind == Device.Kind.SWITCH and switch.vendor == "Cisco"

    services.device_events_apply_templates()  # what the worker does every minute
    check = Check.objects.get(device=switch, template=template)

    _poll_once()  # the recording's CPU is 29 %: above the warning level of 20
    check.refresh_from_db()
    assert (check.state, check.last_value) == (CheckState.WARNING, 29.0)

    # Warning raised to 30 with recovery at 25: 29 % is below the warning level but not back
    # past recovery, so the state holds (hysteresis).
    services.check_template_update(
        actor=world.admin, template=template, warning=30, critical=50, recovery=25
    )
    _poll_once()
    check.refresh_from_db()
    assert check.state == CheckState.WARNING

    # During maintenance the check still records; the change it makes is marked.
    window = services.maintenance_window_create(
        actor=world.admin,
        customer=world.customer_a,
        device=switch,
        name="换交换机风扇",
        starts_at=timezone.now() - dt.timedelta(hours=1),
        ends_at=timezone.now() + dt.timedelta(hours=1),
    )
    services.check_template_update(actor=world.admin, template=template, recovery=29.5)
    _poll_once()
    check.refresh_from_db()
    assert check.state == CheckState.OK
    last = CheckStateChange.objects.filter(check_obj=check).latest("id")
    assert (last.from_state, last.to_state) == (CheckState.WARNING, CheckState.OK)
    assert last.in_maintenance and last.maintenance_window == window
    first = CheckStateChange.objects.filter(check_obj=check).earliest("id")
    assert not first.in_maintenance
