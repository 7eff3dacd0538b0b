"""The monitoring demo data: devices with enrolled agents and a day of metrics, written once."""

from __future__ import annotations

import time

import pytest

from onestop.assets.models import Device
from onestop.core import demo
from onestop.core.models import User
from onestop.metrics import selectors as metric_selectors
from onestop.monitoring import demo as monitoring_demo
from onestop.monitoring.models import Agent, Check
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_seed_after_the_core_demo_and_only_once():
    demo.seed_demo()
    assert monitoring_demo.seed_monitoring_demo()
    assert Agent.objects.count() == 18
    # Gear entered by hand, and the web portal the poller watches.
    assert Device.objects.filter(agent__isnull=True).count() == 19
    servers = Device.objects.filter(kind="server", agent__isnull=False)
    assert Check.objects.filter(device__in=servers, template__name="服务器 CPU").count() == 6
    assert Check.objects.filter(kind="poller", probe="http").count() == 1
    assert not Check.objects.filter(kind="agent", last_checked_at__isnull=True).exists()
    agent = Agent.objects.select_related("device").first()
    assert agent.device.inventory_at is not None
    now = time.time()
    [series] = metric_selectors.series_query(
        source_id=agent.device_id, name="cpu.percent", start=now - 86400, end=now
    )
    assert len(series.points) > 200
    assert not monitoring_demo.seed_monitoring_demo()
    page = client_for(User.objects.get(username="admin")).get(f"/devices/{agent.device_id}/")
    assert page.status_code == 200
    assert b"data-chart=" in page.content
