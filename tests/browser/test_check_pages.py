"""The checks pages in real Chromium on a phone-sized screen, in Chinese and in English.

An engineer signs in, opens a device, adds a check, sees it on the device page, and, once the
check has failed, on the problems page. Screenshots land in /tmp/check_pages_*.png for a human
to look at.
"""

from __future__ import annotations

import os

import pytest
from django.utils import timezone

from onestop.assets import services as asset_services
from onestop.monitoring.models import Check
from onestop.monitoring.probes.base import verbatim
from tests import factories
from tests.browser.test_flow import DEVICES
from tests.monitoring.results import record_result

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test
# itself (factories) are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser
SHOTS = "/tmp/check_pages_{language}_{name}.png"  # screenshots for a human to look at


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_add_a_check_and_see_it_on_the_device_and_problems_pages(
    live_server, transactional_db, browser, language
):
    from playwright.sync_api import expect

    customer = factories.customer(name="上海甲方科技", short_code="SHJF")
    site = factories.site(customer, name="浦东总部")
    factories.user("engineer", username="lilei", display_name="李雷", customers=[customer])
    server = asset_services.device_create(
        actor=None,
        customer=customer,
        site=site,
        name="财务服务器 FIN-SRV-01",
        kind="server",
        ip_address="10.20.30.40",
    )
    context = browser.new_context(locale=language, **DEVICES["phone"])
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    tag = "zh" if language.startswith("zh") else "en"

    def shot(name: str) -> None:
        page.screenshot(path=SHOTS.format(language=tag, name=name), full_page=True)
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, f"{name}: the page is wider than the phone's screen"

    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", "lilei")
    page.fill("input[name=password]", factories.PASSWORD)
    page.locator("form.auth-card button[type=submit]").click()
    expect(page).to_have_url(live_server.url + "/")

    page.goto(f"{live_server.url}/devices/{server.pk}/")
    expect(page.locator("#checks")).to_be_visible()
    shot("device_empty")
    page.locator(f"#checks a[href='/devices/{server.pk}/checks/new/']").click()
    expect(page).to_have_url(f"{live_server.url}/devices/{server.pk}/checks/new/")
    page.fill("input[name=name]", "CPU 使用率")
    page.fill("input[name=metric]", "cpu.percent")
    page.fill("input[name=warning]", "80")
    page.fill("input[name=critical]", "90")
    shot("check_form")
    page.locator("form.form button[type=submit]").click()
    expect(page).to_have_url(f"{live_server.url}/devices/{server.pk}/#checks")
    expect(page.locator("#checks")).to_contain_text("CPU 使用率")

    # The agent reports a busy CPU: the check goes critical and is listed as a problem.
    check = Check.objects.get(device=server)
    record_result(
        check=check, value=97.5, message=verbatim("cpu.percent = 97.5"), at=timezone.now()
    )
    page.reload()
    expect(page.locator("#checks .check-state-critical")).to_be_visible()
    shot("device")

    page.goto(f"{live_server.url}/devices/checks/{check.pk}/")
    expect(page.locator(".check-state-critical").first).to_be_visible()
    shot("check_detail")

    page.goto(live_server.url + "/monitoring/problems/")
    row = page.locator("#results tbody tr").first
    expect(row).to_contain_text("CPU 使用率")
    expect(row).to_contain_text("财务服务器 FIN-SRV-01")
    expect(row.locator(".check-state-critical")).to_be_visible()
    shot("problems")
    assert not problems, problems
    context.close()
