"""The main UI flow in real Chromium, on a desktop and on a phone-sized screen.

Sign in, create a customer with a Chinese name, find it with the live search, switch the
language, sign out. Screenshots land in test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import factories

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test
# itself (factories) are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DEVICES = {
    "desktop": {"viewport": {"width": 1366, "height": 900}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}


def _open_menu(page, device: str) -> None:
    """On a phone the navigation sits behind the collapsed menu."""
    if device == "phone" and not page.locator("nav.mainnav").is_visible():
        page.locator("label[for=nav-toggle]").click()


@pytest.mark.parametrize("device", list(DEVICES))
def test_sign_in_create_find_switch_language_sign_out(
    live_server, transactional_db, browser, device
):
    from playwright.sync_api import expect

    factories.user("admin", username="boss", display_name="王经理")
    factories.customer(name="苏州乙方制造", short_code="SZYF")
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(locale="zh-CN", **DEVICES[device])
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    def shot(name: str) -> None:
        page.screenshot(path=ARTIFACTS / f"{device}-{name}.png", full_page=True)
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, f"{name}: the page is wider than the {device} screen"

    page.goto(live_server.url + "/")
    expect(page).to_have_url(live_server.url + "/login/?next=/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    shot("login")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", factories.PASSWORD)
    page.locator("form.auth-card button[type=submit]").click()
    expect(page).to_have_url(live_server.url + "/")
    shot("home")

    if device == "phone":
        expect(page.locator("nav.mainnav")).to_be_hidden()
    _open_menu(page, device)
    expect(page.locator("nav.mainnav")).to_be_visible()
    if device == "phone":
        shot("menu")
    page.locator("nav.mainnav a[href='/customers/']").click()
    expect(page).to_have_url(live_server.url + "/customers/")
    page.locator(".page-actions a[href='/customers/new/']").click()
    page.fill("input[name=name]", "华东精密制造")
    page.fill("input[name=short_code]", "hdjm")
    page.select_option("select[name=industry]", "manufacturing")
    page.locator("input[name=service_lines][value=desktop]").check()
    page.locator("input[name=service_lines][value=network_ops]").check()
    shot("customer-form")
    page.locator("form.form button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("华东精密制造")
    expect(page.locator(".messages")).to_contain_text("华东精密制造")
    shot("customer-detail")

    _open_menu(page, device)
    page.locator("nav.mainnav a[href='/customers/']").click()
    results = page.locator("#results")
    expect(results).to_contain_text("苏州乙方制造")
    # Live search swaps the rows in place: a marker set on this page must survive it.
    page.evaluate("window.__sameDocument = true")
    page.locator("input[name=q]").press_sequentially("hdjm", delay=30)
    expect(results).not_to_contain_text("苏州乙方制造")
    expect(results.locator("a", has_text="华东精密制造")).to_be_visible()
    expect(page).to_have_url(live_server.url + "/customers/?q=hdjm")
    assert page.evaluate("window.__sameDocument === true")
    shot("customer-search")

    _open_menu(page, device)
    page.locator(".lang-switch button[value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(live_server.url + "/customers/?q=hdjm")
    expect(page.locator(".filters")).to_contain_text("Search")
    shot("customer-search-en")

    _open_menu(page, device)
    page.locator("details.user-menu summary").click()
    page.locator("details.user-menu button[type=submit]").click()
    expect(page).to_have_url(live_server.url + "/login/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.goto(live_server.url + "/customers/")
    expect(page).to_have_url(live_server.url + "/login/?next=/customers/")

    context.close()
    assert not problems, problems
