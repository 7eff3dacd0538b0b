"""CRUD, permissions, filters, pagination and bad input for every declared API resource."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from onestop.core.models import AuditEvent
from onestop.core.permissions import can
from tests.apitest import RESOURCES, api_client, call

pytestmark = pytest.mark.django_db

writable = [r for r in RESOURCES if r.create]
patchable = [r for r in RESOURCES if r.patch]
deletable = [r for r in writable if r.deletable]
by_name = pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.name)
by_writable = pytest.mark.parametrize("resource", writable, ids=lambda r: r.name)
by_patchable = pytest.mark.parametrize("resource", patchable, ids=lambda r: r.name)
by_deletable = pytest.mark.parametrize("resource", deletable, ids=lambda r: r.name)


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.body
    return {item["id"] for item in response.body["results"]}


def _all_pages(client, path, **query) -> list[int]:
    ids: list[int] = []
    response = call(client, "get", path, **query)
    while True:
        assert response.status_code == 200, response.body
        ids += [item["id"] for item in response.body["results"]]
        if not response.body["next"]:
            return ids
        response = client.get(response.body["next"])
        response.body = response.json()


@by_name
def test_list_walks_every_page_once(world, resource):
    for _ in range(3):
        resource.make(world, world.customer_a)
    client = api_client(world.admin)
    everything = _all_pages(client, resource.path, page_size=500)
    paged = _all_pages(client, resource.path, page_size=2)
    assert paged == everything
    assert len(paged) == len(set(paged)) >= 3


@by_name
def test_list_query_count_does_not_grow_with_rows(world, resource):
    client = api_client(world.admin)
    resource.make(world, world.customer_a)
    call(client, "get", resource.path)  # warm up: token last-used write, caches
    with CaptureQueriesContext(connection) as few:
        call(client, "get", resource.path, page_size=100)
    for _ in range(15):
        resource.make(world, world.customer_a)
    with CaptureQueriesContext(connection) as many:
        response = call(client, "get", resource.path, page_size=100)
    assert len(response.body["results"]) >= 16
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


@by_name
def test_detail_in_scope(world, resource):
    obj = resource.make(world, world.customer_a)
    response = call(api_client(getattr(world, resource.viewer)), "get", resource.item(obj))
    assert response.status_code == 200, response.body
    assert response.body["id"] == obj.pk


@by_name
@pytest.mark.parametrize("who", ["engineer", "portal_a", "portal_admin_a"])
def test_other_customers_object_is_absent(world, resource, who):
    obj = resource.make(world, world.customer_b)
    user = getattr(world, who)
    client = api_client(user)
    if not resource.customer_scoped and user.is_provider_staff:
        # Teams belong to the provider, not to a customer: staff whose role may read them see
        # them all (docs/permissions.md); the others are refused, not told it is absent.
        expected = 200 if can(user, "view", type(obj)) else 403
        assert call(client, "get", resource.item(obj)).status_code == expected
        return
    assert call(client, "get", resource.item(obj)).status_code == 404
    listed = call(client, "get", resource.path, page_size=500)
    if listed.status_code == 403:  # the role may not list this resource at all
        assert not can(user, "view", type(obj))
    else:
        assert obj.pk not in _ids(listed)
    if resource.patch:
        response = call(client, "patch", resource.item(obj), resource.patch)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"
        obj.refresh_from_db()
        assert not resource.patch_check(obj)
    if resource.deletable:
        assert call(client, "delete", resource.item(obj)).status_code == 404
        assert type(obj).objects.filter(pk=obj.pk).exists()


@by_name
def test_unauthenticated_is_401_problem(world, resource):
    from django.test import Client

    response = call(Client(), "get", resource.path)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.body["status"] == 401


@by_name
def test_filters_narrow_the_list(world, resource):
    resource.make(world, world.customer_a)
    resource.make(world, world.customer_b)
    client = api_client(world.admin)
    everything = set(_all_pages(client, resource.path, page_size=500))
    for param, value in resource.filters:
        filtered = set(_all_pages(client, resource.path, page_size=500, **{param: value(world)}))
        assert filtered, f"filter {param} matched nothing"
        assert filtered <= everything
        assert filtered != everything or len(everything) == 1, f"filter {param} kept everything"


@by_writable
def test_create_is_audited(world, resource):
    client = api_client(world.admin)
    payload = resource.create(world)
    before = AuditEvent.objects.count()
    response = call(client, "post", resource.path, payload)
    assert response.status_code == 201, response.body
    created = AuditEvent.objects.get(
        action="create",
        object_type=resource.label,
        object_id=str(response.body["id"]),
        actor=world.admin,
    )
    assert created.source == "api"
    assert AuditEvent.objects.count() == before + 1


@by_writable
def test_create_rejects_unknown_field_and_changes_nothing(world, resource):
    client = api_client(world.admin)
    payload = resource.create(world)
    count = AuditEvent.objects.count()
    response = call(client, "post", resource.path, {**payload, "colour": "red"})
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert {"field": "colour", "code": "extra_forbidden"}.items() <= response.body["errors"][
        0
    ].items()
    assert AuditEvent.objects.count() == count


@by_writable
def test_create_rejects_missing_wrong_type_and_overlong(world, resource):
    client = api_client(world.admin)
    payload = resource.create(world)
    required = resource.required or next(
        k for k in payload if k in {"name", "username", "title", "ticket_id"}
    )
    count = AuditEvent.objects.count()
    missing = {k: v for k, v in payload.items() if k != required}
    response = call(client, "post", resource.path, missing)
    assert response.status_code == 422
    assert any(e["field"] == required for e in response.body["errors"])
    wrong_type = {**payload, required: {"nested": True}}
    assert call(client, "post", resource.path, wrong_type).status_code == 422
    text_field = next(
        k
        for k in ("name", "title", "display_name", "note", "instructions", "network")
        if k in payload
    )
    overlong = {**payload, text_field: "长" * 5000}
    response = call(client, "post", resource.path, overlong)
    assert response.status_code == 422
    assert any(e["field"] == text_field for e in response.body["errors"])
    assert AuditEvent.objects.count() == count


@by_writable
def test_malformed_json_is_400(world, resource):
    client = api_client(world.admin)
    response = client.post(resource.path, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


@by_writable
def test_role_without_permission_is_403(world, resource):
    client = api_client(getattr(world, resource.refused_writer))
    payload = resource.create(world)
    count = AuditEvent.objects.count()
    if resource.refused_create:
        response = call(client, "post", resource.path, payload)
        assert response.status_code == 403, response.body
        assert AuditEvent.objects.count() == count
    if resource.patch:
        obj = resource.make(world, world.customer_a)
        count = AuditEvent.objects.count()
        response = call(client, "patch", resource.item(obj), resource.patch)
        assert response.status_code == 403, response.body
        assert AuditEvent.objects.count() == count


@by_patchable
def test_patch_is_audited(world, resource):
    obj = resource.make(world, world.customer_a)
    response = call(api_client(world.admin), "patch", resource.item(obj), resource.patch)
    assert response.status_code == 200, response.body
    obj.refresh_from_db()
    assert resource.patch_check(obj)
    event = AuditEvent.objects.filter(
        action="update", object_type=resource.label, object_id=str(obj.pk)
    ).latest("id")
    assert event.actor == world.admin
    assert event.changes


@by_patchable
def test_patch_rejects_unknown_field(world, resource):
    obj = resource.make(world, world.customer_a)
    response = call(api_client(world.admin), "patch", resource.item(obj), {"id": 99})
    assert response.status_code == 422


@by_deletable
def test_delete_is_audited(world, resource):
    obj = resource.make(world, world.customer_a)
    response = call(api_client(world.admin), "delete", resource.item(obj))
    assert response.status_code == 204
    assert not type(obj).objects.filter(pk=obj.pk).exists()
    assert AuditEvent.objects.filter(
        action="delete", object_type=resource.label, object_id=str(obj.pk)
    ).exists()
