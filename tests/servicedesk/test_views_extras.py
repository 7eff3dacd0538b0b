"""The ticket page's extras (files, people and links, merge, time), the knowledge base pages and
the recurring-ticket pages: rendering, scope (404), role (403), audited writes, errors shown."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from onestop.contracts import services as contracts
from onestop.core.models import AuditEvent
from onestop.servicedesk import services
from onestop.servicedesk.models import (
    KnowledgeArticle,
    RecurringTicket,
    Ticket,
    TicketAttachment,
    TimeEntry,
)


@pytest.fixture
def login(login):
    """Clients that read the pages in English, so the assertions match the msgids."""

    def client_for(user):
        client = login(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        return client

    return client_for


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def ticket(world, **fields) -> Ticket:
    fields.setdefault("customer", world.customer_a)
    fields.setdefault("title", "邮箱无法登录")
    fields.setdefault("channel", "phone")
    return services.ticket_create(actor=world.dispatcher, **fields)


def _audited(obj, action) -> bool:
    return AuditEvent.objects.filter(
        object_type=f"{obj._meta.app_label}.{obj._meta.model_name}",
        object_id=str(obj.pk),
        action=action,
    ).exists()


def _block_ticket(world, minutes=60):
    contract = contracts.contract_create(
        actor=None,
        customer=world.customer_a,
        number="BLK-1",
        name="预付 1 小时",
        start_date=dt.date(2026, 1, 1),
        pricing="block_hours",
        block_minutes=minutes,
    )
    return ticket(world, title="上门维修", contract=contract)


# Attachments ---------------------------------------------------------------------------------


def test_staff_uploads_an_internal_file_and_the_customer_never_sees_it(world, login):
    own = ticket(world, requester_user=world.portal_a)
    url = reverse("ticket_attach", args=[own.pk])
    upload = SimpleUploadedFile("日志.txt", b"error 42")
    response = login(world.engineer).post(url, {"file": upload, "is_public": ""})
    assert response.status_code == 302
    attachment = TicketAttachment.objects.get(ticket=own)
    assert not attachment.is_public
    assert _audited(attachment, "create")
    page = login(world.engineer).get(reverse("ticket_detail", args=[own.pk]))
    assert "日志.txt" in page.content.decode()
    assert f"/api/v1/attachments/{attachment.pk}/download" in page.content.decode()
    portal = login(world.portal_a).get(reverse("ticket_detail", args=[own.pk]))
    assert "日志.txt" not in portal.content.decode()
    download = f"/api/v1/attachments/{attachment.pk}/download"
    assert login(world.engineer).get(download).status_code == 200
    assert login(world.portal_a).get(download).status_code == 404


def test_customer_uploads_a_file_that_is_always_public(world, login):
    own = ticket(world, requester_user=world.portal_a)
    url = reverse("ticket_attach", args=[own.pk])
    upload = SimpleUploadedFile("screen.png", b"\x89PNG")
    response = login(world.portal_a).post(url, {"file": upload, "is_public": ""})
    assert response.status_code == 302
    attachment = TicketAttachment.objects.get(ticket=own)
    assert attachment.is_public
    page = login(world.portal_a).get(reverse("ticket_detail", args=[own.pk]))
    assert "screen.png" in page.content.decode()
    assert 'name="is_public"' not in page.content.decode()


def test_a_disallowed_file_type_is_shown_on_the_form(world, login):
    own = ticket(world)
    upload = SimpleUploadedFile("virus.exe", b"MZ")
    response = login(world.engineer).post(reverse("ticket_attach", args=[own.pk]), {"file": upload})
    assert response.status_code == 400
    assert "Files of type “.exe” are not accepted." in response.content.decode()
    assert not TicketAttachment.objects.exists()


def test_upload_to_another_customers_ticket_is_not_found(world, login):
    other = ticket(world, customer=world.customer_b)
    upload = SimpleUploadedFile("a.txt", b"x")
    for user in (world.engineer, world.portal_a):
        response = login(user).post(reverse("ticket_attach", args=[other.pk]), {"file": upload})
        assert response.status_code == 404


# People, links, merge ------------------------------------------------------------------------


def test_watchers_copies_parent_and_related_are_saved_and_audited(world, login):
    main = ticket(world, title="主工单")
    sibling = ticket(world, title="相关")
    child = ticket(world, title="子工单")
    response = login(world.engineer).post(
        reverse("ticket_people", args=[child.pk]),
        {
            "watchers": [world.dispatcher.pk],
            "cc_contacts": [world.contact_a.pk],
            "parent": main.pk,
            "related": [sibling.pk],
        },
    )
    assert response.status_code == 302
    child.refresh_from_db()
    assert child.parent == main
    assert list(child.watchers.all()) == [world.dispatcher]
    assert list(child.cc_contacts.all()) == [world.contact_a]
    assert list(child.related.all()) == [sibling]
    assert _audited(child, "update")
    page = login(world.engineer).get(reverse("ticket_detail", args=[main.pk])).content.decode()
    assert f'href="{reverse("ticket_detail", args=[child.pk])}"' in page


def test_people_and_links_are_limited_to_the_tickets_customer(world, login):
    mine = ticket(world)
    other = ticket(world, customer=world.customer_b)
    response = login(world.admin).post(
        reverse("ticket_people", args=[mine.pk]),
        {"cc_contacts": [world.contact_b.pk], "parent": other.pk, "watchers": [world.portal_a.pk]},
    )
    assert response.status_code == 400
    mine.refresh_from_db()
    assert mine.parent is None
    assert not mine.cc_contacts.exists()
    assert not mine.watchers.exists()


def test_merge_moves_the_duplicate_and_says_where(world, login):
    target = ticket(world, title="原工单")
    duplicate = ticket(world, title="重复")
    response = login(world.engineer).post(
        reverse("ticket_merge", args=[duplicate.pk]), {"target": target.pk}
    )
    assert response.status_code == 302
    duplicate.refresh_from_db()
    assert duplicate.merged_into == target
    assert duplicate.status == "closed"
    assert _audited(duplicate, "update")
    page = login(world.engineer).get(reverse("ticket_detail", args=[duplicate.pk]))
    assert f"#{target.pk}</a>" in page.content.decode()
    assert "Merged into" in page.content.decode()


def test_merge_into_another_customers_ticket_is_refused(world, login):
    mine = ticket(world)
    other = ticket(world, customer=world.customer_b)
    response = login(world.admin).post(
        reverse("ticket_merge", args=[mine.pk]), {"target": other.pk}
    )
    assert response.status_code == 400
    mine.refresh_from_db()
    assert mine.merged_into is None


@pytest.mark.parametrize("name", ["ticket_people", "ticket_merge", "ticket_time"])
def test_customers_have_no_desk_tools(world, login, name):
    own = ticket(world, requester_user=world.portal_a)
    response = login(world.portal_a).post(reverse(name, args=[own.pk]), {})
    assert response.status_code == 403
    page = login(world.portal_a).get(reverse("ticket_detail", args=[own.pk])).content.decode()
    for form_url in ("ticket_people", "ticket_merge", "ticket_time"):
        assert reverse(form_url, args=[own.pk]) not in page


# Time ----------------------------------------------------------------------------------------


def test_time_is_logged_totalled_and_drawn_from_the_block(world, login):
    work = _block_ticket(world, minutes=60)
    response = login(world.engineer).post(
        reverse("ticket_time", args=[work.pk]),
        {"minutes": 45, "kind": "onsite", "billable": "on", "note": "换硒鼓"},
    )
    assert response.status_code == 302
    entry = TimeEntry.objects.get(ticket=work)
    assert _audited(entry, "create")
    page = login(world.engineer).get(reverse("ticket_detail", args=[work.pk])).content.decode()
    assert "45 minutes logged in total" in page
    assert "15 of 60 minutes left (45 used)" in page
    assert "换硒鼓" in page


def test_overdrawing_the_block_is_shown_on_the_form(world, login):
    work = _block_ticket(world, minutes=30)
    response = login(world.engineer).post(
        reverse("ticket_time", args=[work.pk]), {"minutes": 45, "kind": "remote", "billable": "on"}
    )
    assert response.status_code == 400
    assert "This would overdraw the block of hours of BLK-1: 30 minutes left." in (
        response.content.decode()
    )
    assert not TimeEntry.objects.exists()


def test_customers_never_see_time_entries(world, login):
    own = ticket(world, requester_user=world.portal_a)
    services.time_entry_create(actor=world.engineer, ticket=own, minutes=33, note="内部备注")
    for user in (world.portal_a, world.portal_admin_a):
        page = login(user).get(reverse("ticket_detail", args=[own.pk])).content.decode()
        assert "内部备注" not in page
        assert "logged in total" not in page


def test_ticket_page_queries_stay_bounded(world, login, django_assert_max_num_queries):
    work = _block_ticket(world, minutes=10_000)
    client = login(world.engineer)
    url = reverse("ticket_detail", args=[work.pk])
    client.get(url)

    def add(count):
        for i in range(count):
            services.time_entry_create(actor=world.engineer, ticket=work, minutes=5)
            services.ticket_attach(
                actor=world.engineer,
                ticket=work,
                upload=SimpleUploadedFile(f"f{i}.txt", b"x"),
            )
            ticket(world, title=f"兄弟 {i}")

    add(1)
    with django_assert_max_num_queries(60) as few:
        client.get(url)
    add(10)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url).status_code == 200


# Knowledge base ------------------------------------------------------------------------------


def _article(world, **fields):
    fields.setdefault("title", "打印机卡纸处理")
    fields.setdefault("body", "打开后盖，取出纸张。")
    return services.knowledge_article_create(actor=world.engineer, **fields)


def test_staff_list_search_and_read_articles(world, login):
    draft = _article(world, title="内部：交换机重置")
    _article(world, title="VPN 连接指南", visibility="all_customers", is_published=True)
    client = login(world.engineer)
    page = client.get(reverse("knowledge_list")).content.decode()
    assert "内部：交换机重置" in page and "VPN 连接指南" in page
    found = client.get(reverse("knowledge_list"), {"q": "交换机"}).content.decode()
    assert "内部：交换机重置" in found and "VPN 连接指南" not in found
    detail = client.get(reverse("knowledge_detail", args=[draft.pk]))
    assert detail.status_code == 200
    assert reverse("knowledge_edit", args=[draft.pk]) in detail.content.decode()


def test_knowledge_base_is_in_the_menu(world, login):
    page = login(world.engineer).get(reverse("ticket_list")).content.decode()
    assert f'href="{reverse("knowledge_list")}"' in page


def test_customers_read_only_the_published_articles_meant_for_them(world, login):
    internal = _article(world, title="内部文章")
    unpublished = _article(world, title="草稿文章", visibility="all_customers")
    for_all = _article(world, title="公开文章", visibility="all_customers", is_published=True)
    for_b = _article(
        world,
        title="乙方专用",
        visibility="selected",
        customers=[world.customer_b],
        is_published=True,
    )
    for_a = _article(
        world,
        title="甲方专用",
        visibility="selected",
        customers=[world.customer_a],
        is_published=True,
    )
    client = login(world.portal_a)
    page = client.get(reverse("knowledge_list")).content.decode()
    assert "公开文章" in page and "甲方专用" in page
    for title in ("内部文章", "草稿文章", "乙方专用"):
        assert title not in page
    for article in (for_all, for_a):
        response = client.get(reverse("knowledge_detail", args=[article.pk]))
        assert response.status_code == 200
        assert reverse("knowledge_edit", args=[article.pk]) not in response.content.decode()
    for article in (internal, unpublished, for_b):
        assert client.get(reverse("knowledge_detail", args=[article.pk])).status_code == 404
    assert client.get(reverse("knowledge_create")).status_code == 403
    assert client.get(reverse("knowledge_edit", args=[for_a.pk])).status_code == 403


def test_article_create_edit_delete_are_audited(world, login):
    client = login(world.manager)
    response = client.post(
        reverse("knowledge_create"),
        {
            "title": "重置密码",
            "category": "账号",
            "body": "登录门户，点击忘记密码。",
            "visibility": "selected",
            "customers": [world.customer_a.pk],
            "is_published": "on",
        },
    )
    assert response.status_code == 302
    article = KnowledgeArticle.objects.get(title="重置密码")
    assert list(article.customers.all()) == [world.customer_a]
    assert _audited(article, "create")
    response = client.post(
        reverse("knowledge_edit", args=[article.pk]),
        {"title": "重置密码（新）", "body": "新步骤", "visibility": "all_customers"},
    )
    assert response.status_code == 302
    article.refresh_from_db()
    assert article.title == "重置密码（新）" and not article.is_published
    assert _audited(article, "update")
    pk = article.pk
    assert client.post(reverse("knowledge_delete", args=[pk])).status_code == 302
    assert not KnowledgeArticle.objects.filter(pk=pk).exists()
    assert AuditEvent.objects.filter(object_id=str(pk), action="delete").exists()


def test_selected_visibility_needs_customers_and_the_error_is_shown(world, login):
    response = login(world.engineer).post(
        reverse("knowledge_create"),
        {"title": "无读者", "body": "x", "visibility": "selected"},
    )
    assert response.status_code == 400
    assert "Choose the customers who may read it." in response.content.decode()
    assert not KnowledgeArticle.objects.exists()


def test_article_customers_are_limited_to_the_users_scope(world, login):
    response = login(world.engineer).get(reverse("knowledge_create")).content.decode()
    assert world.customer_a.name in response
    assert world.customer_b.name not in response


def test_engineer_may_not_delete_an_article(world, login):
    article = _article(world)
    assert (
        login(world.engineer).get(reverse("knowledge_delete", args=[article.pk])).status_code == 403
    )


def test_knowledge_list_queries_stay_bounded(world, login, django_assert_max_num_queries):
    client = login(world.portal_a)
    _article(world, title="a0", visibility="all_customers", is_published=True)
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("knowledge_list"))
    for i in range(15):
        _article(
            world,
            title=f"a{i + 1}",
            visibility="selected",
            customers=[world.customer_a],
            is_published=True,
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(reverse("knowledge_list")).status_code == 200


# Recurring tickets ---------------------------------------------------------------------------


def _recurring(world, customer=None, **fields):
    return services.recurring_ticket_create(
        actor=world.dispatcher,
        customer=customer or world.customer_a,
        title=fields.pop("title", "每月备份检查"),
        frequency=fields.pop("frequency", "monthly"),
        day_of_month=fields.pop("day_of_month", 1),
        time_of_day=fields.pop("time_of_day", dt.time(9, 0)),
        **fields,
    )


def test_recurring_list_shows_the_next_run_in_the_users_zone(world, login):
    recurring = _recurring(world)
    world.engineer.time_zone = "Europe/London"
    world.engineer.save(update_fields=["time_zone"])
    other = _recurring(world, customer=world.customer_b, title="乙方巡检")
    page = login(world.engineer).get(reverse("ticket_recurring_list")).content.decode()
    assert "每月备份检查" in page and other.title not in page
    london = recurring.next_run_at.astimezone(ZoneInfo("Europe/London"))
    assert london.strftime("%Y-%m-%d %H:%M") in page


def test_recurring_create_edit_delete_are_audited(world, login):
    client = login(world.dispatcher)
    response = client.post(
        reverse("ticket_recurring_create"),
        {
            "customer": world.customer_a.pk,
            "title": "每周巡检",
            "type": "service_request",
            "priority": "P3",
            "frequency": "weekly",
            "weekday": "0",
            "time_of_day": "10:00",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    recurring = RecurringTicket.objects.get(title="每周巡检")
    assert recurring.weekday == 0
    assert _audited(recurring, "create")
    response = client.post(
        reverse("ticket_recurring_edit", args=[recurring.pk]),
        {
            "title": "每周巡检（周五）",
            "type": "service_request",
            "priority": "P2",
            "frequency": "weekly",
            "weekday": "4",
            "time_of_day": "16:00",
        },
    )
    assert response.status_code == 302
    recurring.refresh_from_db()
    assert recurring.weekday == 4 and not recurring.is_active
    assert recurring.customer == world.customer_a
    assert _audited(recurring, "update")
    pk = recurring.pk
    assert client.post(reverse("ticket_recurring_delete", args=[pk])).status_code == 302
    assert AuditEvent.objects.filter(object_id=str(pk), action="delete").exists()


def test_weekly_schedule_without_a_weekday_shows_the_error(world, login):
    response = login(world.dispatcher).post(
        reverse("ticket_recurring_create"),
        {
            "customer": world.customer_a.pk,
            "title": "缺星期",
            "type": "service_request",
            "priority": "P3",
            "frequency": "weekly",
            "time_of_day": "10:00",
        },
    )
    assert response.status_code == 400
    assert "Choose a weekday" in response.content.decode()
    assert not RecurringTicket.objects.exists()


def test_recurring_scope_and_roles(world, login):
    other = _recurring(world, customer=world.customer_b)
    mine = _recurring(world)
    engineer = login(world.engineer)
    assert engineer.get(reverse("ticket_recurring_edit", args=[other.pk])).status_code == 404
    assert engineer.get(reverse("ticket_recurring_edit", args=[mine.pk])).status_code == 403
    assert engineer.get(reverse("ticket_recurring_create")).status_code == 403
    assert engineer.post(reverse("ticket_recurring_delete", args=[mine.pk])).status_code == 403
    portal = login(world.portal_a)
    assert portal.get(reverse("ticket_recurring_list")).status_code == 403


def test_recurring_list_queries_stay_bounded(world, login, django_assert_max_num_queries):
    client = login(world.admin)
    _recurring(world, assignee=world.engineer, team=world.team_a)
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("ticket_recurring_list"))
    for i in range(15):
        _recurring(world, title=f"r{i}", assignee=world.engineer, team=world.team_a)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(reverse("ticket_recurring_list")).status_code == 200


@pytest.mark.parametrize("name", ["ticket_attach", "ticket_people", "ticket_merge", "ticket_time"])
def test_ticket_tools_on_another_customers_ticket_are_not_found(world, login, name):
    other = ticket(world, customer=world.customer_b)
    assert login(world.engineer).post(reverse(name, args=[other.pk]), {}).status_code == 404
    assert login(world.portal_a).post(reverse(name, args=[other.pk]), {}).status_code == 404
