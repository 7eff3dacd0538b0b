"""Signing in and out, throttling, two-factor, the account pages, languages and the CSP."""

from __future__ import annotations

import re

import pyotp
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from onestop.core import crypto, services
from onestop.core.models import ApiToken, AuditEvent
from tests.factories import PASSWORD


def _sign_in(client: Client, username: str, password: str = PASSWORD, **extra):
    return client.post(reverse("login"), {"username": username, "password": password, **extra})


def _events(user, action):
    return AuditEvent.objects.filter(object_type="core.user", object_id=str(user.pk), action=action)


# Sign-in -------------------------------------------------------------------------------------


def test_login_page_renders_for_anonymous(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b'name="password"' in response.content


def test_login_then_home_and_audited(client, world):
    response = _sign_in(client, "admin1")
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.get(reverse("home")).status_code == 200
    event = _events(world.admin, "login").get()
    assert event.source == "ui"
    assert event.actor == world.admin


def test_login_follows_a_safe_next_only(client, world):
    response = _sign_in(client, "admin1", next="/customers/")
    assert response["Location"] == "/customers/"
    client.logout()
    response = _sign_in(client, "admin1", next="https://evil.example/")
    assert response["Location"] == reverse("home")


def test_wrong_password_is_refused_and_audited(client, world):
    response = _sign_in(client, "admin1", "not-the-password")
    assert response.status_code == 400
    assert response.context["form"].non_field_errors()
    assert client.get(reverse("home")).status_code == 302
    assert _events(world.admin, "login_failed").count() == 1


def test_unknown_username_is_refused_the_same_way(client, db):
    response = _sign_in(client, "nobody", "whatever-password")
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="login_failed").exists()


def test_repeated_failures_lock_the_login(client, world):
    for _attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, "engineer1", "wrong-password").status_code == 400
    locked = _sign_in(client, "engineer1", "wrong-password")
    assert locked.status_code == 429
    assert "core/locked_out.html" in [t.name for t in locked.templates]
    # Even the right password is refused while locked.
    again = _sign_in(client, "engineer1")
    assert again.status_code == 429
    assert client.get(reverse("home")).status_code == 302
    # Another account from the same address is not affected.
    assert _sign_in(Client(), "admin1").status_code == 302


def test_inactive_user_cannot_sign_in(client, world):
    services.user_update(actor=None, user=world.sales, is_active=False)
    assert _sign_in(client, "sales1").status_code == 400


# Logout --------------------------------------------------------------------------------------


def test_logout_is_a_post_and_audited(client, world):
    _sign_in(client, "admin1")
    page = client.get(reverse("logout"))
    assert page.status_code == 200  # asks first
    assert client.get(reverse("home")).status_code == 200
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert client.get(reverse("home")).status_code == 302
    assert _events(world.admin, "logout").count() == 1


# Two-factor ----------------------------------------------------------------------------------


def _enable_two_factor(client: Client, user) -> pyotp.TOTP:
    page = client.get(reverse("two_factor"))
    assert page.status_code == 200
    client.post(reverse("two_factor"), {"action": "begin"})
    user.refresh_from_db()
    totp = pyotp.TOTP(crypto.decrypt(user.totp_secret))
    page = client.get(reverse("two_factor")).content.decode()
    assert totp.secret in page
    assert 'src="data:image/svg+xml;base64,' in page
    wrong = client.post(reverse("two_factor"), {"action": "confirm", "code": "000000"})
    assert wrong.status_code == 400
    response = client.post(reverse("two_factor"), {"action": "confirm", "code": totp.now()})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.totp_enabled
    return totp


def test_two_factor_setup_then_login_with_a_code(client, world):
    _sign_in(client, "engineer1")
    totp = _enable_two_factor(client, world.engineer)
    client.post(reverse("logout"))

    response = _sign_in(client, "engineer1", next="/sites/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login_otp"))
    # Half signed in: every page leads back to the code step.
    assert client.get(reverse("home"))["Location"] == reverse("login_otp")
    assert client.get("/api/v1/customers").status_code == 401
    assert client.post(response["Location"], {"code": "123456"}).status_code == 400
    done = client.post(response["Location"], {"code": totp.now()})
    assert done["Location"] == "/sites/"
    assert client.get(reverse("home")).status_code == 200
    assert client.get("/api/v1/customers").status_code == 200


def test_too_many_wrong_codes_end_the_attempt(client, world):
    _sign_in(client, "engineer1")
    _enable_two_factor(client, world.engineer)
    client.post(reverse("logout"))
    _sign_in(client, "engineer1")
    for _attempt in range(4):
        assert client.post(reverse("login_otp"), {"code": "000000"}).status_code == 400
    response = client.post(reverse("login_otp"), {"code": "000000"})
    assert response["Location"] == reverse("login")
    assert client.get(reverse("login_otp"))["Location"] == reverse("login")
    assert _events(world.engineer, "login_failed").count() == 1


def test_two_factor_off_needs_the_password(client, world):
    _sign_in(client, "admin1")
    _enable_two_factor(client, world.admin)
    response = client.post(reverse("two_factor"), {"action": "disable", "password": "wrong"})
    assert response.status_code == 400
    world.admin.refresh_from_db()
    assert world.admin.totp_enabled
    client.post(reverse("two_factor"), {"action": "disable", "password": PASSWORD})
    world.admin.refresh_from_db()
    assert not world.admin.totp_enabled
    assert world.admin.totp_secret == ""


def test_two_factor_setup_is_for_staff(world, login):
    assert login(world.portal_a).get(reverse("two_factor")).status_code == 403


# Account -------------------------------------------------------------------------------------


def test_password_change_keeps_the_session(client, world):
    _sign_in(client, "sales1")
    url = reverse("password_change")
    assert client.get(url).status_code == 200
    wrong = client.post(
        url,
        {
            "old_password": "nope",
            "new_password": "Fresh-passw0rd-2",
            "new_password_again": "Fresh-passw0rd-2",
        },
    )
    assert wrong.status_code == 400
    too_short = client.post(
        url, {"old_password": PASSWORD, "new_password": "short", "new_password_again": "short"}
    )
    assert too_short.context["form"].errors["new_password"]
    response = client.post(
        url,
        {
            "old_password": PASSWORD,
            "new_password": "Fresh-passw0rd-2",
            "new_password_again": "Fresh-passw0rd-2",
        },
    )
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    world.sales.refresh_from_db()
    assert world.sales.check_password("Fresh-passw0rd-2")


def test_profile_changes_only_profile_fields(world, login):
    client = login(world.portal_a)
    response = client.post(
        reverse("account"),
        {
            "display_name": "门户用户",
            "email": "Portal@Example.cn",
            "language": "en",
            "time_zone": "Asia/Hong_Kong",
            "role": "admin",
        },
    )
    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    world.portal_a.refresh_from_db()
    assert world.portal_a.display_name == "门户用户"
    assert world.portal_a.email == "portal@example.cn"
    assert world.portal_a.time_zone == "Asia/Hong_Kong"
    assert world.portal_a.role == "customer"


def test_api_token_is_shown_once_and_can_be_revoked(world, login):
    client = login(world.engineer)
    response = client.post(reverse("api_token_create"), {"name": "监控脚本"})
    raw = re.search(r'value="(ost_[^"]+)"', response.content.decode()).group(1)
    token = ApiToken.objects.get(user=world.engineer)
    assert raw.startswith(token.prefix)
    assert raw not in client.get(reverse("account")).content.decode()
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    assert api.get("/api/v1/customers").status_code == 200

    other = login(world.sales)
    assert other.post(reverse("api_token_revoke", args=[token.pk])).status_code == 404
    client.post(reverse("api_token_revoke", args=[token.pk]))
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api.get("/api/v1/customers").status_code == 401


# Language ------------------------------------------------------------------------------------


def _lang(client: Client) -> str:
    html = client.get(reverse("customer_list")).content.decode()
    return re.search(r'<html lang="([^"]+)"', html).group(1)


def test_language_switch(world, login):
    client = login(world.admin)
    response = client.post(reverse("set_language"), {"language": "en", "next": "/customers/"})
    assert response["Location"] == "/customers/"
    assert _lang(client) == "en"
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    assert _lang(client) == "zh-hans"
    assert 'lang="zh-hans"' in client.get(reverse("home")).content.decode()


def test_saved_language_applies_without_a_cookie(world, login):
    services.user_update(actor=None, user=world.admin, language="en")
    assert _lang(login(world.admin)) == "en"


# Content-Security-Policy -----------------------------------------------------------------------

INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)


@pytest.mark.parametrize(
    "name",
    ["home", "customer_list", "customer_create", "user_create", "audit_list", "account"],
)
def test_pages_send_a_csp_and_carry_no_inline_code_or_style(world, login, name):
    response = login(world.admin).get(reverse(name))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    html = response.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts, "htmx and app.js are loaded"
    assert all(" src=" in tag for tag in scripts)
    assert "<style" not in html
    assert " style=" not in html
    assert not INLINE_HANDLER.search(html)


def test_login_page_has_no_inline_code(client, db):
    response = client.get(reverse("login"))
    assert "Content-Security-Policy" in response
    html = response.content.decode()
    assert all(" src=" in tag for tag in re.findall(r"<script\b[^>]*>", html))
    assert " style=" not in html and "<style" not in html
