"""SLA clocks: due times on the Chinese business calendar, pauses, priority and SLA changes
mid-ticket, reopening, first response, and breach/warning detection by the periodic sweep."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from onestop.contracts import services as contracts
from onestop.core.errors import ConflictError
from onestop.core.models import DomainEvent
from onestop.servicedesk import services
from onestop.servicedesk.models import Status, TicketEntry
from tests import factories

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
MON = (2026, 11, 23)  # a Monday in the past, normal working week
TUE = (2026, 11, 24)


def at(day, hour, minute=0):
    return dt.datetime(*day, hour, minute, tzinfo=SH)


@pytest.fixture
def desk(world):
    calendar = contracts.calendar_create(actor=None, name="上海 5×8", is_default=True)
    contracts.calendar_import_chinese(actor=None, calendar=calendar, years=[2026])
    policy = contracts.sla_policy_create(
        actor=None,
        name="标准",
        is_default=True,
        targets=[
            {"priority": "P1", "first_response_minutes": 15, "resolution_minutes": 120},
            {"priority": "P2", "first_response_minutes": 30, "resolution_minutes": 240},
            {"priority": "P3", "first_response_minutes": 60, "resolution_minutes": 1440},
        ],
    )
    world.calendar, world.policy = calendar, policy
    return world


def open_ticket(world, opened=None, priority="P2", **extra):
    return services.ticket_create(
        actor=world.dispatcher,
        customer=world.customer_a,
        title="打印机无法打印",
        channel="phone",
        priority=priority,
        opened_at=opened or at(MON, 9),
        **extra,
    )


def test_due_times_on_business_hours(desk):
    ticket = open_ticket(desk)
    assert ticket.sla_policy == desk.policy and ticket.calendar == desk.calendar
    assert ticket.first_response_due_at == at(MON, 9, 30)
    assert ticket.resolution_due_at == at(MON, 14)  # 3 h before lunch + 1 h after
    assert not ticket.sla_provisional


def test_paused_time_never_counts(desk):
    ticket = open_ticket(desk)
    services.ticket_set_status(
        actor=desk.engineer, ticket=ticket, status="in_progress", now=at(MON, 9, 10)
    )
    services.ticket_set_status(
        actor=desk.engineer, ticket=ticket, status="waiting_customer", now=at(MON, 10)
    )
    assert ticket.resolution_due_at is None  # paused: no due time
    services.ticket_set_status(
        actor=desk.engineer, ticket=ticket, status="in_progress", now=at(TUE, 10)
    )
    assert ticket.sla_paused_minutes == 8 * 60  # the rest of Monday's hours and Tuesday 9–10
    assert ticket.resolution_due_at == at(TUE, 14)  # 60 min used, 180 left from Tue 10:00


def test_priority_change_keeps_used_time(desk):
    ticket = open_ticket(desk)
    services.ticket_update(actor=desk.dispatcher, ticket=ticket, priority="P1")
    assert ticket.resolution_due_at == at(MON, 11)
    assert ticket.first_response_due_at == at(MON, 9, 15)
    services.ticket_update(actor=desk.dispatcher, ticket=ticket, priority="P3")
    assert ticket.resolution_due_at == at((2026, 11, 25), 18)  # 24 business hours = 3 days


def test_impact_and_urgency_set_the_priority(desk):
    ticket = services.ticket_create(
        actor=desk.dispatcher,
        customer=desk.customer_a,
        title="全楼断网",
        channel="phone",
        impact=1,
        urgency=1,
        opened_at=at(MON, 9),
    )
    assert ticket.priority == "P1"
    services.ticket_update(actor=desk.dispatcher, ticket=ticket, impact=3, urgency=2)
    assert ticket.priority == "P4"


def test_sla_change_mid_ticket_keeps_paused_time(desk):
    ticket = open_ticket(desk)
    services.ticket_set_status(
        actor=desk.engineer, ticket=ticket, status="waiting_vendor", now=at(MON, 10)
    )
    services.ticket_set_status(
        actor=desk.engineer, ticket=ticket, status="in_progress", now=at(MON, 11)
    )
    gold = contracts.sla_policy_create(
        actor=None,
        name="金牌",
        targets=[{"priority": "P2", "first_response_minutes": 10, "resolution_minutes": 120}],
    )
    contract = contracts.contract_create(
        actor=None,
        customer=desk.customer_a,
        number="GOLD-1",
        name="金牌合同",
        start_date=dt.date(2026, 1, 1),
        sla_policy=gold,
    )
    services.ticket_update(actor=desk.dispatcher, ticket=ticket, contract=contract)
    assert ticket.sla_policy == gold
    assert ticket.sla_paused_minutes == 60
    assert ticket.resolution_due_at == at(MON, 12)  # 120 min target + 60 min paused


def test_reopen_resumes_the_resolution_clock(desk):
    ticket = open_ticket(desk)
    services.ticket_set_status(
        actor=desk.engineer, ticket=ticket, status="resolved", now=at(MON, 11)
    )
    assert ticket.resolution_minutes == 120 and not ticket.resolution_breached
    services.ticket_set_status(
        actor=desk.engineer, ticket=ticket, status="in_progress", now=at(MON, 15)
    )
    assert ticket.resolved_at is None
    assert ticket.resolution_due_at == at(MON, 17)  # 120 min left, from 15:00


def test_first_response_is_the_first_public_staff_reply_or_call(desk):
    ticket = open_ticket(desk)
    services.ticket_reply(
        actor=desk.engineer, ticket=ticket, body="内部备注", kind="note", at=at(MON, 9, 5)
    )
    services.ticket_reply(actor=desk.portal_a, ticket=ticket, body="还是不行", at=at(MON, 9, 10))
    assert ticket.first_response_at is None
    services.ticket_reply(
        actor=desk.engineer, ticket=ticket, body="已电话联系", kind="call", at=at(MON, 9, 20)
    )
    assert ticket.first_response_at == at(MON, 9, 20)
    assert ticket.first_response_minutes == 20
    assert not ticket.first_response_breached


def test_late_first_response_is_a_breach(desk):
    ticket = open_ticket(desk)
    services.ticket_reply(actor=desk.engineer, ticket=ticket, body="您好", at=at(MON, 13, 5))
    assert ticket.first_response_minutes == 180 + 5  # lunch does not count
    assert ticket.first_response_breached


def test_sweep_warns_then_breaches_once(desk):
    ticket = open_ticket(desk)
    services.ticket_reply(actor=desk.engineer, ticket=ticket, body="处理中", at=at(MON, 9, 10))
    assert services.sla_sweep(now=at(MON, 11))["escalated"] == 0  # 120 of 240 minutes used
    assert services.sla_sweep(now=at(MON, 13, 1))["escalated"] == 1  # 181 minutes ≥ 75 %
    assert services.sla_sweep(now=at(MON, 13, 2))["escalated"] == 0
    counts = services.sla_sweep(now=at(MON, 14, 1))
    assert counts["resolution_breached"] == 1
    ticket.refresh_from_db()
    assert ticket.resolution_breached
    assert services.sla_sweep(now=at(MON, 15))["resolution_breached"] == 0
    names = list(
        DomainEvent.objects.filter(object_id=str(ticket.pk)).values_list("name", flat=True)
    )
    assert names.count("ticket.sla_warning") == 1
    assert names.count("ticket.sla_breached") == 1


def test_sweep_flags_missing_first_response(desk):
    ticket = open_ticket(desk)
    assert services.sla_sweep(now=at(MON, 9, 31))["first_response_breached"] == 1
    ticket.refresh_from_db()
    assert ticket.first_response_breached


def test_paused_ticket_does_not_breach(desk):
    ticket = open_ticket(desk)
    services.ticket_reply(actor=desk.engineer, ticket=ticket, body="请提供型号", at=at(MON, 9, 10))
    services.ticket_set_status(
        actor=desk.engineer, ticket=ticket, status="waiting_customer", now=at(MON, 9, 15)
    )
    assert services.sla_sweep(now=at(TUE, 17))["resolution_breached"] == 0


def test_customer_reply_resumes_a_ticket_waiting_for_them(desk):
    ticket = open_ticket(desk)
    services.ticket_set_status(
        actor=desk.engineer, ticket=ticket, status="waiting_customer", now=at(MON, 10)
    )
    services.ticket_reply(actor=desk.portal_a, ticket=ticket, body="型号是 HP M404", at=at(MON, 11))
    ticket.refresh_from_db()
    assert ticket.status == Status.IN_PROGRESS
    assert ticket.sla_paused_minutes == 60


def test_workflow_refuses_what_it_does_not_allow(desk):
    ticket = open_ticket(desk)
    with pytest.raises(ValidationError):
        services.ticket_set_status(actor=desk.engineer, ticket=ticket, status="closed")
    services.ticket_set_status(
        actor=desk.engineer, ticket=ticket, status="resolved", now=at(MON, 10)
    )
    services.ticket_set_status(actor=desk.engineer, ticket=ticket, status="closed", now=at(MON, 11))
    for status in ("in_progress", "resolved", "bogus"):
        with pytest.raises(ValidationError):
            services.ticket_set_status(actor=desk.engineer, ticket=ticket, status=status)
    count = TicketEntry.objects.filter(ticket=ticket).count()
    with pytest.raises(ConflictError):
        services.ticket_reply(actor=desk.engineer, ticket=ticket, body="还在吗")
    assert TicketEntry.objects.filter(ticket=ticket).count() == count


def test_import_keeps_time_and_stays_silent(desk):
    ticket = open_ticket(desk, opened=at((2026, 3, 2), 9), imported=True)
    assert ticket.opened_at == at((2026, 3, 2), 9)
    assert ticket.resolution_due_at == at((2026, 3, 2), 14)
    assert not DomainEvent.objects.filter(name="ticket.created", object_id=str(ticket.pk)).exists()
    with pytest.raises(ValidationError):
        open_ticket(desk, opened=dt.datetime(2030, 1, 1, tzinfo=SH))


def test_year_without_data_is_provisional(desk):
    assert not open_ticket(desk).sla_provisional
    bare = contracts.calendar_create(actor=None, name="无节假日数据", is_default=True)
    ticket = open_ticket(desk)
    assert ticket.calendar == bare
    assert ticket.sla_provisional  # 2026 has no holiday data in this calendar
    assert ticket.resolution_due_at == at(MON, 14)  # the weekly pattern still applies


def test_references_must_belong_to_the_customer(desk):
    with pytest.raises(ValidationError) as caught:
        open_ticket(desk, site=desk.site_b, requester=desk.contact_b)
    assert set(caught.value.message_dict) == {"site", "requester"}
    with pytest.raises(ValidationError):
        open_ticket(desk, assignee=desk.portal_a)


def test_escalation_levels_reassign_and_raise_priority(desk):
    escalation_team = factories.team(name="二线支持", members=[desk.manager])
    contracts.sla_policy_update(
        actor=None,
        policy=desk.policy,
        escalations=[
            {"percent": 50, "action": "notify"},
            {
                "percent": 80,
                "action": "reassign",
                "team": escalation_team,
                "assignee": desk.manager,
            },
            {"percent": 100, "action": "raise_priority"},
        ],
    )
    ticket = open_ticket(desk, priority="P3")  # 1440 business minutes = 3 working days
    services.ticket_reply(actor=desk.engineer, ticket=ticket, body="处理中", at=at(MON, 9, 5))
    assert services.sla_sweep(now=at(TUE, 14))["escalated"] == 1  # 12 of 24 hours: 50 %
    ticket.refresh_from_db()
    assert ticket.team is None and ticket.priority == "P3"
    services.sla_sweep(now=at((2026, 11, 25), 14, 30))  # 20.5 h: 85 %
    ticket.refresh_from_db()
    assert (ticket.team, ticket.assignee) == (escalation_team, desk.manager)
    counts = services.sla_sweep(now=at((2026, 11, 26), 9, 30))  # past 24 h: breach
    assert counts == {"first_response_breached": 0, "resolution_breached": 1, "escalated": 1}
    ticket.refresh_from_db()
    assert ticket.priority == "P2" and ticket.resolution_breached
    assert services.sla_sweep(now=at((2026, 11, 26), 10))["escalated"] == 0
    events = DomainEvent.objects.filter(object_id=str(ticket.pk), name__startswith="ticket.sla")
    assert sorted(events.values_list("name", flat=True)) == [
        "ticket.sla_breached",
        "ticket.sla_escalated",
        "ticket.sla_warning",
        "ticket.sla_warning",
    ]


def test_reassign_level_needs_a_target(desk):
    with pytest.raises(ValidationError):
        contracts.sla_policy_update(
            actor=None, policy=desk.policy, escalations=[{"percent": 90, "action": "reassign"}]
        )
