"""Demo data for the service desk: calendars with the Chinese holidays, SLA policies, one
contract per demo customer and a few weeks of tickets in every state.

Content is fixed (the same titles, customers and people every time); ticket times are placed
relative to the day of seeding so that the queue shows live SLA countdowns.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from onestop.contracts import services as contracts
from onestop.contracts.models import BusinessCalendar, Contract
from onestop.core import scoping
from onestop.core.models import Contact, Customer, Role, User
from onestop.servicedesk import services
from onestop.servicedesk.models import Status, Ticket

Progress = Callable[[str, int, int], None]  # (label, done, total), as the CLI's bar takes

STANDARD_TARGETS = [
    {"priority": "P1", "first_response_minutes": 30, "resolution_minutes": 240},
    {"priority": "P2", "first_response_minutes": 60, "resolution_minutes": 480},
    {"priority": "P3", "first_response_minutes": 240, "resolution_minutes": 1440},
    {"priority": "P4", "first_response_minutes": 480, "resolution_minutes": 2880},
]
GOLD_TARGETS = [
    {"priority": "P1", "first_response_minutes": 15, "resolution_minutes": 120},
    {"priority": "P2", "first_response_minutes": 30, "resolution_minutes": 240},
    {"priority": "P3", "first_response_minutes": 60, "resolution_minutes": 720},
    {"priority": "P4", "first_response_minutes": 240, "resolution_minutes": 1440},
]
GOLD_INDUSTRIES = {"finance", "healthcare", "logistics"}

TICKETS = [
    ("财务部打印机卡纸，无法打印报销单", 2, 2, "incident"),
    ("新员工入职：开通邮箱、钉钉账号和办公电脑", 3, 2, "service_request"),
    ("三楼会议室投影仪无信号", 3, 1, "incident"),
    ("全公司无法访问外网", 1, 1, "incident"),
    ("VPN 连接频繁断开", 2, 2, "incident"),
    ("Outlook 无法收发邮件", 2, 1, "incident"),
    ("申请安装 AutoCAD 2024", 3, 3, "service_request"),
    ("服务器机房空调告警", 1, 2, "incident"),
    ("NAS 共享盘空间不足", 2, 3, "problem"),
    ("更换前台无线 AP", 3, 3, "change"),
    ("电脑蓝屏，提示 MEMORY_MANAGEMENT", 3, 2, "incident"),
    ("Microsoft 365 许可证续订", 2, 3, "service_request"),
    ("监控摄像头画面中断", 2, 2, "incident"),
    ("ERP 客户端登录缓慢", 2, 2, "problem"),
    ("离职员工账号停用与数据交接", 3, 3, "service_request"),
]
REPLIES = [
    "您好，已收到，工程师正在远程查看。",
    "已远程处理完毕，请您再试一下。",
    "需要上门处理，已安排工程师明天上午到场。",
]


@transaction.atomic
def seed_service_desk_demo(*, progress: Progress | None = None) -> bool:
    """Writes the service-desk demo data once; returns False when tickets already exist."""
    if Ticket.objects.exists() or not Customer.objects.exists():
        return False
    rng = random.Random("onestop-service-desk-demo")  # noqa: S311 -- demo data, not secrets
    now = timezone.now()
    this_year = timezone.localdate().year
    standard = contracts.calendar_create(actor=None, name="上海标准工作时间 5×8", is_default=True)
    known = set(contracts.chinese_calendar_years())
    years = [y for y in (this_year - 1, this_year, this_year + 1) if y in known]
    if years:
        contracts.calendar_import_chinese(actor=None, calendar=standard, years=years)
    round_the_clock = contracts.calendar_create(
        actor=None, name="7×24 值守", preset=BusinessCalendar.Preset.SEVEN_BY_TWENTY_FOUR
    )
    policy = contracts.sla_policy_create(
        actor=None, name="标准服务", targets=STANDARD_TARGETS, is_default=True
    )
    gold = contracts.sla_policy_create(
        actor=None, name="金牌 7×24", targets=GOLD_TARGETS, description="关键业务，全天候响应"
    )
    customers = list(Customer.objects.order_by("short_code"))
    total = len(customers) + len(TICKETS) * 3
    done = 0
    for customer in customers:
        premium = customer.industry in GOLD_INDUSTRIES
        contracts.contract_create(
            actor=None,
            customer=customer,
            number=f"HT-{this_year}-{customer.short_code}",
            name=f"{this_year} 年度 IT 运维服务合同",
            start_date=dt.date(this_year, 1, 1),
            end_date=dt.date(this_year, 12, 31),
            status=Contract.Status.ACTIVE,
            service_lines=customer.service_lines,
            pricing=Contract.Pricing.PER_SEAT,
            quantity=rng.choice([40, 80, 120, 300]),
            sla_policy=gold if premium else policy,
            calendar=round_the_clock if premium else standard,
            onsite_response_hours=4 if premium else 8,
            is_customer_default=True,
            sites=list(customer.sites.all()),
        )
        done += 1
        if progress:
            progress("service desk", done, total)
    engineers = list(User.objects.filter(role=Role.ENGINEER).order_by("username"))
    dispatcher = User.objects.filter(role=Role.DISPATCHER).order_by("username").first()
    # Tickets of a company with a plain portal user are theirs, so the portal shows them.
    portal_users = {
        user.customer_id: user
        for user in User.objects.filter(role=Role.CUSTOMER, is_customer_admin=False)
    }
    for round_no in range(3):
        for index, (title, impact, urgency, kind) in enumerate(TICKETS):
            customer = customers[(index * 7 + round_no * 3) % len(customers)]
            contact = Contact.objects.filter(customer=customer).order_by("pk").first()
            opened = now - dt.timedelta(hours=rng.randrange(1, 24 * (4 + round_no * 6)))
            ticket = services.ticket_create(
                actor=dispatcher,
                customer=customer,
                title=title,
                description=f"{contact.name if contact else '客户'}来电反映：{title}。",
                channel=rng.choice(["phone", "email", "portal"]),
                type=kind,
                impact=impact,
                urgency=urgency,
                requester=contact,
                requester_user=portal_users.get(customer.pk),
                opened_at=opened,
            )
            _play(ticket, rng, engineers, now)
            done += 1
            if progress:
                progress("service desk", done, total)
    return True


# A plausible hand-drawn signature on the 600×240 pad: two strokes.
DEMO_SIGNATURE = [
    [[60, 150], [90, 80], [120, 160], [150, 90], [180, 150]],
    [[230, 120], [300, 100], [380, 130], [460, 95], [520, 110]],
]


def _play(ticket: Ticket, rng: random.Random, engineers: list[User], now: dt.datetime) -> None:
    """Moves a demo ticket some way along its life, with timestamps after its opening."""
    stage = rng.choice(["new", "assigned", "working", "waiting", "resolved", "closed"])
    if stage == "new" or not engineers:
        return
    engineer = rng.choice(engineers)
    services.ticket_update(actor=None, ticket=ticket, assignee=engineer)
    if stage == "assigned":
        return
    span = (now - ticket.opened_at).total_seconds()

    def moment(share: float) -> dt.datetime:
        return ticket.opened_at + dt.timedelta(seconds=span * share)

    services.ticket_reply(actor=engineer, ticket=ticket, body=REPLIES[0], at=moment(0.1))
    services.ticket_set_status(
        actor=engineer, ticket=ticket, status=Status.IN_PROGRESS, now=moment(0.15)
    )
    if stage == "waiting":
        services.ticket_set_status(
            actor=engineer, ticket=ticket, status=Status.WAITING_CUSTOMER, now=moment(0.3)
        )
        return
    # Some tickets need someone on site: a visit booked for tomorrow while the work goes on,
    # or, for finished ones, a visit done and signed off by the customer.
    # The visit goes to an engineer serving the customer (the assignee may be from elsewhere).
    fielder = next((e for e in engineers if scoping.is_visible(e, ticket)), None)
    on_site = fielder is not None and rng.random() < 0.35
    if on_site and stage == "working":
        services.visit_schedule(
            actor=None,
            ticket=ticket,
            engineer=fielder,
            scheduled_at=(now + dt.timedelta(days=1)).replace(minute=0, second=0, microsecond=0),
            instructions="带上备用硒鼓和网线测试仪。",
            now=now,
        )
        return
    if on_site and stage in ("resolved", "closed"):
        visit = services.visit_schedule(
            actor=None, ticket=ticket, engineer=fielder, scheduled_at=moment(0.3), now=moment(0.2)
        )
        services.visit_check_in(actor=fielder, visit=visit, now=moment(0.3))
        block = ticket.contract and ticket.contract.pricing == Contract.Pricing.BLOCK_HOURS
        services.visit_sign_off(
            actor=fielder,
            visit=visit,
            work_done="现场检查并排除故障，测试正常，已向用户说明。",
            signer_name=ticket.requester.name if ticket.requester else "客户",
            signature=DEMO_SIGNATURE,
            billable=not block,
            now=min(moment(0.45), visit.arrived_at + dt.timedelta(hours=3)),
        )
    if stage in ("resolved", "closed"):
        services.ticket_reply(actor=engineer, ticket=ticket, body=REPLIES[1], at=moment(0.5))
        services.ticket_set_status(
            actor=engineer, ticket=ticket, status=Status.RESOLVED, now=moment(0.55)
        )
    if stage == "closed":
        services.ticket_set_status(
            actor=engineer, ticket=ticket, status=Status.CLOSED, now=moment(0.8)
        )
