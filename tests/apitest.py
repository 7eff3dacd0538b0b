"""Generic API test support: resources are declared once, the tests in
tests/core/test_api_resources.py and test_api_scoping.py walk every declaration.

Each declaration says how to make an object that belongs to a given customer, a valid create
payload, a valid patch, the list filters to check, and which role is refused a write.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from onestop.assets import services as asset_services
from onestop.contracts import services as contract_services
from onestop.core import services
from onestop.core.models import Customer
from onestop.monitoring import services as monitoring_services
from onestop.monitoring.models import Check, DiscoveryJob, SnmpTrap
from onestop.monitoring.traps import ReceivedTrap
from onestop.notify import services as notify_services
from onestop.notify.models import Delivery, Rule
from onestop.servicedesk import services as ticket_services
from onestop.servicedesk.models import Mailbox
from tests.monitoring.results import record_result


def api_client(user) -> Client:
    """A client authenticated with a real personal API token (the Bearer path)."""
    _token, raw = services.api_token_create(user=user, name="tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@dataclass
class Multipart:
    """A multipart form body (file uploads) instead of JSON."""

    fields: dict[str, Any]


def call(client: Client, method: str, path: str, body: Any = None, **query) -> Any:
    kwargs: dict[str, Any] = {}
    if isinstance(body, Multipart):
        kwargs = {"data": body.fields}
    elif body is not None:
        kwargs = {"data": json.dumps(body), "content_type": "application/json"}
    if query:
        path = path + "?" + "&".join(f"{k}={v}" for k, v in query.items())
    response = getattr(client, method)(path, **kwargs)
    response.body = response.json() if response.content else None
    return response


@dataclass
class Resource:
    """One API resource under /api/v1."""

    name: str
    path: str
    label: str  # the model's label, as audit events name it
    make: Callable[[Any, Customer], Any]  # (world, customer) -> object owned by that customer
    create: Callable[[Any], dict] | None = None  # (world) -> valid payload for customer A
    patch: dict | None = None
    patch_check: Callable[[Any], bool] | None = None
    filters: list[tuple[str, Callable[[Any], Any]]] = field(default_factory=list)
    refused_writer: str | None = "portal_a"  # a role inside the scope that may not write
    refused_create: bool = True  # False: that role may create (portal users open tickets)
    deletable: bool = True
    customer_scoped: bool = True  # False: the provider's own objects (teams, calendars, SLAs)
    viewer: str = "engineer"  # a role that may read it (provider settings: a dispatcher)
    required: str | None = None  # a required create field, where "name" or "title" is not
    # Routes under /{id}/...: (suffix, method) -> valid body maker (world) or None.
    subroutes: dict[tuple[str, str], Callable[[Any], Any] | None] = field(default_factory=dict)

    def item(self, obj) -> str:
        return f"{self.path}/{obj.pk}"


_n = iter(range(1, 10**6))


def _make_customer(world, customer):
    return customer


def _make_site(world, customer):
    return services.site_create(actor=None, customer=customer, name=f"站点{next(_n)}")


def _make_contact(world, customer):
    return services.contact_create(actor=None, customer=customer, name=f"王芳{next(_n)}")


def _make_team(world, customer):
    return services.team_create(actor=None, name=f"团队{next(_n)}", customers=[customer])


def _make_user(world, customer):
    return services.user_create(
        actor=None, username=f"cu{next(_n)}", password=None, role="customer", customer=customer
    )


def _make_audit_event(world, customer):
    contact = _make_contact(world, customer)
    return services.AuditEvent.objects.filter(
        object_type="core.contact", object_id=str(contact.pk)
    ).latest("id")


RESOURCES = [
    Resource(
        name="customers",
        label="core.customer",
        path="/api/v1/customers",
        make=lambda w, c: services.customer_create(
            actor=None, name=f"子公司{next(_n)}", short_code=f"S{next(_n):05d}", parent=c
        ),
        create=lambda w: {
            "name": "上海新客户",
            "short_code": "NEW1",
            "industry": "finance",
            "service_lines": ["desktop", "cloud"],
        },
        patch={"status": "suspended", "notes": "暂停服务"},
        patch_check=lambda obj: obj.status == "suspended",
        filters=[("parent_id", lambda w: w.customer_a.pk), ("q", lambda w: "shjf")],
        refused_writer="engineer",
    ),
    Resource(
        name="sites",
        label="core.site",
        path="/api/v1/sites",
        make=_make_site,
        create=lambda w: {"customer_id": w.customer_a.pk, "name": "浦东机房", "city": "上海"},
        patch={"address": "上海市浦东新区张江路 1 号"},
        patch_check=lambda obj: obj.address.startswith("上海市"),
        filters=[("customer_id", lambda w: w.customer_a.pk), ("q", lambda w: "总部")],
    ),
    Resource(
        name="contacts",
        label="core.contact",
        path="/api/v1/contacts",
        make=_make_contact,
        create=lambda w: {
            "customer_id": w.customer_a.pk,
            "site_id": w.site_a.pk,
            "name": "赵敏",
            "email": "zhao.min@example.cn",
            "is_vip": True,
        },
        patch={"phone": "+86 138 0000 0000", "is_vip": True},
        patch_check=lambda obj: obj.is_vip,
        filters=[("customer_id", lambda w: w.customer_a.pk), ("q", lambda w: "zw")],
    ),
    Resource(
        name="teams",
        label="core.team",
        path="/api/v1/teams",
        make=_make_team,
        create=lambda w: {
            "name": "网络运维组",
            "member_ids": [w.engineer.pk],
            "customer_ids": [w.customer_a.pk],
        },
        patch={"description": "负责网络与服务器"},
        patch_check=lambda obj: obj.description == "负责网络与服务器",
        filters=[("q", lambda w: "A")],
        refused_writer="engineer",
        customer_scoped=False,
    ),
    Resource(
        name="users",
        label="core.user",
        path="/api/v1/users",
        make=_make_user,
        create=lambda w: {
            "username": "new.portal",
            "password": "a-Long-enough-pass-42",
            "role": "customer",
            "customer_id": w.customer_a.pk,
            "display_name": "新门户用户",
        },
        patch={"display_name": "改名", "is_active": False},
        patch_check=lambda obj: obj.is_active is False,
        filters=[("role", lambda w: "engineer"), ("customer_id", lambda w: w.customer_a.pk)],
        refused_writer="engineer",
    ),
    Resource(
        name="audit-events",
        label="core.auditevent",
        path="/api/v1/audit-events",
        make=_make_audit_event,
        filters=[
            ("object_type", lambda w: "core.contact"),
            ("customer_id", lambda w: w.customer_a.pk),
        ],
        refused_writer=None,
        deletable=False,
    ),
]


def _make_calendar(world, customer):
    return contract_services.calendar_create(
        actor=None, name=f"{customer.short_code} 日历{next(_n)}"
    )


def _make_policy(world, customer):
    return contract_services.sla_policy_create(
        actor=None,
        name=f"{customer.short_code} SLA{next(_n)}",
        targets=[{"priority": "P2", "first_response_minutes": 30, "resolution_minutes": 240}],
    )


def _make_contract(world, customer):
    n = next(_n)
    return contract_services.contract_create(
        actor=None,
        customer=customer,
        number=f"{customer.short_code}-{n}",
        name=f"桌面运维合同{n}",
        start_date=dt.date(2026, 1, 1),
        service_lines=["desktop"],
    )


RESOURCES += [
    Resource(
        name="calendars",
        label="contracts.businesscalendar",
        path="/api/v1/calendars",
        make=_make_calendar,
        create=lambda w: {"name": "上海 5×8", "preset": "5x8"},
        patch={"weekly_hours": [[[480, 1080]]] * 5 + [[], []]},
        patch_check=lambda obj: obj.preset == "custom",
        filters=[("q", lambda w: "AAA")],
        refused_writer="engineer",
        customer_scoped=False,
        subroutes={
            ("days", "get"): None,
            ("days", "put"): lambda w: {"date": "2026-10-10", "kind": "workday"},
            ("import-chinese", "post"): lambda w: {"years": [2026]},
            ("due", "post"): lambda w: {"start": "2026-09-30T17:00:00+08:00", "minutes": 240},
        },
    ),
    Resource(
        name="sla-policies",
        label="contracts.slapolicy",
        path="/api/v1/sla-policies",
        make=_make_policy,
        create=lambda w: {
            "name": "金牌 SLA",
            "targets": [
                {"priority": "P1", "first_response_minutes": 15, "resolution_minutes": 240},
                {"priority": "P3", "first_response_minutes": 120, "resolution_minutes": 1440},
            ],
            "escalations": [
                {"percent": 75, "action": "notify"},
                {"percent": 100, "action": "reassign", "team_id": w.team_a.pk},
            ],
        },
        patch={"description": "7×24 响应"},
        patch_check=lambda obj: obj.description == "7×24 响应",
        filters=[("q", lambda w: "AAA")],
        refused_writer="engineer",
        customer_scoped=False,
    ),
    Resource(
        name="contracts",
        label="contracts.contract",
        path="/api/v1/contracts",
        make=_make_contract,
        create=lambda w: {
            "customer_id": w.customer_a.pk,
            "number": "ht-2026-001",
            "name": "2026 年度桌面外包",
            "start_date": "2026-01-01",
            "end_date": "2026-12-31",
            "pricing": "per_seat",
            "unit_price": "300.00",
            "quantity": 120,
            "site_ids": [w.site_a.pk],
            "service_lines": ["desktop", "remote_3a"],
        },
        patch={"status": "active", "is_customer_default": True},
        patch_check=lambda obj: obj.status == "active",
        filters=[("customer_id", lambda w: w.customer_a.pk), ("q", lambda w: "AAA")],
        refused_writer="engineer",
    ),
]


def _make_ticket(world, customer):
    n = next(_n)
    return ticket_services.ticket_create(
        actor=None,
        customer=customer,
        title=f"{customer.short_code} 电脑蓝屏 {n}",
        channel="phone",
        requester_user=world.portal_a if customer == world.customer_a else None,
    )


RESOURCES += [
    Resource(
        name="tickets",
        path="/api/v1/tickets",
        label="servicedesk.ticket",
        make=_make_ticket,
        create=lambda w: {
            "customer_id": w.customer_a.pk,
            "title": "财务部打印机卡纸",
            "description": "三楼财务部 HP 打印机卡纸，急用",
            "site_id": w.site_a.pk,
            "requester_id": w.contact_a.pk,
            "impact": 2,
            "urgency": 1,
        },
        patch={"priority": "P1", "assignee_id": None},
        patch_check=lambda obj: obj.priority == "P1",
        filters=[("customer_id", lambda w: w.customer_a.pk), ("q", lambda w: "AAA")],
        refused_writer="portal_a",
        refused_create=False,
        subroutes={
            ("replies", "get"): None,
            ("replies", "post"): lambda w: {"body": "您好，工程师已出发"},
            ("satisfaction", "post"): lambda w: {"score": 5, "comment": "很快"},
            ("merge", "post"): lambda w: {"target_id": _make_ticket(w, w.customer_a).pk},
            ("attachments", "get"): None,
            ("attachments", "post"): lambda w: Multipart(
                {"file": SimpleUploadedFile("截图.png", b"\x89PNG fake", "image/png")}
            ),
        },
    ),
]


def _make_time_entry(world, customer):
    return ticket_services.time_entry_create(
        actor=world.admin,
        ticket=_make_ticket(world, customer),
        minutes=30,
        note="远程处理",
        billable=customer == world.customer_a,
    )


def _make_article(world, customer):
    return ticket_services.knowledge_article_create(
        actor=world.admin,
        title=f"{customer.short_code} 打印机驱动安装指南 {next(_n)}",
        body="1. 下载驱动 2. 安装",
        visibility="selected",
        is_published=True,
        customers=[customer],
    )


def _make_canned_reply(world, customer):
    # Shared with the team serving the customer: staff of other teams must not see it.
    team = world.team_a if customer == world.customer_a else world.team_b
    return ticket_services.canned_reply_create(
        actor=world.admin,
        title=f"{customer.short_code} 常用回复 {next(_n)}",
        body="您好",
        team=team,
    )


def _make_recurring(world, customer):
    return ticket_services.recurring_ticket_create(
        actor=None,
        customer=customer,
        title=f"{customer.short_code} 每月备份检查 {next(_n)}",
        frequency="monthly",
        day_of_month=1,
        time_of_day=dt.time(9, 0),
    )


def _make_visit(world, customer):
    engineer = world.engineer if customer == world.customer_a else world.other_engineer
    return ticket_services.visit_schedule(
        actor=world.admin,
        ticket=_make_ticket(world, customer),
        engineer=engineer,
        scheduled_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
    )


def _ticket_awaiting_visit(world):
    """A ticket already with its engineer and waiting for a visit: booking one changes only the
    visit, so the create is one audit event (the ticket's own changes are tested elsewhere)."""
    ticket = _make_ticket(world, world.customer_a)
    ticket_services.ticket_update(actor=None, ticket=ticket, assignee=world.engineer)
    return ticket_services.ticket_set_status(actor=None, ticket=ticket, status="visit_scheduled")


SIGNATURE = [[[10, 10], [200, 120], [400, 60]]]

RESOURCES += [
    Resource(
        name="visits",
        path="/api/v1/visits",
        label="servicedesk.visit",
        make=_make_visit,
        create=lambda w: {
            "ticket_id": _ticket_awaiting_visit(w).pk,
            "engineer_id": w.engineer.pk,
            "scheduled_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat(),
            "planned_minutes": 90,
            "instructions": "更换三楼打印机硒鼓",
        },
        patch={"planned_minutes": 60},
        patch_check=lambda visit: visit.planned_minutes == 60,
        filters=[("engineer_id", lambda w: w.engineer.pk)],
        refused_writer="portal_admin_a",
        deletable=False,
        subroutes={
            ("check-in", "post"): None,
            ("sign-off", "post"): lambda w: {
                "work_done": "已更换硒鼓",
                "signer_name": "张伟",
                "signature": SIGNATURE,
            },
            ("cancel", "post"): lambda w: {"reason": "客户改期"},
        },
    ),
    Resource(
        name="time-entries",
        path="/api/v1/time-entries",
        label="servicedesk.timeentry",
        make=_make_time_entry,
        create=lambda w: {
            "ticket_id": _make_ticket(w, w.customer_a).pk,
            "minutes": 45,
            "kind": "onsite",
            "note": "上门更换硬盘",
        },
        filters=[("billable", lambda w: "true")],
        refused_writer="portal_admin_a",
        refused_create=True,
    ),
    Resource(
        name="kb-articles",
        path="/api/v1/kb-articles",
        label="servicedesk.knowledgearticle",
        make=_make_article,
        create=lambda w: {
            "title": "VPN 连接指南",
            "body": "打开客户端，输入账号……",
            "category": "网络",
            "visibility": "all_customers",
            "is_published": True,
        },
        patch={"category": "远程办公"},
        patch_check=lambda obj: obj.category == "远程办公",
        filters=[("q", lambda w: "AAA")],
        refused_writer="portal_admin_a",
        customer_scoped=False,  # the provider's knowledge: all staff read it
    ),
    Resource(
        name="canned-replies",
        path="/api/v1/canned-replies",
        label="servicedesk.cannedreply",
        make=_make_canned_reply,
        create=lambda w: {"title": "重启打印机", "body": "请先关闭打印机电源，30 秒后再打开。"},
        patch={"body": "请按住电源键 10 秒。"},
        patch_check=lambda obj: obj.body == "请按住电源键 10 秒。",
        filters=[("q", lambda w: "AAA")],
        refused_writer="sales",
    ),
    Resource(
        name="recurring-tickets",
        path="/api/v1/recurring-tickets",
        label="servicedesk.recurringticket",
        make=_make_recurring,
        create=lambda w: {
            "customer_id": w.customer_a.pk,
            "title": "每周服务器巡检",
            "frequency": "weekly",
            "weekday": 0,
            "time_of_day": "10:00:00",
        },
        patch={"is_active": False},
        patch_check=lambda obj: obj.is_active is False,
        filters=[("customer_id", lambda w: w.customer_a.pk)],
        refused_writer="sales",
    ),
]


def _make_channel(world, customer):
    return notify_services.channel_create(
        actor=None,
        name=f"{customer.short_code} 值班群 {next(_n)}",
        kind="webhook",
        url="http://127.0.0.1:9/hooks/x",
        secret="s3cret",
    )


def _make_rule(world, customer):
    return notify_services.rule_create(
        actor=None,
        name=f"{customer.short_code} 超时告警 {next(_n)}",
        channel=_make_channel(world, customer),
        events=["ticket.sla_breached"],
        customer=customer,
    )


def _make_delivery(world, customer):
    # The log is written only by the dispatcher; a row stands for one it recorded.
    return Delivery.objects.create(
        channel=_make_channel(world, customer),
        event_name="ticket.sla_breached",
        object_type="servicedesk.ticket",
        object_id=str(next(_n)),
        customer_id=customer.pk,
        title=f"SLA breached: {customer.short_code}",
        state="sent" if customer == world.customer_a else "failed",
    )


RESOURCES += [
    Resource(
        name="notification-channels",
        path="/api/v1/notification-channels",
        label="notify.channel",
        make=_make_channel,
        create=lambda w: {
            "name": "运维值班钉钉群",
            "kind": "dingtalk",
            "url": "https://oapi.dingtalk.com/robot/send?access_token=abc",
            "secret": "SEC123",
        },
        patch={"is_active": False},
        patch_check=lambda obj: obj.is_active is False,
        refused_writer="dispatcher",
        customer_scoped=False,
        viewer="dispatcher",
        subroutes={("test", "post"): None},
    ),
    Resource(
        name="notification-rules",
        path="/api/v1/notification-rules",
        label="notify.rule",
        make=_make_rule,
        create=lambda w: {
            "name": "P1 工单进群",
            "channel_id": _make_channel(w, w.customer_a).pk,
            "events": ["ticket.created", "ticket.sla_warning"],
            "priorities": ["P1"],
        },
        patch={"language": "en"},
        patch_check=lambda obj: obj.language == "en",
        filters=[("channel_id", lambda w: Rule.objects.order_by("id").first().channel_id)],
        refused_writer="dispatcher",
        customer_scoped=False,
        viewer="dispatcher",
    ),
    Resource(
        name="deliveries",
        path="/api/v1/deliveries",
        label="notify.delivery",
        make=_make_delivery,
        filters=[("state", lambda w: "sent")],
        refused_writer=None,
        deletable=False,
    ),
]


def _make_mailbox(world, customer):
    return ticket_services.mailbox_create(
        actor=None,
        name=f"{customer.short_code} 服务台{next(_n)}",
        address=f"support{next(_n)}@{customer.short_code.lower()}.example",
        imap_host="imap.example",
        imap_username="support",
        password="secret",
    )


def _make_inbound_message(world, customer):
    """A mail from a contact of `customer`, filed as a ticket through a mailbox of its own."""
    code, n = customer.short_code.lower(), next(_n)
    mailbox = Mailbox.objects.filter(address=f"support@{code}.example").first()
    if mailbox is None:
        mailbox = ticket_services.mailbox_create(
            actor=None,
            name=f"{code} 服务台",
            address=f"support@{code}.example",
            imap_host="imap.example",
            imap_username="support",
            password="secret",
        )
    services.contact_create(
        actor=None, customer=customer, name=f"发件人{n}", email=f"u{n}@{code}.cn"
    )
    raw = (
        f"From: u{n}@{code}.cn\r\nTo: support@{code}.example\r\n"
        f"Subject: {customer.short_code} 邮件 {n}\r\nMessage-ID: <api{n}@{code}.cn>\r\n"
        "\r\n电脑坏了\r\n"
    ).encode()
    return ticket_services.inbound_mail_process(mailbox=mailbox, raw=raw)


RESOURCES += [
    Resource(
        name="mailboxes",
        path="/api/v1/mailboxes",
        label="servicedesk.mailbox",
        make=_make_mailbox,
        create=lambda w: {
            "name": "上海服务台",
            "address": "support@msp.example",
            "imap_host": "imap.msp.example",
            "imap_username": "support@msp.example",
            "password": "imap-secret",
            "team_id": w.team_a.pk,
            "default_priority": "P2",
        },
        patch={"processed_folder": "已处理"},
        patch_check=lambda obj: obj.processed_folder == "已处理",
        filters=[("q", lambda w: "AAA")],
        refused_writer="engineer",
        customer_scoped=False,  # the provider's support addresses
    ),
    Resource(
        name="inbound-messages",
        path="/api/v1/inbound-messages",
        label="servicedesk.inboundmessage",
        make=_make_inbound_message,
        filters=[
            ("mailbox_id", lambda w: Mailbox.objects.get(address="support@aaa.example").pk),
            ("q", lambda w: "AAA"),
        ],
        refused_writer=None,
        deletable=False,
        subroutes={
            ("link", "post"): lambda w: {"customer_id": w.customer_a.pk, "create_contact": True},
            ("discard", "post"): None,
        },
    ),
]


def _make_device(world, customer):
    return asset_services.device_create(
        actor=None,
        customer=customer,
        name=f"{customer.short_code} 设备 {next(_n)}",
        kind="printer" if customer == world.customer_a else "desktop",
    )


def _make_enrollment_token(world, customer):
    site = world.site_a if customer == world.customer_a else world.site_b
    token, _raw = monitoring_services.enrollment_token_create(actor=world.admin, site=site)
    return token


RESOURCES += [
    Resource(
        name="devices",
        path="/api/v1/devices",
        label="assets.device",
        make=_make_device,
        create=lambda w: {
            "customer_id": w.customer_a.pk,
            "name": "财务部打印机",
            "kind": "printer",
            "site_id": w.site_a.pk,
            "ip_address": "192.168.1.50",
            "tags": ["三楼"],
        },
        patch={"notes": "三楼财务室"},
        patch_check=lambda obj: obj.notes == "三楼财务室",
        filters=[("kind", lambda w: "printer"), ("customer_id", lambda w: w.customer_a.pk)],
        refused_writer="portal_admin_a",
        subroutes={
            ("inventory-changes", "get"): None,
            ("metrics", "get"): None,
            ("agent", "get"): None,
            ("agent", "patch"): lambda w: {"interval": 120},
            ("agent/revoke", "post"): None,
        },
    ),
    Resource(
        name="enrollment-tokens",
        path="/api/v1/enrollment-tokens",
        label="monitoring.enrollmenttoken",
        make=_make_enrollment_token,
        create=lambda w: {"site_id": w.site_a.pk, "name": "总部装机", "days": 3},
        required="site_id",
        filters=[("site_id", lambda w: w.site_a.pk)],
        refused_writer="portal_admin_a",
        deletable=False,
        subroutes={("revoke", "post"): None},
    ),
]


def _make_check(world, customer):
    """A's checks watch an agent metric, B's ping their device: filters can tell them apart."""
    device = _make_device(world, customer)
    if customer == world.customer_a:
        return monitoring_services.check_create(
            actor=None, device=device, name="CPU", metric="cpu.percent", warning=80, critical=90
        )
    return monitoring_services.check_create(
        actor=None,
        device=device,
        name="Ping",
        kind="poller",
        probe="ping",
        params={"host": "10.0.0.9"},
        mode="availability",
    )


def _make_problem(world, customer):
    """A check with a result that is not OK: critical for A, warning for B."""
    check = monitoring_services.check_create(
        actor=None,
        device=_make_device(world, customer),
        name="CPU",
        metric="cpu.percent",
        warning=80,
        critical=90,
    )
    value = 95 if customer == world.customer_a else 85
    record_result(check=check, value=value)
    return check


def _make_check_template(world, customer):
    return monitoring_services.check_template_create(
        actor=None,
        name=f"{customer.short_code} CPU {next(_n)}",
        customer=customer,
        device_kind="server" if customer == world.customer_a else "desktop",
        metric="cpu.percent",
        warning=80,
        critical=90,
    )


def _make_maintenance_window(world, customer):
    """A's windows cover now; B's is next week's, at one of its sites."""
    now = dt.datetime.now(dt.UTC)
    if customer == world.customer_a:
        starts_at, site = now - dt.timedelta(hours=1), None
    else:
        starts_at, site = now + dt.timedelta(days=7), world.site_b
    return monitoring_services.maintenance_window_create(
        actor=None,
        customer=customer,
        site=site,
        name=f"{customer.short_code} 机房维护 {next(_n)}",
        starts_at=starts_at,
        ends_at=starts_at + dt.timedelta(hours=2),
    )


def _now_param(world) -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


RESOURCES += [
    Resource(
        name="checks",
        path="/api/v1/checks",
        label="monitoring.check",
        make=_make_check,
        create=lambda w: {
            "device_id": _make_device(w, w.customer_a).pk,
            "name": "CPU 使用率",
            "metric": "cpu.percent",
            "warning": 80,
            "critical": 90,
        },
        patch={"warning": 70},
        patch_check=lambda obj: obj.warning == 70,
        filters=[
            ("customer_id", lambda w: w.customer_a.pk),
            ("kind", lambda w: "poller"),
            ("probe", lambda w: "ping"),
        ],
        refused_writer="portal_admin_a",
        subroutes={
            ("history", "get"): None,
            ("clear-overrides", "post"): lambda w: {},
        },
    ),
    Resource(
        name="problems",
        path="/api/v1/problems",
        label="monitoring.check",
        make=_make_problem,
        filters=[("customer_id", lambda w: w.customer_a.pk), ("state", lambda w: "critical")],
        refused_writer=None,
        deletable=False,
    ),
    Resource(
        name="check-templates",
        path="/api/v1/check-templates",
        label="monitoring.checktemplate",
        make=_make_check_template,
        # No server of A exists when the test posts it: the create is one audit event (what
        # the template gives devices is tested in tests/monitoring/test_checks_api.py).
        create=lambda w: {
            "name": "服务器 CPU",
            "customer_id": w.customer_a.pk,
            "device_kind": "server",
            "metric": "cpu.percent",
            "warning": 80,
            "critical": 90,
        },
        patch={"warning": 70},
        patch_check=lambda obj: obj.warning == 70,
        filters=[
            ("customer_id", lambda w: w.customer_a.pk),
            ("device_kind", lambda w: "server"),
        ],
        refused_writer="engineer",
    ),
    Resource(
        name="maintenance-windows",
        path="/api/v1/maintenance-windows",
        label="monitoring.maintenancewindow",
        make=_make_maintenance_window,
        create=lambda w: {
            "customer_id": w.customer_a.pk,
            "site_id": w.site_a.pk,
            "name": "每周日机房维护",
            "starts_at": "2026-06-07T02:00:00+08:00",
            "rrule": "FREQ=WEEKLY;BYDAY=SU",
            "duration_minutes": 120,
            "time_zone": "Asia/Shanghai",
        },
        patch={"reason": "更换 UPS 电池"},
        patch_check=lambda obj: obj.reason == "更换 UPS 电池",
        filters=[
            ("customer_id", lambda w: w.customer_a.pk),
            ("active_at", _now_param),
        ],
        refused_writer="portal_admin_a",
    ),
]


def _make_snmp_credential(world, customer):
    return monitoring_services.snmp_credential_create(
        actor=None,
        customer=customer,
        name=f"{customer.short_code} 交换机 {next(_n)}",
        version="2c",
        community=f"c-{next(_n)}",
    )


def _make_poller_target(world, customer):
    return monitoring_services.check_create(
        actor=None,
        device=_make_device(world, customer),
        name="Web",
        kind="poller",
        probe="http",
        mode="availability",
        params={"url": "https://portal.example.cn/health"},
    )


def _make_snmp_trap(world, customer):
    device = asset_services.device_create(
        actor=None,
        customer=customer,
        name=f"{customer.short_code} 交换机 {next(_n)}",
        kind="switch",
        ip_address=f"10.{next(_n) % 250}.{next(_n) % 250}.2",
    )
    credential = _make_snmp_credential(world, customer)
    trap = ReceivedTrap(
        source=str(device.ip_address),
        version="2c",
        credential_ids=(credential.pk,),
        trap_oid="1.3.6.1.6.3.1.1.5.3",
        uptime_s=10.0,
        variables={"1.3.6.1.2.1.2.2.1.1.2": "2"},
    )
    return monitoring_services.snmp_traps_record(traps=[trap])[0]


RESOURCES += [
    Resource(
        name="snmp-credentials",
        path="/api/v1/snmp-credentials",
        label="monitoring.snmpcredential",
        make=_make_snmp_credential,
        create=lambda w: {
            "customer_id": w.customer_a.pk,
            "name": "核心交换机",
            "version": "3",
            "user": "onestop",
            "auth_protocol": "SHA256",
            "auth_key": "auth-pass-123",
            "priv_protocol": "AES128",
            "priv_key": "priv-pass-456",
        },
        patch={"name": "核心交换机 (新)"},
        patch_check=lambda obj: obj.name == "核心交换机 (新)",
        filters=[("customer_id", lambda w: w.customer_a.pk)],
        refused_writer="engineer",
    ),
    Resource(
        name="poller-targets",
        path="/api/v1/poller/targets",
        label="monitoring.check",
        make=_make_poller_target,
        filters=[("device_id", lambda w: Check.objects.order_by("id").first().device_id)],
        refused_writer=None,
        deletable=False,
    ),
    Resource(
        name="snmp-traps",
        path="/api/v1/snmp-traps",
        label="monitoring.snmptrap",
        make=_make_snmp_trap,
        filters=[("device_id", lambda w: SnmpTrap.objects.order_by("id").first().device_id)],
        refused_writer=None,
        deletable=False,
    ),
]


def _make_discovery_job(world, customer):
    """A's discoveries are done, B's still queued: the status filter tells them apart. Nothing
    is swept: the job is started on commit, which a test's transaction never reaches."""
    job = monitoring_services.discovery_job_create(
        actor=None,
        customer=customer,
        network=f"10.{next(_n) % 250}.20.0/24",
        snmp_credential=_make_snmp_credential(world, customer),
    )
    if customer == world.customer_a:
        DiscoveryJob.objects.filter(pk=job.pk).update(status=DiscoveryJob.Status.DONE)
        job.refresh_from_db()
    return job


RESOURCES += [
    Resource(
        name="discovery-jobs",
        path="/api/v1/discovery-jobs",
        label="monitoring.discoveryjob",
        make=_make_discovery_job,
        create=lambda w: {
            "customer_id": w.customer_a.pk,
            "site_id": w.site_a.pk,
            "network": "10.1.20.0/24",
            "snmp_credential_id": _make_snmp_credential(w, w.customer_a).pk,
            "port": 161,
        },
        required="network",
        filters=[("customer_id", lambda w: w.customer_a.pk), ("status", lambda w: "done")],
        refused_writer="sales",
        deletable=False,
    ),
]

BY_PATH = {resource.path: resource for resource in RESOURCES}
