"""Canned replies (常用回复), saved queue views and automatic assignment: services, scope,
permissions and the pages that use them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from onestop.core.models import AuditEvent
from onestop.servicedesk import selectors, services
from onestop.servicedesk.models import CannedReply, SavedTicketView, TeamRouting
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _ticket(world, customer=None):
    return services.ticket_create(
        actor=world.dispatcher,
        customer=customer or world.customer_a,
        title="打印机卡纸",
        channel="phone",
    )


def _canned(world, *, team=None, title="重启打印机", body="请先关闭电源，30 秒后再打开。"):
    return services.canned_reply_create(actor=world.admin, title=title, body=body, team=team)


# Services and scope ----------------------------------------------------------------------------


def test_create_update_delete_are_audited(world):
    reply = services.canned_reply_create(
        actor=world.engineer, title=" 远程协助 ", body="请打开向日葵", team=world.team_a
    )
    assert reply.title == "远程协助"
    assert reply.created_by == world.engineer
    services.canned_reply_update(actor=world.engineer, reply=reply, body="请打开 ToDesk")
    reply.refresh_from_db()
    assert reply.body == "请打开 ToDesk"
    pk = reply.pk
    services.canned_reply_delete(actor=world.engineer, reply=reply)
    assert not CannedReply.objects.filter(pk=pk).exists()
    actions = set(
        AuditEvent.objects.filter(
            object_type="servicedesk.cannedreply", object_id=str(pk)
        ).values_list("action", flat=True)
    )
    assert actions == {"create", "update", "delete"}


def test_cannot_share_with_a_team_one_is_not_in(world):
    with pytest.raises(ValidationError) as exc:
        services.canned_reply_create(
            actor=world.engineer, title="B 组专用", body="…", team=world.team_b
        )
    assert "team" in exc.value.error_dict
    assert not CannedReply.objects.exists()
    # Admins and managers may share with any team.
    assert (
        services.canned_reply_create(
            actor=world.manager, title="B 组专用", body="…", team=world.team_b
        ).team
        == world.team_b
    )


def test_update_rejects_unknown_fields(world):
    reply = _canned(world)
    with pytest.raises(TypeError):
        services.canned_reply_update(actor=world.admin, reply=reply, created_by=None)


def test_staff_see_global_and_their_teams_replies_customers_none(world):
    shared = _canned(world, title="全局")
    mine = _canned(world, title="A 组", team=world.team_a)
    other = _canned(world, title="B 组", team=world.team_b)
    assert set(selectors.canned_reply_list(user=world.engineer)) == {shared, mine}
    assert set(selectors.canned_reply_list(user=world.other_engineer)) == {shared, other}
    assert set(selectors.canned_reply_list(user=world.manager)) == {shared, mine, other}
    assert not selectors.canned_reply_list(user=world.portal_admin_a).exists()


# Pages ----------------------------------------------------------------------------------------


def test_list_page_shows_only_visible_replies(world):
    _canned(world, title="A 组回复", team=world.team_a)
    _canned(world, title="B 组回复", team=world.team_b)
    response = client_for(world.engineer).get(reverse("ticket_canned_list"))
    assert response.status_code == 200
    assert "A 组回复" in response.content.decode()
    assert "B 组回复" not in response.content.decode()


def test_list_page_refuses_customers(world):
    assert client_for(world.portal_a).get(reverse("ticket_canned_list")).status_code == 403


def test_create_edit_delete_pages(world):
    client = client_for(world.engineer)
    response = client.post(
        reverse("ticket_canned_create"),
        {"title": "密码重置", "body": "已为您重置密码。", "team": world.team_a.pk},
    )
    assert response.status_code == 302
    reply = CannedReply.objects.get(title="密码重置")
    assert reply.team == world.team_a
    response = client.post(
        reverse("ticket_canned_edit", args=[reply.pk]),
        {"title": "密码重置", "body": "新密码已通过短信发送。", "team": ""},
    )
    assert response.status_code == 302
    reply.refresh_from_db()
    assert reply.team is None and reply.body.startswith("新密码")
    response = client.post(reverse("ticket_canned_delete", args=[reply.pk]))
    assert response.status_code == 302
    assert not CannedReply.objects.filter(pk=reply.pk).exists()


def test_create_page_shows_errors_and_changes_nothing(world):
    response = client_for(world.engineer).post(
        reverse("ticket_canned_create"), {"title": "", "body": "x", "team": world.team_b.pk}
    )
    assert response.status_code == 400
    assert not CannedReply.objects.exists()


def test_other_teams_reply_is_absent_and_sales_may_not_write(world):
    other = _canned(world, team=world.team_b)
    client = client_for(world.engineer)
    assert client.get(reverse("ticket_canned_edit", args=[other.pk])).status_code == 404
    assert client.post(reverse("ticket_canned_delete", args=[other.pk])).status_code == 404
    assert CannedReply.objects.filter(pk=other.pk).exists()
    mine = _canned(world, team=world.team_a)
    sales = client_for(world.sales)
    assert sales.get(reverse("ticket_canned_list")).status_code == 200
    assert sales.get(reverse("ticket_canned_edit", args=[mine.pk])).status_code == 403
    response = sales.post(reverse("ticket_canned_create"), {"title": "x", "body": "y"})
    assert response.status_code == 403


def test_ticket_page_offers_canned_replies_and_fills_the_text_without_js(world):
    ticket = _ticket(world)
    reply = _canned(world, title="重启打印机", body="请先关闭电源再打开。", team=world.team_a)
    hidden = _canned(world, title="B 组秘籍", team=world.team_b)
    client = client_for(world.engineer)
    page = client.get(reverse("ticket_detail", args=[ticket.pk])).content.decode()
    assert "重启打印机" in page
    assert "B 组秘籍" not in page
    assert 'id="reply-body"' in page
    # Without JS the "Insert" button submits a GET that ends on the ticket page, text filled in.
    response = client.get(reverse("ticket_canned_insert", args=[ticket.pk]), {"canned": reply.pk})
    assert response.status_code == 302
    assert response.url == reverse("ticket_detail", args=[ticket.pk]) + f"?canned={reply.pk}#reply"
    page = client.get(reverse("ticket_detail", args=[ticket.pk]), {"canned": reply.pk})
    assert "请先关闭电源再打开。</textarea>" in page.content.decode()
    # Another team's reply is not there to insert.
    response = client.get(reverse("ticket_detail", args=[ticket.pk]), {"canned": hidden.pk})
    assert response.status_code == 404


def test_htmx_insert_returns_the_filled_text_box(world):
    ticket = _ticket(world)
    reply = _canned(world, body="您好，工程师将在 30 分钟内联系您。")
    response = client_for(world.engineer).get(
        reverse("ticket_canned_insert", args=[ticket.pk]),
        {"canned": reply.pk},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.strip().startswith('<div id="reply-body">')
    assert "您好，工程师将在 30 分钟内联系您。</textarea>" in body


def test_insert_outside_scope_is_404(world):
    foreign = _ticket(world, customer=world.customer_b)
    reply = _canned(world)
    response = client_for(world.engineer).get(
        reverse("ticket_canned_insert", args=[foreign.pk]),
        {"canned": reply.pk},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 404


def test_ticket_page_query_count_does_not_grow_with_canned_replies(world):
    ticket = _ticket(world)
    client = client_for(world.engineer)
    _canned(world)
    client.get(reverse("ticket_detail", args=[ticket.pk]))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("ticket_detail", args=[ticket.pk]))
    for n in range(10):
        _canned(world, title=f"回复 {n}", team=world.team_a)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("ticket_detail", args=[ticket.pk]))
    assert len(many) == len(few)


# Saved ticket views ---------------------------------------------------------------------------


def test_save_view_keeps_only_queue_filters_and_is_audited(world):
    client = client_for(world.engineer)
    response = client.post(
        reverse("ticket_view_save"),
        {"name": "我的 P1", "query": "priority=P1&status=open&cursor=abc&evil=1"},
    )
    assert response.status_code == 302
    view = SavedTicketView.objects.get(name="我的 P1")
    assert view.user == world.engineer
    assert QueryDict(view.query) == QueryDict("priority=P1&status=open")
    assert response.url == reverse("ticket_list") + "?" + view.query
    assert AuditEvent.objects.filter(
        action="create", object_type="servicedesk.savedticketview", object_id=str(view.pk)
    ).exists()


def test_save_view_with_htmx_takes_the_live_filters(world):
    response = client_for(world.engineer).post(
        reverse("ticket_view_save"),
        {"name": "未分配", "query": "", "assignee": "none", "q": ""},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    view = SavedTicketView.objects.get()
    assert view.query == "assignee=none"
    assert response["HX-Redirect"] == reverse("ticket_list") + "?assignee=none"


def test_save_view_without_a_name_changes_nothing(world):
    response = client_for(world.engineer).post(reverse("ticket_view_save"), {"name": ""})
    assert response.status_code == 302
    assert not SavedTicketView.objects.exists()


def test_queue_lists_own_and_shared_views_only(world):
    services.saved_ticket_view_create(actor=world.engineer, name="我的视图", query="priority=P1")
    services.saved_ticket_view_create(
        actor=world.dispatcher, name="调度共享", query="assignee=none", is_shared=True
    )
    services.saved_ticket_view_create(actor=world.dispatcher, name="调度私有", query="")
    services.saved_ticket_view_create(
        actor=world.other_engineer, name="B 组共享", query="", is_shared=True
    )
    page = client_for(world.engineer).get(reverse("ticket_list")).content.decode()
    assert "我的视图" in page and "?priority=P1" in page
    assert "调度共享" in page
    assert "调度私有" not in page
    assert "B 组共享" not in page
    assert reverse("ticket_view_save") in page  # the "save this view" form


def test_only_the_owner_deletes_a_view(world):
    shared = services.saved_ticket_view_create(
        actor=world.dispatcher, name="调度共享", query="", is_shared=True
    )
    private = services.saved_ticket_view_create(actor=world.other_engineer, name="私有", query="")
    client = client_for(world.engineer)
    assert client.post(reverse("ticket_view_delete", args=[shared.pk])).status_code == 403
    assert client.post(reverse("ticket_view_delete", args=[private.pk])).status_code == 404
    assert SavedTicketView.objects.count() == 2
    response = client_for(world.dispatcher).post(reverse("ticket_view_delete", args=[shared.pk]))
    assert response.status_code == 302
    assert not SavedTicketView.objects.filter(pk=shared.pk).exists()


def test_queue_query_count_does_not_grow_with_saved_views(world):
    client = client_for(world.engineer)
    client.get(reverse("ticket_list"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("ticket_list"))
    for n in range(8):
        services.saved_ticket_view_create(
            actor=world.dispatcher, name=f"视图 {n}", query="", is_shared=True
        )
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("ticket_list"))
    assert len(many) == len(few)


def test_customers_cannot_save_views(world):
    response = client_for(world.portal_a).post(reverse("ticket_view_save"), {"name": "x"})
    assert response.status_code == 403
    assert not SavedTicketView.objects.exists()


# Automatic assignment per team ----------------------------------------------------------------


@pytest.fixture
def routed_team(world):
    """A team of three engineers (one inactive, one a dispatcher who never gets tickets)."""
    from tests import factories

    first = factories.user("engineer", username="eng_first")
    second = factories.user("engineer", username="eng_second")
    gone = factories.user("engineer", username="eng_gone")
    gone.is_active = False
    gone.save()
    team = factories.team(
        name="桌面组",
        members=[second, first, gone, world.dispatcher],
        customers=[world.customer_a],
    )
    return team, sorted([first, second], key=lambda u: u.pk)


def _team_ticket(world, team, **kwargs):
    return services.ticket_create(
        actor=world.dispatcher,
        customer=world.customer_a,
        title="电脑无法开机",
        channel="phone",
        team=team,
        **kwargs,
    )


def test_manual_team_leaves_tickets_unassigned(world, routed_team):
    team, _engineers = routed_team
    assert _team_ticket(world, team).assignee is None
    services.team_routing_set(actor=world.admin, team=team, mode="manual")
    ticket = _team_ticket(world, team)
    assert ticket.assignee is None and ticket.status == "new"


def test_round_robin_walks_active_engineers_in_a_stable_order(world, routed_team):
    team, (first, second) = routed_team
    services.team_routing_set(actor=world.admin, team=team, mode="round_robin")
    assignees = [_team_ticket(world, team).assignee for _ in range(5)]
    assert assignees == [first, second, first, second, first]
    ticket = _team_ticket(world, team)
    ticket.refresh_from_db()
    assert ticket.status == "assigned"
    created = AuditEvent.objects.filter(
        action="create", object_type="servicedesk.ticket", object_id=str(ticket.pk)
    ).get()
    assert created.changes["assignee"][1] in (str(second.pk), second.pk, str(second))


def test_an_assignee_given_is_kept(world, routed_team):
    team, (first, second) = routed_team
    services.team_routing_set(actor=world.admin, team=team, mode="round_robin")
    assert _team_ticket(world, team, assignee=second).assignee == second
    assert _team_ticket(world, team).assignee == first


def test_least_loaded_picks_the_engineer_with_fewest_open_tickets(world, routed_team):
    team, (first, second) = routed_team
    for _ in range(2):
        _team_ticket(world, team, assignee=first)
    done = _team_ticket(world, team, assignee=second)
    services.ticket_set_status(actor=world.admin, ticket=done, status="in_progress")
    services.ticket_set_status(actor=world.admin, ticket=done, status="resolved")
    _team_ticket(world, team, assignee=second)
    services.team_routing_set(actor=world.admin, team=team, mode="least_loaded")
    # first has 2 open, second 1 open (its resolved one does not count).
    assert _team_ticket(world, team).assignee == second
    # now both have 2: the tie goes to the lower id, in the same stable order.
    assert _team_ticket(world, team).assignee == first


def test_team_without_active_engineers_stays_unassigned(world):
    services.team_routing_set(actor=world.admin, team=world.team_b, mode="round_robin")
    world.other_engineer.is_active = False
    world.other_engineer.save()
    ticket = services.ticket_create(
        actor=world.admin, customer=world.customer_b, title="x", channel="phone", team=world.team_b
    )
    assert ticket.assignee is None


def test_routing_change_is_audited(world):
    routing = services.team_routing_set(actor=world.admin, team=world.team_a, mode="round_robin")
    services.team_routing_set(actor=world.admin, team=world.team_a, mode="least_loaded")
    assert list(
        AuditEvent.objects.filter(object_type="servicedesk.teamrouting", object_id=str(routing.pk))
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["create", "update"]


def test_routing_page_for_admins_and_managers_only(world):
    for who in ("engineer", "dispatcher", "portal_a"):
        assert client_for(getattr(world, who)).get(reverse("ticket_routing")).status_code == 403
    page = client_for(world.manager).get(reverse("ticket_routing"))
    assert page.status_code == 200
    assert world.team_a.name in page.content.decode()
    response = client_for(world.manager).post(
        reverse("ticket_routing"), {"team": world.team_a.pk, "mode": "least_loaded"}
    )
    assert response.status_code == 302
    assert world.team_a.routing.mode == "least_loaded"


def test_routing_page_rejects_bad_mode_and_changes_nothing(world):
    response = client_for(world.admin).post(
        reverse("ticket_routing"), {"team": world.team_a.pk, "mode": "lottery"}
    )
    assert response.status_code == 400
    assert not TeamRouting.objects.exists()


def test_routing_page_query_count_does_not_grow_with_teams(world):
    client = client_for(world.admin)
    client.get(reverse("ticket_routing"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("ticket_routing"))
    from tests import factories

    for n in range(5):
        team = factories.team(name=f"组 {n}", members=[world.engineer], customers=[])
        services.team_routing_set(actor=world.admin, team=team, mode="round_robin")
        _team_ticket(world, team)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("ticket_routing"))
    assert len(many) == len(few)
