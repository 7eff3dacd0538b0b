"""Client addresses behind trusted proxies, and the request context in the audit trail."""

from __future__ import annotations

import ipaddress

import pytest
from django.test import Client

from onestop.core.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def behind_proxy(settings):
    settings.ONESTOP_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]


def test_forwarded_for_from_a_trusted_proxy_is_used(world, behind_proxy):
    client = Client(REMOTE_ADDR="10.1.2.3")
    client.force_login(world.admin)
    response = client.patch(
        f"/api/v1/customers/{world.customer_a.pk}",
        data='{"phone": "021-1"}',
        content_type="application/json",
        HTTP_X_FORWARDED_FOR="203.0.113.9, 10.9.9.9",
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_REQUEST_ID="req-123",
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-123"
    event = AuditEvent.objects.latest("id")
    assert (event.ip_address, event.request_id, event.source) == ("203.0.113.9", "req-123", "api")


def test_forwarded_for_from_anyone_else_is_ignored(world, behind_proxy):
    client = Client(REMOTE_ADDR="198.51.100.7")
    client.force_login(world.admin)
    client.patch(
        f"/api/v1/customers/{world.customer_a.pk}",
        data='{"phone": "021-2"}',
        content_type="application/json",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert AuditEvent.objects.latest("id").ip_address == "198.51.100.7"


def test_security_headers(world):
    client = Client()
    response = client.get("/healthz")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert "script-src 'self'" in response["Content-Security-Policy"]
