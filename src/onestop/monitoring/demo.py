"""Demo devices for `onestop demo`: per customer a few machines with an enrolled agent, a day of
plausible metrics and an inventory, plus network gear entered by hand."""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from onestop.assets import services as asset_services
from onestop.assets.models import Device
from onestop.core.models import Site
from onestop.metrics import services as metric_services
from onestop.monitoring import services
from onestop.monitoring.models import Agent

Progress = Callable[[str, int, int], None]
MACHINES = (
    ("FS01", "server", "Dell Inc.", "PowerEdge R740", 64),
    ("PC-财务-01", "desktop", "Lenovo", "ThinkCentre M920t", 16),
    ("NB-销售-07", "laptop", "HP", "EliteBook 840 G8", 16),
)
GEAR = (
    ("核心交换机", "switch", "H3C", "S6520X-30QC-EI"),
    ("出口防火墙", "firewall", "Huawei", "USG6525E"),
    ("三楼打印机", "printer", "HP", "LaserJet Pro M404dn"),
)
SOFTWARE = [
    {"name": "openssh-server", "version": "1:9.2p1-2+deb12u3", "publisher": "Debian"},
    {"name": "nginx", "version": "1.22.1-9", "publisher": "Debian"},
    {"name": "postgresql-15", "version": "15.8-0+deb12u1", "publisher": "Debian"},
]
DAY_MINUTES = 24 * 60
STEP_MINUTES = 5


def seed_monitoring_demo(*, progress: Progress | None = None) -> bool:
    """Writes the demo devices once; returns False when devices already exist."""
    if Device.objects.exists():
        return False
    rng = random.Random("onestop-monitoring-demo")  # noqa: S311 -- demo data, not secrets
    sites = list(Site.objects.select_related("customer").order_by("customer__short_code", "id"))
    first_sites = list({site.customer_id: site for site in reversed(sites)}.values())[:6]
    now = timezone.now()
    for index, site in enumerate(first_sites):
        _token, raw = services.enrollment_token_create(actor=None, site=site, name="演示装机")
        for host, kind, vendor, model, ram in MACHINES:
            agent, _secret = services.agent_enroll(
                token=raw, hostname=f"{site.customer.short_code}-{host}", os="Debian GNU/Linux 12"
            )
            Device.objects.filter(pk=agent.device_id).update(kind=kind)
            services.agent_inventory(
                agent=agent,
                inventory=_inventory(agent, vendor, model, ram, rng),
                now=now - dt.timedelta(hours=6),
            )
            _history(agent, now, rng)
        for name, kind, vendor, model in GEAR:
            asset_services.device_create(
                actor=None,
                customer=site.customer,
                site=site,
                name=name,
                kind=kind,
                vendor=vendor,
                model=model,
                ip_address=f"10.{index}.0.{rng.randrange(2, 250)}",
            )
        if progress:
            progress("devices", index + 1, len(first_sites))
    _checks(first_sites[0], now)
    return True


def _checks(site: Site, now: dt.datetime) -> None:
    """Templates every server and desktop gets, a check of OneStop's own web page by the
    poller, a weekly maintenance window, and the states the seeded day of samples gives."""
    services.check_template_create(
        actor=None,
        name="服务器 CPU",
        device_kind=Device.Kind.SERVER,
        metric="cpu.percent",
        warning=70,
        critical=90,
        consecutive=3,
        description="所有客户的服务器：CPU 连续 3 次超过阈值才告警。",
    )
    for kind, name in ((Device.Kind.SERVER, "服务器系统盘"), (Device.Kind.DESKTOP, "台式机系统盘")):
        services.check_template_create(
            actor=None,
            name=name,
            device_kind=kind,
            metric="disk.used_percent",
            labels={"mount": "/"},
            warning=60,
            critical=90,
            hysteresis=5,
        )
    services.device_events_apply_templates()
    portal = asset_services.device_create(
        actor=None, customer=site.customer, site=site, name="客户门户", kind=Device.Kind.OTHER
    )
    services.check_create(
        actor=None,
        device=portal,
        name="门户网站",
        kind="poller",
        probe="http",
        mode="availability",
        params={"url": settings.ONESTOP_PUBLIC_URL.rstrip("/") + "/healthz", "check_cert": False},
        interval=60,
    )
    # Demo addresses lead nowhere: the poller finds this firewall unreachable, a problem to see.
    firewall = Device.objects.filter(site=site, kind=Device.Kind.FIREWALL).first()
    if firewall is not None:
        services.check_create(
            actor=None,
            device=firewall,
            name="出口防火墙连通性",
            kind="poller",
            probe="ping",
            mode="availability",
            metric="ping.rtt_ms",
            warning=50,
            critical=200,
            consecutive=2,
            interval=60,
        )
    services.maintenance_window_create(
        actor=None,
        customer=site.customer,
        name="每周日机房维护",
        reason="UPS 巡检与系统补丁",
        starts_at=now.replace(hour=18, minute=0, second=0, microsecond=0)
        - dt.timedelta(days=now.weekday() + 1),
        rrule="FREQ=WEEKLY;BYDAY=SU",
        duration_minutes=120,
        time_zone="Asia/Shanghai",
    )
    services.snmp_credential_create(
        actor=None, name="默认团体字 (只读)", version="2c", community="public"
    )
    services.agent_checks_evaluate(now=now)


def _inventory(agent: Agent, vendor: str, model: str, ram_gb: int, rng: random.Random) -> dict:
    return {
        "hostname": agent.hostname,
        "os": {"name": "Debian GNU/Linux", "version": "12", "kernel": "6.1.0-28-amd64"},
        "cpu": {"model": "Intel(R) Xeon(R) Silver 4214R", "cores": 12, "threads": 24},
        "memory_bytes": ram_gb * 1024**3,
        "vendor": vendor,
        "model": model,
        "serial": f"CN{rng.randrange(10**8):08d}",
        "disks": [{"device": "/dev/sda1", "mount": "/", "fs": "ext4", "total_bytes": 480 * 10**9}],
        "nics": [
            {
                "name": "eth0",
                "mac": "52:54:00:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3)),
                "ips": [f"192.168.{rng.randrange(1, 254)}.{rng.randrange(2, 254)}"],
            }
        ],
        "software": SOFTWARE,
        "users": ["administrator"],
    }


def _history(agent: Agent, now: dt.datetime, rng: random.Random) -> None:
    """A day of samples every five minutes with a working-day rhythm, stored as the agent's
    reports would be; the last report marks the agent as seen just now."""
    base = rng.uniform(10, 30)
    samples = []
    for step in range(DAY_MINUTES // STEP_MINUTES + 1):  # the last one now
        at = now - dt.timedelta(minutes=DAY_MINUTES - step * STEP_MINUTES)
        hour = at.astimezone(dt.timezone(dt.timedelta(hours=8))).hour
        busy = 1.0 + 1.5 * math.exp(-(((hour - 14) / 4) ** 2))
        ts = at.timestamp()
        samples += [
            (agent.device_id, "cpu.percent", {}, ts, min(100.0, base * busy + rng.uniform(0, 8))),
            (agent.device_id, "mem.used_percent", {}, ts, 40 + 15 * busy + rng.uniform(0, 3)),
            (agent.device_id, "disk.used_percent", {"mount": "/"}, ts, 61 + step * 0.002),
            (
                agent.device_id,
                "net.rx_bps",
                {"nic": "eth0"},
                ts,
                2e5 * busy * rng.uniform(0.5, 1.5),
            ),
            (
                agent.device_id,
                "net.tx_bps",
                {"nic": "eth0"},
                ts,
                8e4 * busy * rng.uniform(0.5, 1.5),
            ),
        ]
    metric_services.samples_write(samples=samples)
    services.agent_report(agent=agent, report_id=uuid.uuid4().hex, seq=1, samples=[], now=now)
