"""The service-desk pages: rendering, scope (404), role (403), the portal, the workflow through
the page, bulk actions, phone intake, SLA badges and the board, query counts."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from onestop.contracts import services as contracts
from onestop.core import services as core_services
from onestop.core.models import AuditEvent
from onestop.servicedesk import selectors, services
from onestop.servicedesk.models import Ticket, TicketEntry

TARGETS = [
    {"priority": "P1", "first_response_minutes": 15, "resolution_minutes": 120},
    {"priority": "P2", "first_response_minutes": 30, "resolution_minutes": 240},
    {"priority": "P3", "first_response_minutes": 60, "resolution_minutes": 480},
    {"priority": "P4", "first_response_minutes": 120, "resolution_minutes": 960},
]


@pytest.fixture
def login(login):
    """Clients that read the pages in English, so the assertions match the msgids."""

    def client_for(user):
        client = login(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        return client

    return client_for


class Desk:
    """Round-the-clock SLA (so due times do not depend on today's date) and three tickets:
    portal_a's own, a colleague's at the same company, and one of customer B."""

    def __init__(self, world) -> None:
        self.world = world
        self.calendar = contracts.calendar_create(
            actor=None, name="7×24", preset="7x24", is_default=True
        )
        self.policy = contracts.sla_policy_create(
            actor=None, name="标准", is_default=True, targets=TARGETS
        )
        self.own = ticket(world, title="打印机卡纸", requester_user=world.portal_a)
        self.colleague = ticket(world, title="同事的VPN问题", requester=world.contact_a)
        self.other = ticket(world, customer=world.customer_b, title="乙方服务器宕机")


def ticket(world, **fields) -> Ticket:
    fields.setdefault("customer", world.customer_a)
    fields.setdefault("title", "邮箱无法登录")
    fields.setdefault("channel", "phone")
    return services.ticket_create(actor=world.dispatcher, **fields)


@pytest.fixture
def desk(world) -> Desk:
    return Desk(world)


def _url(name, obj=None):
    return reverse(name, args=[obj.pk] if obj is not None else [])


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# Rendering -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ticket_list", "ticket_mine", "ticket_board", "ticket_create"])
def test_admin_sees_the_desk_pages(desk, login, name):
    response = login(desk.world.admin).get(_url(name))
    assert response.status_code == 200
    assert b"<html" in response.content


@pytest.mark.parametrize("name", ["ticket_detail", "ticket_edit", "ticket_delete"])
def test_admin_sees_the_ticket_pages(desk, login, name):
    response = login(desk.world.admin).get(_url(name, desk.other))
    assert response.status_code == 200
    assert "乙方服务器宕机" in response.content.decode()


def test_tickets_come_first_in_the_menu(desk, login):
    for who in ("admin", "engineer", "portal_a"):
        page = login(getattr(desk.world, who)).get(reverse("home")).content.decode()
        links = re.findall(r'<nav class="mainnav".*?</nav>', page, re.S)[0]
        assert re.findall(r'href="([^"]+)"', links)[0] == "/tickets/", who
    page = login(desk.world.engineer).get(_url("ticket_detail", desk.own)).content.decode()
    assert '<a href="/tickets/" aria-current="page">' in page


# Scope: another customer's tickets are absent (404) --------------------------------------------


@pytest.mark.parametrize("who", ["engineer", "portal_a", "portal_admin_a"])
@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("ticket_detail", "get"),
        ("ticket_edit", "get"),
        ("ticket_delete", "get"),
        ("ticket_reply", "post"),
        ("ticket_status", "post"),
        ("ticket_rate", "post"),
    ],
)
def test_other_customers_ticket_is_not_found(desk, login, who, name, method):
    client = login(getattr(desk.world, who))
    response = getattr(client, method)(_url(name, desk.other), {"body": "x", "status": "closed"})
    assert response.status_code == 404
    assert "乙方服务器宕机" not in response.content.decode()


@pytest.mark.parametrize("name", ["ticket_list", "ticket_mine", "ticket_board"])
def test_lists_leave_out_other_customers(desk, login, name):
    services.ticket_update(actor=None, ticket=desk.other, assignee=desk.world.engineer)
    page = login(desk.world.engineer).get(_url(name)).content.decode()
    assert "乙方服务器宕机" not in page


def test_filtering_by_an_invisible_customer_shows_nothing_of_it(desk, login):
    response = login(desk.world.engineer).get(
        _url("ticket_list"), {"customer": desk.world.customer_b.pk}
    )
    assert response.status_code == 200
    assert "乙方服务器宕机" not in response.content.decode()


def test_a_colleagues_ticket_is_not_found_for_a_plain_portal_user(desk, login):
    client = login(desk.world.portal_a)
    assert client.get(_url("ticket_detail", desk.colleague)).status_code == 404
    assert client.post(_url("ticket_reply", desk.colleague), {"body": "x"}).status_code == 404


# Role: in scope but not allowed (403) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "name", "method", "target"),
    [
        ("portal_a", "ticket_mine", "get", None),
        ("portal_a", "ticket_board", "get", None),
        ("portal_a", "ticket_bulk", "post", None),
        ("portal_a", "ticket_edit", "get", "own"),
        ("portal_a", "ticket_status", "post", "own"),
        ("portal_admin_a", "ticket_board", "get", None),
        ("portal_admin_a", "ticket_edit", "post", "colleague"),
        ("portal_admin_a", "ticket_delete", "get", "own"),
        ("engineer", "ticket_delete", "get", "own"),
        ("engineer", "ticket_rate", "post", "own"),
        ("dispatcher", "ticket_delete", "post", "own"),
    ],
)
def test_role_without_the_permission_is_refused(desk, login, who, name, method, target):
    args = [getattr(desk, target).pk] if target else []
    client = login(getattr(desk.world, who))
    before = AuditEvent.objects.count()
    data = {"tickets": [desk.own.pk], "status": "resolved", "title": "改", "score": 1}
    response = getattr(client, method)(reverse(name, args=args), data)
    assert response.status_code == 403
    assert AuditEvent.objects.count() == before


# The customer portal -------------------------------------------------------------------------


def test_portal_user_sees_own_tickets_their_admin_the_companys(desk, login):
    page = login(desk.world.portal_a).get(_url("ticket_list")).content.decode()
    assert "打印机卡纸" in page
    assert "同事的VPN问题" not in page and "乙方服务器宕机" not in page
    assert "/tickets/bulk/" not in page and "/tickets/board/" not in page
    page = login(desk.world.portal_admin_a).get(_url("ticket_list")).content.decode()
    assert "打印机卡纸" in page and "同事的VPN问题" in page
    assert "乙方服务器宕机" not in page
    page = login(desk.world.portal_b).get(_url("ticket_list")).content.decode()
    assert "乙方服务器宕机" not in page  # requested by nobody in particular: not portal_b's own


def test_portal_user_opens_a_ticket_in_plain_words(desk, login):
    client = login(desk.world.portal_a)
    page = client.get(_url("ticket_create")).content.decode()
    assert "The whole company" in page and "Urgent: work has stopped" in page
    assert 'name="assignee"' not in page and 'name="customer"' not in page
    response = client.post(
        _url("ticket_create"),
        {
            "title": "会议室投影仪无信号",
            "description": "HDMI 接上没反应",
            "impact": 1,
            "urgency": 1,
        },
    )
    ticket = Ticket.objects.get(title="会议室投影仪无信号")
    assert response.status_code == 302
    assert response["Location"] == _url("ticket_detail", ticket)
    assert ticket.customer == desk.world.customer_a
    assert ticket.channel == "portal"
    assert ticket.requester_user == desk.world.portal_a
    assert ticket.priority == "P1"
    created = AuditEvent.objects.get(object_type="servicedesk.ticket", object_id=str(ticket.pk))
    assert created.actor == desk.world.portal_a and created.source == "ui"

    response = client.post(_url("ticket_create"), {"title": "", "impact": 1, "urgency": 1})
    assert response.status_code == 400
    assert response.context["form"].errors["title"]


def test_portal_reply_works_and_internal_notes_never_reach_the_portal(desk, login):
    engineer = login(desk.world.engineer)
    url = _url("ticket_reply", desk.own)
    engineer.post(url, {"kind": "note", "body": "客户硬盘有坏道，别告诉客户价格"})
    engineer.post(url, {"kind": "reply", "body": "您好，我们下午上门处理"})
    staff_page = engineer.get(_url("ticket_detail", desk.own)).content.decode()
    assert "客户硬盘有坏道" in staff_page and "entry-note" in staff_page

    for who in ("portal_a", "portal_admin_a"):
        page = login(getattr(desk.world, who)).get(_url("ticket_detail", desk.own)).content
        page = page.decode()
        assert "您好，我们下午上门处理" in page
        assert "客户硬盘有坏道" not in page
        assert "Internal note" not in page and "entry-note" not in page
        assert _url("ticket_edit", desk.own) not in page
        assert _url("ticket_status", desk.own) not in page

    portal = login(desk.world.portal_a)
    response = portal.post(url, {"body": "好的，我在办公室等", "kind": "note"})
    assert response.status_code == 302
    entry = TicketEntry.objects.filter(ticket=desk.own).latest("id")
    assert entry.author == desk.world.portal_a
    assert (entry.kind, entry.is_public) == ("reply", True)  # a customer cannot add notes
    assert "好的，我在办公室等" in portal.get(_url("ticket_detail", desk.own)).content.decode()
    response = portal.post(url, {"body": "  "})
    assert response.status_code == 400
    assert response.context["reply_form"].errors["body"]


def test_a_closed_ticket_takes_no_reply(desk, login):
    for status in ("resolved", "closed"):
        services.ticket_set_status(actor=None, ticket=desk.own, status=status)
    client = login(desk.world.portal_a)
    page = client.get(_url("ticket_detail", desk.own)).content.decode()
    assert _url("ticket_reply", desk.own) not in page
    count = TicketEntry.objects.count()
    response = client.post(_url("ticket_reply", desk.own), {"body": "还是不行"})
    assert response.status_code == 400
    assert any("closed" in m for m in _messages(response))
    assert TicketEntry.objects.count() == count


def test_portal_user_rates_a_resolved_ticket_once(desk, login):
    client = login(desk.world.portal_a)
    url = _url("ticket_detail", desk.own)
    assert _url("ticket_rate", desk.own) not in client.get(url).content.decode()
    response = client.post(_url("ticket_rate", desk.own), {"score": 5})
    assert response.status_code == 400  # not resolved yet
    assert any("resolved" in m for m in _messages(response))

    services.ticket_set_status(actor=desk.world.engineer, ticket=desk.own, status="resolved")
    assert _url("ticket_rate", desk.own) in client.get(url).content.decode()
    response = client.post(_url("ticket_rate", desk.own), {"score": 9})
    assert response.status_code == 400
    assert response.context["rating_form"].errors["score"]
    response = client.post(_url("ticket_rate", desk.own), {"score": 4, "comment": "很快"})
    assert response.status_code == 302
    desk.own.refresh_from_db()
    assert (desk.own.csat_score, desk.own.csat_comment) == (4, "很快")
    page = client.get(url).content.decode()
    assert "You rated this ticket 4 of 5" in page
    assert _url("ticket_rate", desk.own) not in page
    staff_page = login(desk.world.engineer).get(url).content.decode()
    assert "4/5" in staff_page and "很快" in staff_page


# The ticket page -----------------------------------------------------------------------------


def test_status_change_through_the_page_follows_the_workflow(desk, login):
    client = login(desk.world.engineer)
    page = client.get(_url("ticket_detail", desk.own)).content.decode()
    buttons = set(re.findall(r'name="status" value="(\w+)"', page))
    assert buttons == {
        "assigned",
        "in_progress",
        "waiting_customer",
        "waiting_vendor",
        "visit_scheduled",
        "resolved",
    }
    response = client.post(_url("ticket_status", desk.own), {"status": "in_progress"}, follow=True)
    desk.own.refresh_from_db()
    assert desk.own.status == "in_progress"
    assert any("In progress" in m for m in _messages(response))
    assert "New → In progress" in response.content.decode()  # the timeline's event

    events = AuditEvent.objects.count()
    response = client.post(_url("ticket_status", desk.own), {"status": "closed"}, follow=True)
    desk.own.refresh_from_db()
    assert desk.own.status == "in_progress"
    assert AuditEvent.objects.count() == events
    assert any("cannot go from" in m for m in _messages(response))


def test_staff_reply_can_set_the_next_status_and_counts_as_first_response(desk, login):
    client = login(desk.world.engineer)
    response = client.post(
        _url("ticket_reply", desk.own),
        {"kind": "reply", "body": "已远程修复，请确认", "status": "resolved"},
    )
    assert response.status_code == 302
    desk.own.refresh_from_db()
    assert desk.own.status == "resolved"
    assert desk.own.first_response_at is not None
    response = client.post(
        _url("ticket_reply", desk.own), {"kind": "call", "body": "", "status": "bogus"}
    )
    assert response.status_code == 400
    assert set(response.context["reply_form"].errors) == {"body", "status"}


def test_logged_call_names_the_caller(desk, login):
    client = login(desk.world.dispatcher)
    client.post(
        _url("ticket_reply", desk.colleague),
        {"kind": "call", "body": "客户来电催促", "contact": desk.world.contact_a.pk},
    )
    entry = TicketEntry.objects.filter(ticket=desk.colleague).latest("id")
    assert (entry.kind, entry.author_contact) == ("call", desk.world.contact_a)
    page = client.get(_url("ticket_detail", desk.colleague)).content.decode()
    assert "with 张伟" in page


def test_edit_limits_requester_and_site_to_the_tickets_customer(desk, login):
    client = login(desk.world.admin)
    page = client.get(_url("ticket_edit", desk.own)).content.decode()
    assert "张伟" in page and "A 总部" in page
    assert "李娜" not in page and "B 工厂" not in page
    data = {
        "title": "打印机卡纸（三楼）",
        "type": "incident",
        "impact": 1,
        "urgency": 2,
        "requester": desk.world.contact_b.pk,
    }
    response = client.post(_url("ticket_edit", desk.own), data)
    assert response.status_code == 400
    assert response.context["form"].errors["requester"]
    data |= {"requester": desk.world.contact_a.pk, "site": desk.world.site_a.pk}
    response = client.post(_url("ticket_edit", desk.own), data)
    assert response.status_code == 302
    desk.own.refresh_from_db()
    assert desk.own.title == "打印机卡纸（三楼）"
    assert desk.own.priority == "P2"  # from impact × urgency
    assert desk.own.requester == desk.world.contact_a
    update = AuditEvent.objects.filter(
        object_type="servicedesk.ticket", object_id=str(desk.own.pk), action="update"
    ).latest("id")
    assert update.changes["priority"] == ["P3", "P2"]
    page = client.get(_url("ticket_detail", desk.own)).content.decode()
    assert reverse("audit_detail", args=[update.pk]) in page


def test_ticket_page_shows_the_sla_in_the_users_time_zone(desk, login):
    core_services.user_update(actor=None, user=desk.world.admin, time_zone="America/New_York")
    due = desk.own.resolution_due_at.astimezone(ZoneInfo("America/New_York"))
    page = login(desk.world.admin).get(_url("ticket_detail", desk.own)).content.decode()
    assert due.strftime("%Y-%m-%d %H:%M") in page
    assert "标准" in page and "7×24" in page


def test_admin_deletes_a_ticket(desk, login):
    response = login(desk.world.admin).post(_url("ticket_delete", desk.own))
    assert response.status_code == 302
    assert not Ticket.objects.filter(pk=desk.own.pk).exists()


# Phone intake --------------------------------------------------------------------------------


def test_phone_intake_creates_the_ticket_and_logs_the_call(desk, login):
    client = login(desk.world.dispatcher)
    page = client.get(_url("ticket_create"), {"customer": desk.world.customer_a.pk})
    page = page.content.decode()
    assert "张伟" in page and "李娜" not in page
    response = client.post(
        _url("ticket_create"),
        {
            "customer": desk.world.customer_a.pk,
            "requester": desk.world.contact_a.pk,
            "channel": "phone",
            "title": "财务室电脑蓝屏",
            "description": "开机后蓝屏",
            "impact": 2,
            "urgency": 1,
            "call_notes": "已指导重启，仍蓝屏，需上门",
            "type": "incident",
        },
    )
    ticket = Ticket.objects.get(title="财务室电脑蓝屏")
    assert response.status_code == 302
    assert (ticket.channel, ticket.priority, ticket.requester) == (
        "phone",
        "P2",
        desk.world.contact_a,
    )
    (call,) = TicketEntry.objects.filter(ticket=ticket)
    assert (call.kind, call.body, call.author_contact) == (
        "call",
        "已指导重启，仍蓝屏，需上门",
        desk.world.contact_a,
    )
    assert call.author == desk.world.dispatcher
    assert ticket.first_response_at == call.created_at


def test_intake_reloads_the_callers_of_the_picked_customer(desk, login):
    response = login(desk.world.dispatcher).get(
        _url("ticket_create"),
        {"customer": desk.world.customer_a.pk},
        headers={"HX-Request": "true"},
    )
    assert 'id="ticket-customer-fields"' in response.content.decode()
    assert "张伟" in response.content.decode()
    assert (
        login(desk.world.engineer)
        .get(_url("ticket_create"), {"customer": desk.world.customer_b.pk})
        .status_code
        == 404
    )


def test_intake_rejects_a_caller_of_another_customer(desk, login):
    response = login(desk.world.admin).post(
        _url("ticket_create"),
        {
            "customer": desk.world.customer_a.pk,
            "requester": desk.world.contact_b.pk,
            "channel": "email",
            "title": "错配",
            "impact": 2,
            "urgency": 2,
            "type": "incident",
        },
    )
    assert response.status_code == 400
    assert response.context["form"].errors["requester"]
    assert not Ticket.objects.filter(title="错配").exists()


# The queue and bulk actions ------------------------------------------------------------------


def test_queue_filters(desk, login):
    world = desk.world
    services.ticket_update(actor=None, ticket=desk.own, assignee=world.engineer, priority="P1")
    services.ticket_set_status(actor=None, ticket=desk.colleague, status="resolved")
    client = login(world.engineer)

    def titles(**params):
        page = client.get(_url("ticket_list"), params).content.decode()
        return {t for t in ("打印机卡纸", "同事的VPN问题") if t in page}

    assert titles() == {"打印机卡纸"}  # open tickets by default
    assert titles(status="all") == {"打印机卡纸", "同事的VPN问题"}
    assert titles(status="resolved") == {"同事的VPN问题"}
    assert titles(assignee="me") == {"打印机卡纸"}
    assert titles(assignee="none", status="all") == {"同事的VPN问题"}
    assert titles(priority="P1", status="all") == {"打印机卡纸"}
    assert titles(q="dayinji") == {"打印机卡纸"}
    assert titles(breached="yes", status="all") == set()


def test_htmx_filter_returns_only_the_rows_and_the_bulk_bar(desk, login):
    response = login(desk.world.admin).get(
        _url("ticket_list"), {"q": "打印机"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert "<html" not in body
    assert "打印机卡纸" in body and 'action="/tickets/bulk/"' in body
    assert "HX-Request" in response["Vary"]


def test_keyset_pages_walk_the_whole_queue(desk, login):
    for n in range(55):
        ticket(desk.world, title=f"分页工单{n:03d}")
    client = login(desk.world.admin)
    seen: list[str] = []
    url = _url("ticket_list") + "?q=分页"
    while url:
        page = client.get(url).content.decode()
        seen += re.findall(r"分页工单\d{3}", page)
        match = re.search(r'href="(\?[^"]*cursor=[^"]+)"', page)
        url = _url("ticket_list") + match.group(1).replace("&amp;", "&") if match else ""
    assert seen == [f"分页工单{n:03d}" for n in reversed(range(55))]


def test_bulk_assign_audits_each_ticket(desk, login):
    world = desk.world
    response = login(world.dispatcher).post(
        _url("ticket_bulk"),
        {
            "tickets": [desk.own.pk, desk.colleague.pk],
            "assignee": world.engineer.pk,
            "team": world.team_a.pk,
            "next": "/tickets/?priority=P3",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/tickets/?priority=P3"
    assert any("2 tickets updated" in m for m in _messages(response))
    for item in (desk.own, desk.colleague):
        item.refresh_from_db()
        assert (item.assignee, item.team, item.status) == (world.engineer, world.team_a, "assigned")
        event = AuditEvent.objects.filter(
            object_type="servicedesk.ticket", object_id=str(item.pk), action="update"
        ).latest("id")
        assert event.actor == world.dispatcher and event.source == "ui"
        assert event.changes["assignee"] == [None, world.engineer.pk]


def test_bulk_status_reports_each_ticket_the_workflow_refuses(desk, login):
    services.ticket_set_status(actor=None, ticket=desk.colleague, status="resolved")
    response = login(desk.world.engineer).post(
        _url("ticket_bulk"),
        {"tickets": [desk.own.pk, desk.colleague.pk], "status": "closed"},
        follow=True,
    )
    desk.own.refresh_from_db()
    desk.colleague.refresh_from_db()
    assert (desk.own.status, desk.colleague.status) == ("new", "closed")
    messages = _messages(response)
    assert any(m.startswith(f"#{desk.own.pk}: ") and "cannot go from" in m for m in messages)
    assert any("1 ticket updated" in m for m in messages)


def test_bulk_needs_a_change_and_tickets_in_scope(desk, login):
    client = login(desk.world.engineer)
    response = client.post(_url("ticket_bulk"), {"tickets": [desk.own.pk]}, follow=True)
    assert any("Choose an assignee" in m for m in _messages(response))
    response = client.post(_url("ticket_bulk"), {"status": "resolved"}, follow=True)
    assert "Select at least one ticket." in _messages(response)
    response = client.post(
        _url("ticket_bulk"), {"tickets": [desk.other.pk], "status": "resolved"}, follow=True
    )
    desk.other.refresh_from_db()
    assert desk.other.status == "new"
    assert f"Ticket {desk.other.pk} is not available." in _messages(response)


# SLA badges, "my work", the board ------------------------------------------------------------


def _aged(world, minutes, *, title, priority="P2", first_response=True, **fields):
    """A ticket opened `minutes` ago on the 7×24 calendar, answered within its first target."""
    opened = timezone.now() - dt.timedelta(minutes=minutes)
    item = ticket(world, title=title, priority=priority, opened_at=opened, **fields)
    if first_response:
        services.ticket_reply(
            actor=world.engineer, ticket=item, body="收到", at=opened + dt.timedelta(minutes=5)
        )
    return item


@pytest.fixture
def sla_world(desk):
    world = desk.world
    desk.fresh = _aged(world, 10, title="刚开的工单")
    desk.risky = _aged(world, 200, title="快到期的工单")  # 200 of 240 minutes used
    desk.late = _aged(world, 300, title="已超时的工单", assignee=world.engineer)
    desk.silent = _aged(world, 40, title="没人回复的工单", first_response=False)
    desk.paused = _aged(world, 100, title="等客户的工单", assignee=world.engineer)
    services.ticket_set_status(actor=None, ticket=desk.paused, status="waiting_customer")
    return desk


def test_sla_states(sla_world):
    desk = sla_world
    tickets = [desk.fresh, desk.risky, desk.late, desk.silent, desk.paused]
    states = selectors.ticket_sla_states(tickets=tickets, now=timezone.now())
    assert [states[t.pk] for t in tickets] == ["ok", "at_risk", "breached", "breached", "paused"]
    services.ticket_set_status(actor=None, ticket=desk.fresh, status="resolved")
    assert selectors.ticket_sla_states(tickets=[desk.fresh], now=timezone.now()) == {
        desk.fresh.pk: "met"
    }


def test_queue_shows_sla_badges_with_due_times(sla_world, login):
    page = login(sla_world.world.admin).get(_url("ticket_list")).content.decode()
    for state in ("sla-ok", "sla-at_risk", "sla-breached", "sla-paused"):
        assert state in page
    due = timezone.localtime(sla_world.risky.resolution_due_at, ZoneInfo("Asia/Shanghai"))
    assert due.strftime("%m-%d %H:%M") in page or due.strftime("%Y-%m-%d %H:%M") in page


def test_board_columns(sla_world, login):
    response = login(sla_world.world.dispatcher).get(_url("ticket_board"))
    columns = {
        key: [t.title for t in tickets] for key, _l, tickets, _e in response.context["columns"]
    }
    assert "刚开的工单" in columns["unassigned"] and "已超时的工单" not in columns["unassigned"]
    assert columns["at_risk"] == ["快到期的工单"]
    assert set(columns["breached"]) == {"已超时的工单", "没人回复的工单"}


def test_board_quick_assign(sla_world, login):
    world = sla_world.world
    response = login(world.dispatcher).post(
        _url("ticket_bulk"),
        {"tickets": [sla_world.risky.pk], "assignee": "me", "next": _url("ticket_board")},
    )
    assert response["Location"] == _url("ticket_board")
    sla_world.risky.refresh_from_db()
    assert sla_world.risky.assignee == world.dispatcher


def test_my_work_lists_my_open_tickets_due_first(sla_world, login):
    world = sla_world.world
    services.ticket_update(actor=None, ticket=sla_world.risky, assignee=world.engineer)
    response = login(world.engineer).get(_url("ticket_mine"))
    titles = [t.title for t in response.context["page"].rows]
    # Due soonest first; the paused ticket has no due time and comes last.
    assert titles == ["已超时的工单", "快到期的工单", "等客户的工单"]


# Query counts: the same whatever the number of rows --------------------------------------------


def _queries(client, url) -> int:
    client.get(url)  # warm up: session, caches
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("name", ["ticket_list", "ticket_mine", "ticket_board"])
@pytest.mark.parametrize("who", ["admin", "engineer"])
def test_desk_pages_run_a_fixed_number_of_queries(
    sla_world, login, django_assert_max_num_queries, name, who
):
    world = sla_world.world
    user = getattr(world, who)
    # A second calendar and policy, so rows on both run through the SLA computation.
    calendar = contracts.calendar_create(actor=None, name="5×12", preset="5x12")
    policy = contracts.sla_policy_create(actor=None, name="金牌", targets=TARGETS)
    contract = contracts.contract_create(
        actor=None,
        customer=world.customer_a,
        number="CT-1",
        name="甲方运维",
        start_date=dt.date(2026, 1, 1),
        sla_policy=policy,
        calendar=calendar,
    )

    def add(count):
        for n in range(count):
            _aged(world, 20 + n * 7, title=f"批量{n}", assignee=user, contract=contract)
            _aged(world, 20 + n * 7, title=f"批量乙{n}", assignee=user)

    add(2)
    client = login(user)
    few = _queries(client, _url(name))
    add(40)
    assert _queries(client, _url(name)) == few
    with django_assert_max_num_queries(16):
        client.get(_url(name))


def test_portal_list_runs_a_fixed_number_of_queries(desk, login, django_assert_max_num_queries):
    client = login(desk.world.portal_admin_a)
    few = _queries(client, _url("ticket_list"))
    for n in range(30):
        ticket(desk.world, title=f"门户{n}", requester=desk.world.contact_a)
    assert _queries(client, _url("ticket_list")) == few


def test_audit_log_links_to_tickets_and_contracts(world, client):
    ticket = services.ticket_create(
        actor=world.dispatcher, customer=world.customer_a, title="审计链接", channel="phone"
    )
    contract = contracts.contract_create(
        actor=world.admin,
        customer=world.customer_a,
        number="LINK-1",
        name="链接合同",
        start_date=dt.date(2026, 1, 1),
    )
    client.force_login(world.admin)
    page = client.get(reverse("audit_list")).content.decode()
    assert reverse("ticket_detail", args=[ticket.pk]) in page
    assert reverse("contract_detail", args=[contract.pk]) in page
