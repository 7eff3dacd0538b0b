"""The web UI's pages: rendering, scope (404), role (403), writes through forms, query counts."""

from __future__ import annotations

import datetime
import re
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from onestop.core import services
from onestop.core.models import AuditEvent, Contact, Customer, Site, Team, User
from tests import factories

ENTITIES = ("customer", "site", "contact", "team", "user")
PAGES = ("detail", "edit", "delete")


def _objects(world):
    return {
        "customer": (world.customer_a, world.customer_b),
        "site": (world.site_a, world.site_b),
        "contact": (world.contact_a, world.contact_b),
        "team": (world.team_a, world.team_b),
        "user": (world.portal_a, world.portal_b),
    }


def _url(entity, page, obj):
    return reverse(f"{entity}_{page}", args=[obj.pk])


# Rendering -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "home",
        "customer_list",
        "site_list",
        "contact_list",
        "team_list",
        "user_list",
        "audit_list",
        "customer_create",
        "site_create",
        "contact_create",
        "team_create",
        "user_create",
    ],
)
def test_admin_sees_every_list_and_create_page(world, login, name):
    response = login(world.admin).get(reverse(name))
    assert response.status_code == 200
    assert b"<html" in response.content


@pytest.mark.parametrize("entity", ENTITIES)
@pytest.mark.parametrize("page", PAGES)
def test_admin_sees_every_detail_edit_and_delete_page(world, login, entity, page):
    obj = _objects(world)[entity][0]
    response = login(world.admin).get(_url(entity, page, obj))
    assert response.status_code == 200
    assert str(obj).encode() in response.content


def test_anonymous_is_sent_to_login(client, world):
    response = client.get(reverse("customer_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_navigation_shows_only_what_the_role_may_view(world, login):
    admin_page = login(world.admin).get(reverse("home")).content.decode()
    for path in ("/customers/", "/sites/", "/contacts/", "/teams/", "/users/", "/audit/"):
        assert f'href="{path}"' in admin_page
    assert 'href="/api/v1/docs"' in admin_page

    portal_page = login(world.portal_a).get(reverse("home")).content.decode()
    assert 'href="/customers/"' in portal_page
    assert 'href="/teams/"' not in portal_page
    assert 'href="/audit/"' not in portal_page
    assert "/api/v1/docs" not in portal_page


# Scope: another customer's objects are absent (404) --------------------------------------------


@pytest.mark.parametrize("entity", ["customer", "site", "contact", "user"])
@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("who", ["engineer", "portal_a", "portal_admin_a"])
def test_other_customers_objects_are_not_found(world, login, entity, page, who):
    other = _objects(world)[entity][1]
    response = login(getattr(world, who)).get(_url(entity, page, other))
    assert response.status_code == 404
    assert str(other).encode() not in response.content


@pytest.mark.parametrize("page", PAGES)
def test_portal_users_do_not_see_teams(world, login, page):
    response = login(world.portal_admin_a).get(_url("team", page, world.team_a))
    assert response.status_code == 404


@pytest.mark.parametrize("entity", ["customer", "site", "contact"])
def test_engineer_sees_own_customers_objects(world, login, entity):
    mine = _objects(world)[entity][0]
    assert login(world.engineer).get(_url(entity, "detail", mine)).status_code == 200


def test_other_customers_audit_event_is_not_found(world, login):
    event = AuditEvent.objects.filter(object_type="core.customer", customer_id=world.customer_b.pk)
    response = login(world.engineer).get(reverse("audit_detail", args=[event.first().pk]))
    assert response.status_code == 404


def test_lists_leave_out_other_customers(world, login):
    client = login(world.engineer)
    assert world.customer_b.name not in client.get(reverse("customer_list")).content.decode()
    assert world.site_b.name not in client.get(reverse("site_list")).content.decode()
    assert world.contact_b.name not in client.get(reverse("contact_list")).content.decode()
    users = login(world.portal_admin_a).get(reverse("user_list")).content.decode()
    assert "portal_a" in users
    assert "portal_b" not in users


def test_filtering_by_an_invisible_customer_shows_nothing_of_it(world, login):
    url = reverse("contact_list") + f"?customer={world.customer_b.pk}"
    response = login(world.engineer).get(url)
    assert response.status_code == 200
    assert world.contact_b.name not in response.content.decode()


# Role: in scope but not allowed (403) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "url_name", "target"),
    [
        ("engineer", "customer_create", None),
        ("engineer", "customer_edit", "customer_a"),
        ("engineer", "customer_delete", "customer_a"),
        ("engineer", "team_create", None),
        ("engineer", "user_create", None),
        ("engineer", "user_edit", "portal_a"),
        ("sales", "site_delete", "site_a"),
        ("portal_a", "customer_edit", "customer_a"),
        ("portal_a", "contact_create", None),
        ("portal_a", "contact_edit", "contact_a"),
        ("portal_a", "site_create", None),
        ("portal_a", "team_list", None),
        ("portal_a", "audit_list", None),
        ("portal_admin_a", "customer_edit", "customer_a"),
        ("portal_admin_a", "site_delete", "site_a"),
        ("manager", "user_edit", "admin"),
        ("manager", "user_delete", "engineer"),
    ],
)
def test_role_without_the_permission_is_refused(world, login, who, url_name, target):
    args = [getattr(world, target).pk] if target else []
    client = login(getattr(world, who))
    assert client.get(reverse(url_name, args=args)).status_code == 403
    assert client.post(reverse(url_name, args=args), {"name": "x"}).status_code == 403


def test_refused_writes_change_nothing(world, login):
    before = AuditEvent.objects.count()
    login(world.portal_a).post(
        reverse("customer_edit", args=[world.customer_a.pk]),
        {"name": "改名", "short_code": "AAA", "industry": "other", "status": "active"},
    )
    world.customer_a.refresh_from_db()
    assert world.customer_a.name == "上海甲方科技"
    assert AuditEvent.objects.count() == before


def test_buttons_follow_the_permissions(world, login):
    url = _url("customer", "detail", world.customer_a)
    admin_page = login(world.admin).get(url).content.decode()
    assert _url("customer", "edit", world.customer_a) in admin_page
    assert _url("customer", "delete", world.customer_a) in admin_page
    engineer_page = login(world.engineer).get(url).content.decode()
    assert _url("customer", "edit", world.customer_a) not in engineer_page
    assert reverse("site_create") in engineer_page
    portal_page = login(world.portal_a).get(url).content.decode()
    assert _url("customer", "edit", world.customer_a) not in portal_page
    assert reverse("contact_create") not in portal_page
    assert reverse("contact_create") in login(world.portal_admin_a).get(url).content.decode()


def test_customer_admin_may_add_contacts_and_sites_of_their_company(world, login):
    client = login(world.portal_admin_a)
    response = client.post(
        reverse("contact_create"), {"customer": world.customer_a.pk, "name": "王芳"}
    )
    assert response.status_code == 302
    contact = Contact.objects.get(name="王芳")
    assert contact.customer == world.customer_a
    response = client.post(
        reverse("site_create"),
        {"customer": world.customer_a.pk, "name": "浦东仓库", "time_zone": "Asia/Shanghai"},
    )
    assert response.status_code == 302
    # Another company is not even a choice.
    response = client.post(
        reverse("contact_create"), {"customer": world.customer_b.pk, "name": "赵强"}
    )
    assert response.status_code == 400
    assert not Contact.objects.filter(name="赵强").exists()


# Writes through forms --------------------------------------------------------------------------


def _last_event(obj, action):
    return AuditEvent.objects.filter(
        object_type=obj._meta.label_lower, object_id=str(obj.pk), action=action
    ).latest("id")


def test_customer_create_and_edit_are_audited(world, login):
    client = login(world.admin)
    response = client.post(
        reverse("customer_create"),
        {
            "name": "杭州丙方物流",
            "short_code": "hzbf",
            "industry": "logistics",
            "status": "active",
            "service_lines": ["desktop", "cloud"],
            "parent": world.customer_a.pk,
            "website": "hzbf.example.cn",
        },
    )
    customer = Customer.objects.get(name="杭州丙方物流")
    assert response.status_code == 302
    assert response["Location"] == _url("customer", "detail", customer)
    assert customer.short_code == "HZBF"
    assert customer.service_lines == ["desktop", "cloud"]
    assert customer.parent == world.customer_a
    assert customer.website == "https://hzbf.example.cn"
    created = _last_event(customer, "create")
    assert created.source == "ui"
    assert created.actor == world.admin

    response = client.post(
        _url("customer", "edit", customer),
        {
            "name": "杭州丙方物流有限公司",
            "short_code": "HZBF",
            "industry": "logistics",
            "status": "suspended",
            "service_lines": ["desktop"],
        },
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.status == "suspended"
    assert customer.parent is None
    updated = _last_event(customer, "update")
    assert updated.changes["status"] == ["active", "suspended"]
    assert updated.changes["name"] == ["杭州丙方物流", "杭州丙方物流有限公司"]

    page = client.get(_url("customer", "detail", customer)).content.decode()
    assert "杭州丙方物流有限公司" in page
    assert reverse("audit_detail", args=[updated.pk]) in page


def test_site_contact_team_and_user_forms_write_through_services(world, login):
    client = login(world.admin)
    client.post(
        reverse("site_create"),
        {"customer": world.customer_a.pk, "name": "张江机房", "time_zone": "Asia/Shanghai"},
    )
    site = Site.objects.get(name="张江机房")
    assert _last_event(site, "create").source == "ui"
    client.post(
        _url("site", "edit", site),
        {"name": "张江机房", "city": "上海", "time_zone": "Asia/Shanghai"},
    )
    site.refresh_from_db()
    assert site.city == "上海"
    assert _last_event(site, "update").changes["city"] == ["", "上海"]

    client.post(
        reverse("contact_create"),
        {
            "customer": world.customer_a.pk,
            "name": "陈静",
            "site": site.pk,
            "email": "Chen.Jing@Example.cn",
            "is_vip": "on",
            "is_active": "on",
        },
    )
    contact = Contact.objects.get(name="陈静")
    assert contact.email == "chen.jing@example.cn"
    assert contact.is_vip and contact.site == site
    client.post(_url("contact", "edit", contact), {"name": "陈静", "title": "IT 经理"})
    contact.refresh_from_db()
    assert contact.title == "IT 经理"
    assert contact.is_active is False  # an unticked box is a "no"
    assert _last_event(contact, "update").changes["title"] == ["", "IT 经理"]

    client.post(
        reverse("team_create"),
        {
            "name": "网络运维组",
            "lead": world.engineer.pk,
            "members": [world.engineer.pk, world.other_engineer.pk],
            "customers": [world.customer_a.pk],
        },
    )
    team = Team.objects.get(name="网络运维组")
    assert set(team.members.all()) == {world.engineer, world.other_engineer}
    client.post(
        _url("team", "edit", team),
        {"name": "网络运维组", "members": [world.engineer.pk], "customers": []},
    )
    assert list(team.members.all()) == [world.engineer]
    assert _last_event(team, "update").changes["members"][1] == [world.engineer.pk]

    client.post(
        reverse("user_create"),
        {
            "username": "liqiang",
            "display_name": "李强",
            "role": "engineer",
            "customers": [world.customer_b.pk],
            "customer": world.customer_a.pk,  # hidden for staff, so ignored
            "time_zone": "Asia/Shanghai",
            "is_active": "on",
            "password": "a-long-Secret-99",
        },
    )
    person = User.objects.get(username="liqiang")
    assert person.customer is None
    assert list(person.customers.all()) == [world.customer_b]
    assert person.check_password("a-long-Secret-99")
    assert _last_event(person, "create").source == "ui"
    client.post(
        _url("user", "edit", person),
        {
            "display_name": "李强",
            "role": "customer",
            "customer": world.customer_b.pk,
            "time_zone": "Asia/Shanghai",
            "is_active": "on",
            "password": "another-Secret-77",
        },
    )
    person.refresh_from_db()
    assert person.role == "customer" and person.customer == world.customer_b
    assert person.check_password("another-Secret-77")
    changes = [
        e.changes
        for e in AuditEvent.objects.filter(object_id=str(person.pk), object_type="core.user")
    ]
    assert any(c.get("role") == ["engineer", "customer"] for c in changes)
    assert any(c.get("password") for c in changes)  # masked, but recorded


def test_service_errors_show_on_the_form_and_change_nothing(world, login):
    client = login(world.admin)
    count = Customer.objects.count()
    response = client.post(
        reverse("customer_create"),
        {"name": "重复", "short_code": "AAA", "industry": "other", "status": "active"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["short_code"]
    assert Customer.objects.count() == count

    response = client.post(
        reverse("contact_create"),
        {"customer": world.customer_a.pk, "name": "错站点", "site": world.site_b.pk},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["site"]
    assert not Contact.objects.filter(name="错站点").exists()

    response = client.post(
        reverse("user_create"),
        {"username": "weak", "role": "engineer", "time_zone": "Asia/Shanghai", "password": "123"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["password"]
    assert not User.objects.filter(username="weak").exists()


def test_manager_cannot_grant_the_admin_role(world, login):
    response = login(world.manager).get(reverse("user_create"))
    assert 'value="admin"' not in response.content.decode()
    response = login(world.manager).post(
        reverse("user_create"), {"username": "boss", "role": "admin", "time_zone": "Asia/Shanghai"}
    )
    assert response.status_code == 400
    assert not User.objects.filter(username="boss").exists()


def test_delete_asks_first_then_deletes_with_an_audit_record(world, login):
    client = login(world.admin)
    url = _url("contact", "delete", world.contact_a)
    page = client.get(url)
    assert page.status_code == 200
    assert Contact.objects.filter(pk=world.contact_a.pk).exists()
    response = client.post(url)
    assert response.status_code == 302
    assert not Contact.objects.filter(pk=world.contact_a.pk).exists()
    event = AuditEvent.objects.filter(object_type="core.contact", action="delete").latest("id")
    assert event.object_id == str(world.contact_a.pk)


def test_delete_refused_by_the_service_is_shown_as_a_message(world, login):
    client = login(world.admin)
    # Portal users hold on to their company (PROTECT): the service refuses with a conflict.
    response = client.post(_url("customer", "delete", world.customer_a), follow=True)
    assert Customer.objects.filter(pk=world.customer_a.pk).exists()
    messages = [str(m) for m in response.context["messages"]]
    assert any("上海甲方科技" in m for m in messages)
    response = client.post(_url("user", "delete", world.admin), follow=True)
    assert User.objects.filter(pk=world.admin.pk).exists()
    assert list(response.context["messages"])


# Search, filters, pages ----------------------------------------------------------------------


@pytest.mark.parametrize("query", ["甲方", "shjf", "AAA", "shanghaijiafang"])
def test_customer_search_finds_chinese_names_and_pinyin(world, login, query):
    page = login(world.admin).get(reverse("customer_list"), {"q": query}).content.decode()
    assert "上海甲方科技" in page
    assert "苏州乙方制造" not in page


def test_contact_and_user_search(world, login):
    client = login(world.admin)
    page = client.get(reverse("contact_list"), {"q": "zw"}).content.decode()
    assert "张伟" in page and "李娜" not in page
    page = client.get(reverse("user_list"), {"q": "engineer2"}).content.decode()
    assert "engineer2" in page and "engineer1" not in page


def test_list_filters(world, login):
    services.customer_update(
        actor=None, customer=world.customer_b, status="ended", service_lines=["security"]
    )
    client = login(world.admin)
    page = client.get(reverse("customer_list"), {"status": "ended"}).content.decode()
    assert "苏州乙方制造" in page and "上海甲方科技" not in page
    page = client.get(reverse("customer_list"), {"service_line": "security"}).content.decode()
    assert "苏州乙方制造" in page and "上海甲方科技" not in page
    page = client.get(reverse("site_list"), {"customer": world.customer_b.pk}).content.decode()
    assert "B 工厂" in page and "A 总部" not in page
    page = client.get(
        reverse("user_list"), {"role": "customer", "customer": world.customer_a.pk}
    ).content.decode()
    assert "portal_a" in page and "portal_b" not in page and "engineer1" not in page


def test_htmx_search_returns_only_the_rows(world, login):
    response = login(world.admin).get(
        reverse("customer_list"), {"q": "甲方"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert "<html" not in body
    assert "上海甲方科技" in body
    assert "HX-Request" in response["Vary"]


def test_keyset_pages_walk_the_whole_list(world, login):
    for n in range(55):
        factories.customer(name=f"分页客户{n:03d}", short_code=f"PG{n:03d}")
    client = login(world.admin)
    seen: list[str] = []
    url = reverse("customer_list") + "?q=分页"
    for _page in range(3):
        page = client.get(url).content.decode()
        seen += re.findall(r"分页客户\d{3}", page)
        match = re.search(r'href="(\?[^"]*cursor=[^"]+)"', page)
        if not match:
            break
        url = reverse("customer_list") + match.group(1).replace("&amp;", "&")
    assert seen == [f"分页客户{n:03d}" for n in range(55)]


def test_audit_pages_walk_newest_first(world, login):
    for n in range(60):
        services.contact_update(actor=world.admin, contact=world.contact_a, title=f"T{n:02d}")
    client = login(world.admin)
    url = reverse("audit_list") + "?object_type=core.contact&action=update"
    seen: list[str] = []
    while url:
        page = client.get(url).content.decode()
        seen += re.findall(r"T(\d{2})</span>\s*</li>", page)
        match = re.search(r'href="(\?[^"]*cursor=[^"]+)"', page)
        url = reverse("audit_list") + match.group(1).replace("&amp;", "&") if match else ""
    assert seen == [f"{n:02d}" for n in reversed(range(60))]


def test_a_broken_cursor_starts_at_the_first_page(world, login):
    response = login(world.admin).get(reverse("customer_list"), {"cursor": "not-a-cursor!"})
    assert response.status_code == 200
    assert "上海甲方科技" in response.content.decode()


# Query counts: the same whatever the number of rows --------------------------------------------


@pytest.fixture
def many_rows(world):
    for n in range(30):
        customer = factories.customer(name=f"批量客户{n}", parent=world.customer_a)
        factories.site(customer)
        factories.contact(customer)
        factories.user("customer", customer=customer)
        factories.team(members=[world.engineer], customers=[customer])
    return world


@pytest.mark.parametrize(
    "name", ["customer_list", "site_list", "contact_list", "team_list", "user_list", "audit_list"]
)
@pytest.mark.parametrize("who", ["admin", "engineer"])
def test_list_pages_run_a_fixed_number_of_queries(
    many_rows, login, django_assert_max_num_queries, name, who
):
    client = login(getattr(many_rows, who))
    client.get(reverse(name))  # warm up: session, caches
    with django_assert_max_num_queries(10):
        response = client.get(reverse(name))
    assert response.status_code == 200


# Audit log -----------------------------------------------------------------------------------


def test_audit_list_filters_and_shows_changes(world, login):
    services.customer_update(actor=world.admin, customer=world.customer_a, phone="021-5555")
    client = login(world.admin)
    page = client.get(
        reverse("audit_list"), {"object_type": "core.customer", "action": "update"}
    ).content.decode()
    assert "021-5555" in page
    assert "上海甲方科技" in page
    assert "张伟" not in page
    page = client.get(reverse("audit_list"), {"actor": world.engineer.pk}).content.decode()
    assert "021-5555" not in page
    today = datetime.date.today()
    page = client.get(
        reverse("audit_list"),
        {"since": (today - datetime.timedelta(days=1)).isoformat(), "source": "system"},
    ).content.decode()
    assert "苏州乙方制造" in page
    page = client.get(
        reverse("audit_list"), {"until": (today - datetime.timedelta(days=3)).isoformat()}
    ).content.decode()
    assert "苏州乙方制造" not in page


def test_audit_times_are_shown_in_the_users_time_zone(world, login):
    services.user_update(actor=None, user=world.admin, time_zone="America/New_York")
    event = AuditEvent.objects.latest("id")
    client = login(world.admin)
    local = event.occurred_at.astimezone(ZoneInfo("America/New_York"))
    page = client.get(reverse("audit_detail", args=[event.pk])).content.decode()
    assert local.strftime("%Y-%m-%d %H:%M:%S") in page
    page = client.get(reverse("audit_list")).content.decode()
    assert local.strftime("%Y-%m-%d %H:%M") in page


def test_engineer_audit_list_is_scoped(world, login):
    page = login(world.engineer).get(reverse("audit_list")).content.decode()
    assert "上海甲方科技" in page
    assert "苏州乙方制造" not in page


# Home ----------------------------------------------------------------------------------------


def test_staff_dashboard_counts_their_customers(world, login):
    response = login(world.engineer).get(reverse("home"))
    counts = {str(label): count for label, count, _url in response.context["counts"]}
    assert list(counts.values()) == [1, 1, 1]


def test_portal_home_shows_their_company(world, login):
    page = login(world.portal_a).get(reverse("home")).content.decode()
    assert "上海甲方科技" in page
    assert "A 总部" in page and "张伟" in page
    assert "苏州乙方制造" not in page


def test_customer_detail_shows_group_sites_contacts_service_and_history(world, login):
    child = factories.customer(name="甲方子公司", parent=world.customer_a)
    page = login(world.admin).get(_url("customer", "detail", world.customer_a)).content.decode()
    for text in ["甲方子公司", "A 总部", "张伟", "A 组", "engineer1", "portal_admin_a"]:
        assert text in page, text
    assert _url("customer", "detail", child) in page
    child_page = login(world.admin).get(_url("customer", "detail", child)).content.decode()
    assert _url("customer", "detail", world.customer_a) in child_page


def test_audit_history_shows_times_in_the_local_zone(world):
    from django.utils import translation

    from onestop.core.templatetags.core_ui import audit_changes
    from onestop.servicedesk import services as desk

    ticket = desk.ticket_create(
        actor=world.dispatcher, customer=world.customer_a, title="时间显示", channel="phone"
    )
    desk.ticket_set_status(actor=world.engineer, ticket=ticket, status="resolved")
    event = AuditEvent.objects.filter(object_type="servicedesk.ticket", action="update").latest(
        "id"
    )
    with translation.override("en"):
        rows = {str(row["field"]): row for row in audit_changes(event)}
    assert "Resolved" in rows, list(rows)
    shown = rows["Resolved"]["after"]
    local = timezone.localtime(event.occurred_at).strftime("%Y-%m-%d %H:%M")
    assert shown == local  # 2026-11-30 01:40 in Shanghai, not an ISO string in UTC
