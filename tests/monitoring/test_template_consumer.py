"""New and changed devices get their templates' checks from the domain events, however the
device was made, without hand work."""

from __future__ import annotations

import pytest

from onestop.assets import services as asset_services
from onestop.assets.models import Device
from onestop.monitoring import services
from onestop.monitoring.models import Check

pytestmark = pytest.mark.django_db


def test_devices_made_or_changed_later_get_their_templates_checks_once(world):
    template = services.check_template_create(
        actor=world.admin,
        name="Server CPU",
        customer=world.customer_a,
        device_kind=Device.Kind.SERVER,
        metric="cpu.percent",
        warning=80,
        critical=95,
    )
    services.device_events_apply_templates()  # the template's own events: nothing to do

    server = asset_services.device_create(
        actor=world.admin, customer=world.customer_a, name="A-SRV", kind=Device.Kind.SERVER
    )
    desktop = asset_services.device_create(
        actor=world.admin, customer=world.customer_a, name="A-PC", kind=Device.Kind.DESKTOP
    )
    other_customer = asset_services.device_create(
        actor=world.admin, customer=world.customer_b, name="B-SRV", kind=Device.Kind.SERVER
    )
    enrolled = asset_services.device_for_site(site=world.site_a, name="A-AGENT", kind="server")
    assert not Check.objects.exists()  # not yet: the consumer runs every minute

    assert services.device_events_apply_templates() == 4
    with_check = set(Check.objects.filter(template=template).values_list("device_id", flat=True))
    assert with_check == {server.pk, enrolled.pk}

    assert services.device_events_apply_templates() == 0  # the cursor moved: nothing repeated
    assert Check.objects.count() == 2

    asset_services.device_update(actor=world.admin, device=desktop, kind=Device.Kind.SERVER)
    asset_services.device_update(actor=world.admin, device=server, kind=Device.Kind.NAS)
    services.device_events_apply_templates()
    with_check = set(Check.objects.filter(template=template).values_list("device_id", flat=True))
    assert with_check == {desktop.pk, enrolled.pk}
    assert not Check.objects.filter(device=other_customer).exists()
