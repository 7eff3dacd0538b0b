"""The periodic SLA job calls the sweep (Huey runs tasks inline in the test settings)."""

from __future__ import annotations

import datetime as dt

import pytest

from onestop.contracts import services as contracts
from onestop.servicedesk import services, tasks

pytestmark = pytest.mark.django_db


def test_periodic_sweep_marks_an_overdue_ticket(world):
    contracts.calendar_create(actor=None, name="7×24", preset="7x24", is_default=True)
    contracts.sla_policy_create(
        actor=None,
        name="快",
        is_default=True,
        targets=[{"priority": "P3", "first_response_minutes": 5, "resolution_minutes": 10}],
    )
    opened = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    ticket = services.ticket_create(
        actor=None, customer=world.customer_a, title="过期", channel="phone", opened_at=opened
    )
    result = tasks.sla_sweep.call_local()
    assert result == {"first_response_breached": 1, "resolution_breached": 1, "escalated": 1}
    ticket.refresh_from_db()
    assert ticket.first_response_breached and ticket.resolution_breached
