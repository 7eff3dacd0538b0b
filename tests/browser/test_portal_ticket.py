"""The portal flow in real Chromium, on a desktop and on a phone-sized screen.

A customer user opens a ticket in the portal; an engineer finds it with the live search, takes
it with a bulk action, adds an internal note, replies publicly and resolves it; the customer
sees the reply but not the note and rates the ticket.
Screenshots of the portal pages, the queue, the ticket page and the dispatcher board land in
test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

from onestop.contracts import services as contracts
from onestop.servicedesk import services
from tests import factories
from tests.browser.test_flow import ARTIFACTS, DEVICES, _open_menu

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test
# itself (factories) are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser


def _setup():
    contracts.calendar_create(actor=None, name="7×24", preset="7x24", is_default=True)
    contracts.sla_policy_create(
        actor=None,
        name="标准",
        is_default=True,
        targets=[
            {"priority": p, "first_response_minutes": 60, "resolution_minutes": 480}
            for p in ("P1", "P2", "P3", "P4")
        ],
    )
    customer = factories.customer(name="上海甲方科技", short_code="SHJF")
    other = factories.customer(name="苏州乙方制造", short_code="SZYF")
    factories.contact(customer, name="张伟", phone="13800000000")
    factories.user("customer", username="wangfang", display_name="王芳", customer=customer)
    engineer = factories.user("engineer", username="lilei", display_name="李雷")
    factories.team(name="桌面运维组", members=[engineer], customers=[customer])
    # Other work on the desk, so the queue and the board have something in every column:
    # unanswered past its first-response target (breached), 90 % used (at risk), fresh.
    now = dt.datetime.now(dt.UTC)
    for title, minutes_ago, answered, extra in (
        ("财务室打印机卡纸", 600, False, {}),
        ("VPN 经常断线", 430, True, {"assignee": engineer}),
        ("新员工电脑开通账号", 20, True, {"priority": "P4"}),
    ):
        opened = now - dt.timedelta(minutes=minutes_ago)
        ticket = services.ticket_create(
            actor=None, customer=customer, title=title, channel="phone", opened_at=opened, **extra
        )
        if answered:
            services.ticket_reply(
                actor=engineer, ticket=ticket, body="收到", at=opened + dt.timedelta(minutes=5)
            )
    services.ticket_create(actor=None, customer=other, title="乙方服务器宕机", channel="email")


def _sign_in(page, url: str, username: str) -> None:
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", factories.PASSWORD)
    page.locator("form.auth-card button[type=submit]").click()
    page.wait_for_url(f"{url}/")


@pytest.mark.parametrize("device", list(DEVICES))
def test_portal_ticket_reply_resolve_rate(live_server, transactional_db, browser, device):
    from playwright.sync_api import expect

    _setup()
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    contexts = []

    def open_as(username: str):
        context = browser.new_context(locale="en-US", **DEVICES[device])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        _sign_in(page, live_server.url, username)
        return page

    def shot(page, name: str) -> None:
        page.screenshot(path=ARTIFACTS / f"{device}-{name}.png", full_page=True)
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, f"{name}: the page is wider than the {device} screen"

    # The customer opens a ticket in the portal.
    customer = open_as("wangfang")
    _open_menu(customer, device)
    customer.locator("nav.mainnav a[href='/tickets/']").click()
    expect(customer.locator("h1")).to_have_text("My tickets")
    customer.locator(".page-head a[href='/tickets/new/']").click()
    customer.fill("input[name=title]", "三楼会议室投影仪没有信号")
    customer.fill(
        "textarea[name=description]", "HDMI 接上以后投影仪显示无信号，下午两点有客户会议。"
    )
    customer.get_by_label("My team or department").check()
    customer.get_by_label("Urgent: work has stopped").check()
    shot(customer, "portal-new-ticket")
    customer.locator("form.form button[type=submit]").click()
    expect(customer.locator("h1")).to_contain_text("三楼会议室投影仪没有信号")
    expect(customer.locator(".messages")).to_contain_text("opened")
    ticket_url = customer.url
    customer.goto(f"{live_server.url}/tickets/")
    expect(customer.locator("#results")).to_contain_text("三楼会议室投影仪没有信号")
    expect(customer.locator("#results")).not_to_contain_text("财务室打印机卡纸")
    shot(customer, "portal-list")

    # The engineer finds it in the queue, adds a note, replies, and resolves it.
    engineer = open_as("lilei")
    _open_menu(engineer, device)
    engineer.locator("nav.mainnav a[href='/tickets/']").click()
    results = engineer.locator("#results")
    expect(results).to_contain_text("三楼会议室投影仪没有信号")
    expect(results).not_to_contain_text("乙方服务器宕机")
    expect(results.locator(".sla").first).to_be_visible()
    shot(engineer, "queue")
    # Live search (pinyin of 投影) swaps the rows and the bulk bar; then take the ticket in bulk.
    engineer.locator("input[name=q]").press_sequentially("touying", delay=30)
    expect(results).not_to_contain_text("VPN 经常断线")
    expect(results).to_contain_text("三楼会议室投影仪没有信号")
    results.locator("input[name=tickets]").check()
    if device == "phone":
        results.locator(".bulk-title").click()
    results.locator("select[name=assignee]").select_option("me")
    results.locator(".bulk-bar button[type=submit]").click()
    expect(engineer.locator(".messages")).to_contain_text("1 ticket updated.")
    expect(results).to_contain_text("李雷")
    engineer.locator("#results a", has_text="三楼会议室投影仪没有信号").click()
    expect(engineer.locator("h1")).to_contain_text("三楼会议室投影仪没有信号")
    engineer.get_by_label("Internal note").check()
    engineer.fill("textarea[name=body]", "投影仪灯泡可能老化，备件库有一个")
    engineer.locator(".reply-form button[type=submit]").click()
    expect(engineer.locator(".entry-note")).to_contain_text("灯泡")
    engineer.get_by_label("Public reply").check()
    engineer.fill("textarea[name=body]", "您好，是信号线松动，已重新插好，请再试一下。")
    engineer.locator(".reply-form button[type=submit]").click()
    expect(engineer.locator(".entry-reply")).to_contain_text("信号线松动")
    engineer.locator(".status-actions button[value=resolved]").click()
    expect(engineer.locator(".page-head .subtitle")).to_contain_text("Resolved")
    shot(engineer, "ticket")
    engineer.goto(f"{live_server.url}/tickets/board/")
    expect(engineer.locator(".board-unassigned")).to_contain_text("新员工电脑开通账号")
    expect(engineer.locator(".board-at_risk")).to_contain_text("VPN 经常断线")
    expect(engineer.locator(".board-breached")).to_contain_text("财务室打印机卡纸")
    shot(engineer, "board")
    engineer.goto(f"{live_server.url}/tickets/new/")
    engineer.select_option("select[name=customer]", label="上海甲方科技 (SHJF)")
    expect(engineer.locator("select[name=requester] option", has_text="张伟")).to_be_attached()
    shot(engineer, "phone-intake")

    # The customer sees the public reply, never the note, and rates the ticket.
    customer.goto(ticket_url)
    expect(customer.locator(".page-head .subtitle")).to_contain_text("Resolved")
    expect(customer.locator("#timeline")).to_contain_text("信号线松动")
    expect(customer.locator("body")).not_to_contain_text("灯泡")
    customer.get_by_label("5 · Excellent").check()
    customer.fill("textarea[name=comment]", "响应很快")
    shot(customer, "portal-ticket")
    customer.locator("#rating button[type=submit]").click()
    expect(customer.locator(".rating-done")).to_contain_text("5 of 5")

    for context in contexts:
        context.close()
    assert not problems, "\n".join(problems)
