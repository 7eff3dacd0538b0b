"""In-app notifications from domain events: who hears what, once, and only their own."""

from __future__ import annotations

import pytest
from django.urls import reverse

from onestop.core.models import EventCursor
from onestop.notify import services
from onestop.notify.models import Notification
from onestop.servicedesk import services as desk
from tests.apitest import api_client, call

pytestmark = pytest.mark.django_db


def _inbox(user) -> list[str]:
    return list(Notification.objects.filter(user=user).values_list("kind", flat=True))


def test_team_hears_of_a_new_ticket_once(world):
    ticket = desk.ticket_create(
        actor=world.dispatcher,
        customer=world.customer_a,
        title="服务器宕机",
        channel="phone",
        team=world.team_a,
    )
    assert services.notifications_dispatch() >= 1
    assert _inbox(world.engineer) == ["ticket.created"]
    assert _inbox(world.dispatcher) == []  # the actor is not told of their own change
    assert _inbox(world.other_engineer) == []
    note = Notification.objects.get(user=world.engineer)
    assert note.subject == f"#{ticket.pk} 服务器宕机"
    assert note.url == reverse("ticket_detail", args=[ticket.pk])
    assert services.notifications_dispatch() == 0
    assert Notification.objects.filter(user=world.engineer).count() == 1
    cursor = EventCursor.objects.get(consumer=services.CONSUMER)
    assert cursor.last_event_id > 0


def test_unassigned_ticket_goes_to_the_dispatchers_of_the_customer(world):
    desk.ticket_create(actor=None, customer=world.customer_a, title="无人认领", channel="email")
    services.notifications_dispatch()
    assert _inbox(world.dispatcher) == ["ticket.created"]
    assert _inbox(world.engineer) == []


def test_requester_hears_of_the_resolution(world):
    ticket = desk.ticket_create(
        actor=world.portal_a,
        customer=world.customer_a,
        title="打印机",
        channel="portal",
        requester_user=world.portal_a,
        assignee=world.engineer,
    )
    desk.ticket_set_status(actor=world.engineer, ticket=ticket, status="resolved")
    services.notifications_dispatch()
    assert "ticket.resolved" in _inbox(world.portal_a)
    assert "ticket.created" in _inbox(world.engineer)


def test_inbox_api_shows_only_ones_own(world):
    desk.ticket_create(
        actor=None, customer=world.customer_a, title="网络慢", channel="phone", team=world.team_a
    )
    services.notifications_dispatch()
    mine = Notification.objects.get(user=world.engineer)
    engineer, other = api_client(world.engineer), api_client(world.other_engineer)
    listed = call(engineer, "get", "/api/v1/notifications").body["results"]
    assert [n["id"] for n in listed] == [mine.pk]
    assert listed[0]["title"]
    assert call(other, "get", f"/api/v1/notifications/{mine.pk}").status_code == 404
    assert call(other, "post", f"/api/v1/notifications/{mine.pk}/read").status_code == 404
    assert call(other, "get", "/api/v1/notifications").body["results"] == []
    assert call(other, "post", "/api/v1/notifications/read-all").body == {"marked": 0}
    mine.refresh_from_db()
    assert mine.read_at is None
    assert call(engineer, "post", f"/api/v1/notifications/{mine.pk}/read").body["read_at"]
    assert call(engineer, "get", "/api/v1/notifications", unread="true").body["results"] == []


def test_inbox_page_opens_the_ticket_and_marks_read(world, client):
    ticket = desk.ticket_create(
        actor=None, customer=world.customer_a, title="邮件退信", channel="email", team=world.team_a
    )
    services.notifications_dispatch()
    client.force_login(world.engineer)
    page = client.get(reverse("notification_list"))
    assert page.status_code == 200
    assert "邮件退信" in page.content.decode()
    note = Notification.objects.get(user=world.engineer)
    response = client.post(reverse("notification_open", args=[note.pk]))
    assert response["Location"] == reverse("ticket_detail", args=[ticket.pk])
    note.refresh_from_db()
    assert note.read_at is not None
    client.force_login(world.other_engineer)
    assert client.post(reverse("notification_open", args=[note.pk])).status_code == 404


def test_inbox_page_query_count_does_not_grow(world, client, django_assert_max_num_queries):
    for n in range(3):
        desk.ticket_create(
            actor=None,
            customer=world.customer_a,
            title=f"工单{n}",
            channel="phone",
            team=world.team_a,
        )
    services.notifications_dispatch()
    client.force_login(world.engineer)
    client.get(reverse("notification_list"))
    for n in range(20):
        desk.ticket_create(
            actor=None,
            customer=world.customer_a,
            title=f"更多{n}",
            channel="phone",
            team=world.team_a,
        )
    services.notifications_dispatch()
    with django_assert_max_num_queries(8):
        assert client.get(reverse("notification_list")).status_code == 200
