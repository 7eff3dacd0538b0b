"""The ticket API as the portal and the desk use it."""

from __future__ import annotations

import pytest

from onestop.core.models import DomainEvent
from onestop.servicedesk import services
from tests.apitest import api_client, call

pytestmark = pytest.mark.django_db


def _ticket(world, **extra):
    return services.ticket_create(
        actor=world.dispatcher,
        customer=world.customer_a,
        title="邮箱无法登录",
        channel="phone",
        **extra,
    )


def test_portal_user_opens_a_ticket_for_themselves(world):
    client = api_client(world.portal_a)
    response = call(
        client,
        "post",
        "/api/v1/tickets",
        {
            "customer_id": world.customer_a.pk,
            "title": "电脑开不了机",
            "priority": "P1",
            "assignee_id": world.engineer.pk,
        },
    )
    assert response.status_code == 201, response.body
    assert response.body["priority"] == "P3"  # the desk sets priority, not the customer
    assert response.body["assignee_id"] is None
    response = call(
        client, "post", "/api/v1/tickets", {"customer_id": world.customer_b.pk, "title": "越权"}
    )
    assert response.status_code == 422
    assert response.body["errors"][0]["field"] == "customer_id"


def test_plain_portal_user_sees_only_own_tickets_their_admin_sees_all(world):
    mine = _ticket(world, requester_user=world.portal_a)
    colleagues = _ticket(world)
    plain = api_client(world.portal_a)
    ids = {t["id"] for t in call(plain, "get", "/api/v1/tickets").body["results"]}
    assert ids == {mine.pk}
    assert call(plain, "get", f"/api/v1/tickets/{colleagues.pk}").status_code == 404
    admin = api_client(world.portal_admin_a)
    ids = {t["id"] for t in call(admin, "get", "/api/v1/tickets").body["results"]}
    assert ids == {mine.pk, colleagues.pk}


def test_customers_never_see_internal_notes(world):
    ticket = _ticket(world, requester_user=world.portal_a)
    services.ticket_reply(
        actor=world.engineer, ticket=ticket, body="客户电脑需要换硬盘", kind="note"
    )
    services.ticket_reply(actor=world.engineer, ticket=ticket, body="您好，我们明天上门")
    staff = call(api_client(world.engineer), "get", f"/api/v1/tickets/{ticket.pk}/replies").body
    portal = call(api_client(world.portal_a), "get", f"/api/v1/tickets/{ticket.pk}/replies").body
    assert len(staff) == 2
    assert [e["body"] for e in portal] == ["您好，我们明天上门"]
    response = call(
        api_client(world.portal_a),
        "post",
        f"/api/v1/tickets/{ticket.pk}/replies",
        {"body": "偷看", "kind": "note"},
    )
    assert response.status_code == 422


def test_status_workflow_through_the_api(world):
    ticket = _ticket(world)
    client = api_client(world.engineer)
    response = call(client, "patch", f"/api/v1/tickets/{ticket.pk}", {"status": "closed"})
    assert response.status_code == 422
    assert response.body["errors"][0]["field"] == "status"
    response = call(client, "patch", f"/api/v1/tickets/{ticket.pk}", {"status": "waiting_customer"})
    assert response.status_code == 200
    assert response.body["sla_paused"] is True
    call(client, "patch", f"/api/v1/tickets/{ticket.pk}", {"status": "resolved"})
    call(client, "patch", f"/api/v1/tickets/{ticket.pk}", {"status": "closed"})
    response = call(client, "post", f"/api/v1/tickets/{ticket.pk}/replies", {"body": "补充"})
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"


def test_import_with_original_time(world):
    response = call(
        api_client(world.admin),
        "post",
        "/api/v1/tickets",
        {
            "customer_id": world.customer_a.pk,
            "title": "旧系统工单",
            "imported": True,
            "opened_at": "2025-03-03T09:00:00+08:00",
        },
    )
    assert response.status_code == 201
    assert response.body["opened_at"].startswith("2025-03-03T01:00:00")
    assert response.body["imported"] is True


def test_ticket_list_filters_and_search(world):
    a = _ticket(world, priority="P1")
    services.ticket_create(actor=None, customer=world.customer_a, title="VPN 断线", channel="email")
    client = api_client(world.admin)
    assert [
        t["id"] for t in call(client, "get", "/api/v1/tickets", priority="P1").body["results"]
    ] == [a.pk]
    found = call(client, "get", "/api/v1/tickets", q="邮箱").body["results"]
    assert [t["id"] for t in found] == [a.pk]
    assert len(call(client, "get", "/api/v1/tickets", unassigned="true").body["results"]) == 2


def test_satisfaction_survey_once_after_resolution(world):
    ticket = _ticket(world, requester_user=world.portal_a)
    portal = api_client(world.portal_a)
    url = f"/api/v1/tickets/{ticket.pk}/satisfaction"
    assert call(portal, "post", url, {"score": 5}).status_code == 409  # not resolved yet
    services.ticket_set_status(actor=world.engineer, ticket=ticket, status="resolved")
    assert call(portal, "post", url, {"score": 6}).status_code == 422
    assert call(api_client(world.engineer), "post", url, {"score": 1}).status_code == 422
    response = call(portal, "post", url, {"score": 4, "comment": "响应很快，下次希望一次修好"})
    assert response.status_code == 200
    assert response.body["csat_score"] == 4
    assert call(portal, "post", url, {"score": 5}).status_code == 409
    assert (
        DomainEvent.objects.filter(name="ticket.csat_received", object_id=str(ticket.pk)).count()
        == 1
    )


def test_search_finds_public_replies_but_never_internal_notes(world):
    ticket = _ticket(world, requester_user=world.portal_a)
    services.ticket_reply(actor=world.engineer, ticket=ticket, body="已更换硒鼓")
    services.ticket_reply(
        actor=world.engineer, ticket=ticket, body="客户机房钥匙在前台", kind="note"
    )
    services.ticket_update(actor=world.dispatcher, ticket=ticket, title="打印模糊")
    staff = api_client(world.engineer)
    assert [t["id"] for t in call(staff, "get", "/api/v1/tickets", q="硒鼓").body["results"]] == [
        ticket.pk
    ]
    assert call(staff, "get", "/api/v1/tickets", q="钥匙").body["results"] == []
    portal = api_client(world.portal_a)
    assert [t["id"] for t in call(portal, "get", "/api/v1/tickets", q="硒鼓").body["results"]] == [
        ticket.pk
    ]
