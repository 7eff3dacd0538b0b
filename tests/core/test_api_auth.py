"""API authentication: personal tokens, two-factor, throttling, sessions with CSRF, and the
problem+json contract for errors outside any resource."""

from __future__ import annotations

import datetime
import re

import pyotp
import pytest
from django.test import Client
from django.utils import timezone

from onestop.core import crypto, services
from onestop.core.models import ApiToken, AuditEvent
from tests.apitest import call
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
TOKENS = "/api/v1/auth/tokens"


def _token(client, username, password=PASSWORD, **extra):
    return call(client, "post", TOKENS, {"username": username, "password": password, **extra})


def test_token_is_returned_once_stored_hashed_and_works(world):
    response = _token(Client(), "engineer1", name="laptop", expires_in_days=30)
    assert response.status_code == 201, response.body
    raw = response.body["token"]
    stored = ApiToken.objects.get(pk=response.body["id"])
    assert raw not in (stored.key_hash, stored.prefix) and stored.key_hash == services.hash_token(
        raw
    )
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert call(client, "get", "/api/v1/customers").status_code == 200
    listed = call(client, "get", TOKENS).body["results"]
    assert "token" not in listed[0] and listed[0]["prefix"] == raw[:10]
    audit = AuditEvent.objects.get(object_type="core.apitoken", object_id=str(stored.pk))
    assert raw not in str(audit.changes)


def test_revoked_and_expired_tokens_are_refused(world):
    raw = _token(Client(), "engineer1").body["token"]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    token_id = call(client, "get", TOKENS).body["results"][0]["id"]
    assert call(client, "delete", f"{TOKENS}/{token_id}").status_code == 204
    response = call(client, "get", "/api/v1/customers")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"

    token, raw = services.api_token_create(user=world.engineer, expires_in_days=1)
    ApiToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert (
        call(Client(HTTP_AUTHORIZATION=f"Bearer {raw}"), "get", "/api/v1/sites").status_code == 401
    )


def test_wrong_password_and_bad_input(world):
    response = _token(Client(), "engineer1", password="wrong")
    assert response.status_code == 401
    assert response.body["detail"]
    response = call(Client(), "post", TOKENS, {"username": "engineer1"})
    assert response.status_code == 422
    assert response.body["errors"][0]["field"] == "password"
    response = _token(Client(), "engineer1", expires_in_days=0)
    assert response.status_code == 422
    assert ApiToken.objects.filter(user=world.engineer).count() == 0


def test_inactive_user_cannot_get_or_use_a_token(world):
    _token_row, raw = services.api_token_create(user=world.engineer)
    services.user_update(actor=world.admin, user=world.engineer, is_active=False)
    assert _token(Client(), "engineer1").status_code == 401
    assert (
        call(Client(HTTP_AUTHORIZATION=f"Bearer {raw}"), "get", "/api/v1/sites").status_code == 401
    )


def test_repeated_failures_lock_the_login(world, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _token(Client(), "sales1", password="nope")
    response = _token(Client(), "sales1")  # the right password, but locked out now
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"


def test_two_factor_user_must_send_the_current_code(world):
    secret = services.user_totp_begin(user=world.manager)
    services.user_totp_enable(
        actor=world.manager, user=world.manager, code=pyotp.TOTP(secret).now()
    )
    assert _token(Client(), "manager1").status_code == 401
    assert _token(Client(), "manager1", otp="000000").status_code == 401
    response = _token(Client(), "manager1", otp=pyotp.TOTP(secret).now())
    assert response.status_code == 201
    world.manager.refresh_from_db()
    assert crypto.decrypt(world.manager.totp_secret) == secret
    assert secret not in str(list(AuditEvent.objects.values_list("changes", flat=True)))


def test_session_auth_requires_csrf_on_writes(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.admin)
    assert call(client, "get", "/api/v1/customers").status_code == 200
    payload = {"name": "会话客户", "short_code": "SESS"}
    response = call(client, "post", "/api/v1/customers", payload)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    client.get("/api/v1/docs")  # sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    response = client.post(
        "/api/v1/customers", data=payload, content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert response.status_code == 201


def test_session_of_a_two_factor_user_needs_the_second_step(world):
    secret = services.user_totp_begin(user=world.manager)
    services.user_totp_enable(
        actor=world.manager, user=world.manager, code=pyotp.TOTP(secret).now()
    )
    client = Client()
    client.force_login(world.manager)
    assert call(client, "get", "/api/v1/customers").status_code == 401
    session = client.session
    session["otp_verified"] = True
    session.save()
    assert call(client, "get", "/api/v1/customers").status_code == 200


@pytest.mark.parametrize(
    "method,path,status",
    [
        ("get", "/api/v1/no-such-thing", 404),
        ("get", "/api/v2/customers", 404),
        ("get", "/api/", 404),
        ("put", "/api/v1/customers", 405),
        ("get", "/api/v1/customers/not-a-number", 404),
    ],
)
def test_every_api_error_is_problem_json(world, method, path, status):
    client = Client()
    client.force_login(world.admin)
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail", "errors"}
    assert body["status"] == status


def test_openapi_and_docs_work_offline(world):
    client = Client()
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "OneStop API"
    client.force_login(world.admin)
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert not external, f"docs page loads from the internet: {external}"
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert client.get(asset).status_code == 200, asset
