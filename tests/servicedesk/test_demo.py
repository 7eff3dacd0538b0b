"""The service-desk demo data: written once, through the services, with live SLA clocks."""

from __future__ import annotations

import pytest

from onestop.contracts.models import BusinessCalendar, Contract, SlaPolicy
from onestop.core import demo
from onestop.core.models import User
from onestop.servicedesk import demo as desk_demo
from onestop.servicedesk import selectors
from onestop.servicedesk.models import Status, Ticket

pytestmark = pytest.mark.django_db


def test_seed_after_the_core_demo_and_only_once():
    assert not desk_demo.seed_service_desk_demo()  # nothing to serve yet
    demo.seed_demo()
    assert desk_demo.seed_service_desk_demo()
    assert Contract.objects.filter(is_customer_default=True).count() == 20
    assert BusinessCalendar.objects.get(is_default=True).days.exists()
    assert SlaPolicy.objects.filter(is_default=True).count() == 1
    assert Ticket.objects.count() == 45
    states = set(Ticket.objects.values_list("status", flat=True))
    assert {Status.NEW, Status.RESOLVED, Status.CLOSED} <= states
    open_ticket = Ticket.objects.filter(status=Status.ASSIGNED).first()
    assert open_ticket is None or open_ticket.first_response_due_at is not None
    assert not desk_demo.seed_service_desk_demo()
    assert Ticket.objects.count() == 45
    portal = User.objects.get(username="portal")
    assert selectors.ticket_list(user=portal).exists()  # the plain portal user has tickets
