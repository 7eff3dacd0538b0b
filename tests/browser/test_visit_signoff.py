"""The work order (派工单) on the engineer's phone in real Chromium: check in on arrival, write
what was done, hand the phone to the customer who signs with a finger, and the signed work
order shows the drawn signature. Screenshots land in test-artifacts/."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from onestop.servicedesk import services
from onestop.servicedesk.models import Visit
from tests import factories
from tests.browser.test_flow import ARTIFACTS, DEVICES
from tests.browser.test_portal_ticket import _sign_in

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser


def test_customer_signs_the_work_order_on_the_engineers_phone(
    live_server, transactional_db, browser
):
    from playwright.sync_api import expect

    customer = factories.customer(name="上海甲方科技", short_code="SHJF")
    site = factories.site(customer, name="徐汇总部", address="上海市徐汇区虹桥路 1 号 3 楼")
    requester = factories.contact(customer, name="张伟", phone="13800000000")
    engineer = factories.user("engineer", username="lilei", display_name="李雷")
    factories.team(name="桌面运维组", members=[engineer], customers=[customer])
    ticket = services.ticket_create(
        actor=None,
        customer=customer,
        title="财务室打印机卡纸",
        channel="phone",
        site=site,
        requester=requester,
    )
    visit = services.visit_schedule(
        actor=None,
        ticket=ticket,
        engineer=engineer,
        scheduled_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30),
        instructions="带一个备用硒鼓",
    )
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(locale="zh-CN", **DEVICES["phone"])
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    def shot(name: str) -> None:
        page.screenshot(path=ARTIFACTS / f"phone-{name}.png", full_page=True)
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, f"{name}: the page is wider than the phone screen"

    _sign_in(page, live_server.url, "lilei")
    page.goto(f"{live_server.url}/tickets/visits/{visit.pk}/")
    expect(page.locator("h1")).to_contain_text(visit.number)
    expect(page.locator(".work-order")).to_contain_text("虹桥路")
    expect(page.locator("a[href='tel:13800000000']")).to_be_visible()
    shot("visit-scheduled")
    page.locator("form[action$='/check-in/'] button").click()
    pad = page.locator("[data-signature-pad] canvas")
    expect(pad).to_be_visible()

    page.fill("textarea[name=work_done]", "更换硒鼓，清理进纸辊，打印测试页正常。")
    page.fill("input[name=signer_name]", "张伟")
    # Submitting before the customer has signed is refused, and the form says why.
    page.locator("[data-signature-form] button[type=submit]").click()
    expect(page.locator("#sign .field-error")).to_be_visible()
    assert Visit.objects.get().state == Visit.State.ON_SITE

    # The customer signs: two strokes across the pad.
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    for stroke in (((0.1, 0.6), (0.25, 0.2), (0.4, 0.7)), ((0.5, 0.5), (0.8, 0.45))):
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        page.mouse.up()
    shot("visit-signing")
    page.locator("[data-signature-form] button[type=submit]").click()
    expect(page.locator(".messages")).to_be_visible()
    expect(page.locator(".signature svg path")).to_be_attached()
    shot("visit-signed")

    visit.refresh_from_db()
    assert visit.state == Visit.State.COMPLETED
    assert visit.signer_name == "张伟"
    assert len(visit.signature) == 2
    # The strokes are in the canvas's own 600×240 coordinates, whatever the phone's width.
    xs = [x for stroke in visit.signature for x, _y in stroke]
    assert min(xs) == pytest.approx(60, abs=3)
    assert max(xs) == pytest.approx(480, abs=3)
    assert visit.time_entry.minutes >= 1
    context.close()
    # The refused submission above answers 400 by design; anything else is a problem.
    problems = [p for p in problems if "status of 400" not in p]
    assert not problems, "\n".join(problems)
