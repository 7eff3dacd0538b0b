"""Agent-metric checks judge the newest sample their agent reported, once, and say UNKNOWN
when the data stops."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone, translation

from onestop.assets import services as asset_services
from onestop.metrics import services as metric_services
from onestop.monitoring import services
from onestop.monitoring.models import Check, CheckState, CheckStateChange

pytestmark = pytest.mark.django_db


def test_checks_follow_the_newest_samples_and_lose_them_when_the_agent_stops(world):
    device = asset_services.device_create(
        actor=None, customer=world.customer_a, name="SRV-01", kind="server"
    )
    cpu = services.check_create(
        actor=None, device=device, name="CPU", metric="cpu.percent", warning=80, critical=90
    )
    root = services.check_create(
        actor=None,
        device=device,
        name="Root disk",
        metric="disk.used_percent",
        labels={"mount": "/"},
        warning=85,
        critical=95,
    )
    now = timezone.now().replace(microsecond=0)
    t1, t2 = (
        (now - dt.timedelta(seconds=120)).timestamp(),
        (now - dt.timedelta(seconds=60)).timestamp(),
    )
    metric_services.samples_write(
        samples=[
            (device.pk, "cpu.percent", {}, t1, 50.0),
            (device.pk, "cpu.percent", {}, t2, 93.0),
            (device.pk, "disk.used_percent", {"mount": "/"}, t2, 40.0),
            (device.pk, "disk.used_percent", {"mount": "/data"}, t2, 99.0),  # another series
        ]
    )

    assert services.agent_checks_evaluate(now=now) == 2
    cpu.refresh_from_db()
    root.refresh_from_db()
    assert (cpu.state, cpu.last_value) == (CheckState.CRITICAL, 93.0)  # the newest sample
    assert (root.state, root.last_value) == (CheckState.OK, 40.0)  # its own mount only
    assert cpu.last_checked_at.timestamp() == t2

    assert services.agent_checks_evaluate(now=now) == 0  # nothing new: nothing recorded again
    assert CheckStateChange.objects.filter(check_obj=cpu).count() == 1

    later = now + dt.timedelta(seconds=cpu.interval * 3 + 1)
    with translation.override("en"):
        assert services.agent_checks_evaluate(now=later) == 2
    assert set(Check.objects.values_list("state", flat=True)) == {CheckState.UNKNOWN}
    # Stored as a note, shown in the reader's language whatever the worker's was.
    stale = Check.objects.get(pk=cpu.pk)
    assert stale.last_note["template"] == "No data from the agent."
    with translation.override("zh-hans"):
        assert stale.last_message == "未收到代理程序的数据。"
    with translation.override("en"):
        assert stale.last_message == "No data from the agent."
