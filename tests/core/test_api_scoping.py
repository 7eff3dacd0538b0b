"""Walks every route the API registers and proves that users of one customer, and engineers
who serve another customer, can neither see nor change another customer's objects.

A new route without a declaration in tests/apitest.py (or SPECIAL_ROUTES below) fails here.
"""

from __future__ import annotations

import pytest

from onestop.config.api import api
from onestop.core import services
from onestop.core.models import ApiToken
from tests.apitest import BY_PATH, api_client, call

pytestmark = pytest.mark.django_db

PREFIX = "/api/v1"
OUTSIDERS = ["engineer", "portal_a", "portal_admin_a"]
# Routes outside the resource declarations, each with its own scope test: tokens in
# test_api_auth.py and below, attachment downloads in tests/servicedesk/test_attachments.py.
SPECIAL_ROUTES = {
    # Each user's own preferences: tests/notify/test_channels.py.
    "/api/v1/notification-preferences",
    "/api/v1/auth/tokens",
    "/api/v1/auth/tokens/{id}",
    "/api/v1/attachments/{id}/download",
    # A user's own inbox: tests/notify/test_notifications.py shows nobody reads another's.
    "/api/v1/notifications",
    "/api/v1/notifications/{id}",
    "/api/v1/notifications/{id}/read",
    "/api/v1/notifications/read-all",
    # Import into a customer named in the form: tests/assets/test_device_import.py.
    "/api/v1/devices/import",
}


def registered_routes() -> list[tuple[str, str]]:
    paths = api.get_openapi_schema()["paths"]
    return sorted((path, method) for path, item in paths.items() for method in item)


def _split(path: str) -> tuple[str, str | None]:
    """'/api/v1/calendars/{id}/days' -> ('/api/v1/calendars', 'days')."""
    collection, _sep, rest = path.partition("/{id}")
    return collection, (rest.lstrip("/") or None) if _sep else None


def _resource_for(path: str):
    collection, _suffix = _split(path)
    return BY_PATH.get(collection)


def _declared(path: str, method: str) -> bool:
    resource = _resource_for(path)
    if resource is None:
        return False
    _collection, suffix = _split(path)
    return suffix is None or (suffix, method) in resource.subroutes


def test_every_route_is_declared():
    undeclared = [
        (path, method)
        for path, method in registered_routes()
        if path not in SPECIAL_ROUTES and not _declared(path, method)
    ]
    assert not undeclared, f"declare these routes in tests/apitest.py: {undeclared}"


def test_openapi_lists_every_foundation_resource():
    paths = {path for path, _method in registered_routes()}
    for resource in ("customers", "sites", "contacts", "teams", "users", "audit-events"):
        assert f"{PREFIX}/{resource}" in paths
        assert f"{PREFIX}/{resource}/{{id}}" in paths
    assert f"{PREFIX}/auth/tokens" in paths


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for path, method in registered_routes():
        if path in SPECIAL_ROUTES or _resource_for(path) is None:
            continue
        for who in OUTSIDERS:
            # Teams belong to the provider, not to a customer: every staff member sees them
            # (docs/permissions.md); only customer users are outsiders there.
            if not _resource_for(path).customer_scoped and who == "engineer":
                continue
            cases.append((path, method, who))
    return cases


@pytest.mark.parametrize("path,method,who", _cases())
def test_route_hides_other_customers_objects(world, path, method, who):
    resource = _resource_for(path)
    foreign = resource.make(world, world.customer_b)
    user = getattr(world, who)
    client = api_client(user)
    model = type(foreign)
    before = model.objects.filter(pk=foreign.pk).values().get()

    if "{id}" in path:
        url = path.replace("{id}", str(foreign.pk))
        _collection, suffix = _split(path)
        if suffix is None:
            body = resource.patch if method == "patch" else None
        else:
            make_body = resource.subroutes[(suffix, method)]
            body = make_body(world) if make_body else None
        response = call(client, method, url, body)
        assert response.status_code == 404, (path, method, who, response.body)
        assert response["Content-Type"] == "application/problem+json"
    elif method == "get":
        response = call(client, "get", path, page_size=500)
        assert response.status_code in (200, 403)
        if response.status_code == 200:
            assert foreign.pk not in {item["id"] for item in response.body["results"]}
    elif method == "post":
        payload = resource.create(world)
        if "customer_id" not in payload:
            return  # not customer-owned on create (customers, teams): covered by role tests
        payload["customer_id"] = world.customer_b.pk
        count = model.objects.count()
        response = call(client, "post", path, payload)
        assert response.status_code in (403, 422), response.body
        if response.status_code == 422:
            assert any(e["field"] == "customer_id" for e in response.body["errors"])
        assert model.objects.count() == count
    else:
        pytest.fail(f"no scoping check written for {method.upper()} {path}")

    assert model.objects.filter(pk=foreign.pk).values().get() == before


@pytest.mark.parametrize("who", OUTSIDERS)
def test_other_users_tokens_are_absent(world, who):
    token, _raw = services.api_token_create(user=world.portal_b, name="b")
    client = api_client(getattr(world, who))
    assert call(client, "delete", f"{PREFIX}/auth/tokens/{token.pk}").status_code == 404
    listed = call(client, "get", f"{PREFIX}/auth/tokens")
    assert token.pk not in {item["id"] for item in listed.body["results"]}
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None
