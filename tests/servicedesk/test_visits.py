"""On-site visits (派工单): booking pauses the ticket's clock, the engineer checks in on site, the
customer signs the work order on the engineer's phone, and the time on site is logged."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from onestop.contracts import services as contracts
from onestop.core.errors import ConflictError
from onestop.core.models import AuditEvent
from onestop.notify.models import Notification
from onestop.notify.services import notifications_dispatch
from onestop.servicedesk import services
from onestop.servicedesk.models import Status, TicketEntry, TimeEntry, Visit
from tests.apitest import api_client, call
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)  # a Monday, 09:00 in Shanghai
SIGNATURE = [[[12, 30], [80.5, 90], [150, 40]], [[200, 200], [260, 180]]]


def _clocked_ticket(world, **extra):
    contracts.calendar_create(actor=None, name="7×24", preset="7x24", is_default=True)
    contracts.sla_policy_create(
        actor=None,
        name="标准",
        is_default=True,
        targets=[
            {"priority": p, "first_response_minutes": 60, "resolution_minutes": 480}
            for p in ("P1", "P2", "P3", "P4")
        ],
    )
    return services.ticket_create(
        actor=world.dispatcher,
        customer=world.customer_a,
        title="三楼打印机卡纸",
        channel="phone",
        opened_at=T0,
        site=world.site_a,
        **extra,
    )


def _book(world, ticket, *, at=T0 + dt.timedelta(hours=2), now=T0 + dt.timedelta(minutes=10)):
    return services.visit_schedule(
        actor=world.dispatcher,
        ticket=ticket,
        engineer=world.engineer,
        scheduled_at=at,
        planned_minutes=90,
        instructions="带一个备用硒鼓",
        now=now,
    )


def test_a_visit_pauses_the_clock_until_the_engineer_arrives_and_logs_time_on_site(world):
    ticket = _clocked_ticket(world)
    visit = _book(world, ticket)
    ticket.refresh_from_db()
    assert visit.state == Visit.State.SCHEDULED
    assert visit.number == f"PG{visit.pk:06d}"
    # Nobody had the ticket: the dispatched engineer gets it, and it waits for the visit.
    assert ticket.assignee == world.engineer
    assert ticket.status == Status.VISIT_SCHEDULED
    assert ticket.sla_paused_since == T0 + dt.timedelta(minutes=10)

    arrival = T0 + dt.timedelta(hours=2, minutes=5)
    services.visit_check_in(actor=world.engineer, visit=visit, now=arrival)
    ticket.refresh_from_db()
    assert ticket.status == Status.IN_PROGRESS
    # The wait from booking to arrival never counts against the resolution target.
    assert ticket.sla_paused_minutes == 115
    assert ticket.resolution_due_at == T0 + dt.timedelta(minutes=480 + 115)

    departure = arrival + dt.timedelta(minutes=47, seconds=20)
    services.visit_sign_off(
        actor=world.engineer,
        visit=visit,
        work_done="更换硒鼓，清理进纸辊，打印测试页正常。",
        signer_name="张伟",
        signer_comment="很专业",
        signature=SIGNATURE,
        now=departure,
    )
    visit.refresh_from_db()
    assert visit.state == Visit.State.COMPLETED
    assert (visit.arrived_at, visit.departed_at, visit.signed_at) == (
        arrival,
        departure,
        departure,
    )
    assert visit.signature == SIGNATURE
    assert visit.signature_path == "M 12 30 L 80.5 90 L 150 40 M 200 200 L 260 180"
    # 47 min 20 s on site is logged as 48 started minutes of on-site work by the engineer.
    entry = visit.time_entry
    assert (entry.user, entry.minutes, entry.kind, entry.billable, entry.note) == (
        world.engineer,
        48,
        TimeEntry.Kind.ONSITE,
        True,
        visit.number,
    )
    events = list(ticket.entries.filter(kind=TicketEntry.Kind.EVENT).values_list("body", flat=True))
    assert any("scheduled" in body for body in events)
    assert any("signed by 张伟" in body for body in events)
    assert set(
        AuditEvent.objects.filter(object_type="servicedesk.visit").values_list("action", flat=True)
    ) == {"create", "update"}


def test_the_engineer_is_told_of_the_booking_and_the_assignee_of_the_signature(world):
    ticket = _clocked_ticket(world, assignee=world.other_engineer)
    world.team_a.members.add(world.other_engineer)
    notifications_dispatch()
    visit = _book(world, ticket)
    notifications_dispatch()
    booked = Notification.objects.filter(kind="visit.created")
    # The engineer sent and the ticket's assignee; never the dispatcher who booked it.
    assert {n.user for n in booked} == {world.engineer, world.other_engineer}
    assert {n.url for n in booked} == {f"/tickets/visits/{visit.pk}/"}
    services.visit_check_in(actor=world.engineer, visit=visit, now=T0 + dt.timedelta(hours=2))
    services.visit_sign_off(
        actor=world.engineer,
        visit=visit,
        work_done="已修复",
        signer_name="张伟",
        signature=SIGNATURE,
        now=T0 + dt.timedelta(hours=3),
    )
    notifications_dispatch()
    # The engineer signed it off himself; the ticket's assignee hears of it.
    signed = Notification.objects.filter(kind="visit.completed")
    assert [n.user for n in signed] == [world.other_engineer]


def test_booking_refuses_an_engineer_who_does_not_serve_the_customer_and_closed_tickets(world):
    ticket = _clocked_ticket(world)
    with pytest.raises(ValidationError) as caught, translation.override("en"):
        services.visit_schedule(
            actor=world.dispatcher,
            ticket=ticket,
            engineer=world.other_engineer,
            scheduled_at=T0,
            now=T0,
        )
    assert "does not serve this customer" in str(caught.value.message_dict["engineer"])
    with pytest.raises(ValidationError) as caught:
        services.visit_schedule(
            actor=world.dispatcher,
            ticket=ticket,
            engineer=world.portal_a,
            scheduled_at=T0,
            now=T0,
        )
    assert "engineer" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        _book(world, ticket, at=T0 + dt.timedelta(days=400), now=T0)
    assert "scheduled_at" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        _book(world, ticket, at=T0 - dt.timedelta(days=8), now=T0)
    assert "scheduled_at" in caught.value.message_dict
    services.ticket_set_status(actor=world.engineer, ticket=ticket, status=Status.RESOLVED)
    with pytest.raises(ConflictError):
        _book(world, ticket)
    assert not Visit.objects.exists()


@pytest.mark.parametrize(
    "signature",
    [
        None,
        [],
        "M 0 0 L 10 10",
        [[]],
        [[[5, 5]]],
        [[[5, 5], [700, 5]]],
        [[[5, 5], [-1, 5]]],
        [[[5, 5], [True, 5]]],
        [[[5, 5], ["10", 5]]],
        [[[5, 5, 5], [6, 6]]],
        [[[1, 1]] * 4001],
    ],
    ids=[
        "none",
        "empty",
        "svg-text",
        "empty-stroke",
        "one-point",
        "off-canvas",
        "negative",
        "boolean",
        "string",
        "three-coords",
        "too-long",
    ],
)
def test_sign_off_refuses_anything_but_drawn_lines_and_changes_nothing(world, signature):
    ticket = _clocked_ticket(world)
    visit = _book(world, ticket)
    services.visit_check_in(actor=world.engineer, visit=visit, now=T0 + dt.timedelta(hours=2))
    with pytest.raises(ValidationError) as caught:
        services.visit_sign_off(
            actor=world.engineer,
            visit=visit,
            work_done="已修复",
            signer_name="张伟",
            signature=signature,
        )
    assert "signature" in caught.value.message_dict
    visit.refresh_from_db()
    assert visit.state == Visit.State.ON_SITE
    assert visit.signature is None
    assert not TimeEntry.objects.exists()


def test_sign_off_needs_the_work_and_the_signer_and_a_visit_in_progress(world):
    ticket = _clocked_ticket(world)
    visit = _book(world, ticket)
    with pytest.raises(ConflictError):
        services.visit_sign_off(
            actor=world.engineer,
            visit=visit,
            work_done="x",
            signer_name="张伟",
            signature=SIGNATURE,
        )
    services.visit_check_in(actor=world.engineer, visit=visit, now=T0 + dt.timedelta(hours=2))
    with pytest.raises(ConflictError):
        services.visit_check_in(actor=world.engineer, visit=visit)
    with pytest.raises(ValidationError) as caught:
        services.visit_sign_off(
            actor=world.engineer, visit=visit, work_done=" ", signer_name="", signature=SIGNATURE
        )
    assert set(caught.value.message_dict) == {"work_done", "signer_name"}
    # Another engineer cannot sign off this visit; a dispatcher can.
    with pytest.raises(PermissionDenied):
        services.visit_sign_off(
            actor=world.other_engineer,
            visit=visit,
            work_done="x",
            signer_name="张伟",
            signature=SIGNATURE,
        )
    services.visit_sign_off(
        actor=world.dispatcher,
        visit=visit,
        work_done="已修复",
        signer_name="张伟",
        signature=SIGNATURE,
        now=T0 + dt.timedelta(hours=3),
    )
    assert Visit.objects.get().time_entry.user == world.engineer


def test_sign_off_that_would_overdraw_a_block_of_hours_is_refused_until_not_billed(world):
    ticket = _clocked_ticket(world)
    contract = contracts.contract_create(
        actor=None,
        customer=world.customer_a,
        number="BLK-9",
        name="预付 30 分钟",
        start_date=dt.date(2026, 1, 1),
        pricing="block_hours",
        block_minutes=30,
    )
    services.ticket_update(actor=None, ticket=ticket, contract=contract)
    visit = _book(world, ticket)
    services.visit_check_in(actor=world.engineer, visit=visit, now=T0 + dt.timedelta(hours=2))
    sign = {
        "actor": world.engineer,
        "visit": visit,
        "work_done": "已修复",
        "signer_name": "张伟",
        "signature": SIGNATURE,
        "now": T0 + dt.timedelta(hours=3),
    }
    with pytest.raises(ValidationError) as caught:
        services.visit_sign_off(**sign)
    assert "minutes" in caught.value.message_dict
    visit.refresh_from_db()
    assert visit.state == Visit.State.ON_SITE
    services.visit_sign_off(**sign, billable=False)
    assert Visit.objects.get().time_entry.billable is False


def test_moving_and_cancelling_a_visit(world):
    ticket = _clocked_ticket(world)
    visit = _book(world, ticket)
    later = T0 + dt.timedelta(days=1)
    services.visit_update(actor=world.dispatcher, visit=visit, scheduled_at=later, now=T0)
    assert Visit.objects.get().scheduled_at == later
    assert AuditEvent.objects.filter(
        object_type="servicedesk.visit", action="update", changes__has_key="scheduled_at"
    ).exists()
    with pytest.raises(PermissionDenied):
        services.visit_cancel(actor=world.other_engineer, visit=visit, reason="x")
    with pytest.raises(ValidationError):
        services.visit_cancel(actor=world.engineer, visit=visit, reason=" ")
    services.visit_cancel(actor=world.engineer, visit=visit, reason="客户改期", now=later)
    ticket.refresh_from_db()
    # Nothing left to wait for: the ticket is worked on again, its clock running.
    assert ticket.status == Status.IN_PROGRESS
    assert ticket.sla_paused_since is None
    with pytest.raises(ConflictError):
        services.visit_update(actor=world.dispatcher, visit=visit, planned_minutes=30)


def _on_site_visit(world):
    ticket = _clocked_ticket(world, requester_user=world.portal_a)
    now = dt.datetime.now(dt.UTC)
    visit = _book(world, ticket, at=now + dt.timedelta(hours=1), now=now)
    services.visit_check_in(actor=world.engineer, visit=visit)
    return visit


def test_the_work_order_page_is_signed_on_the_engineers_phone(world):
    visit = _on_site_visit(world)
    client = client_for(world.engineer)
    url = f"/tickets/visits/{visit.pk}/"
    page = client.get(url)
    assert page.status_code == 200
    assert b"data-signature-pad" in page.content
    # Without a signature the form comes back with the error and nothing is stored.
    with translation.override("en"):
        refused = client.post(
            url + "sign/",
            {"work_done": "已更换硒鼓", "signer_name": "张伟", "signature": "", "billable": "on"},
            HTTP_ACCEPT_LANGUAGE="en",
        )
    assert refused.status_code == 400
    assert "The customer has not signed yet." in refused.content.decode()
    assert Visit.objects.get().state == Visit.State.ON_SITE
    done = client.post(
        url + "sign/",
        {
            "work_done": "已更换硒鼓",
            "signer_name": "张伟",
            "signature": json.dumps(SIGNATURE),
            "billable": "on",
        },
    )
    assert done.status_code == 302
    page = client.get(url)
    assert b"<svg" in page.content
    assert b'd="M 12 30 L 80.5 90' in page.content
    assert "张伟" in page.content.decode()


def test_customers_read_the_work_order_of_their_ticket_and_nobody_else_does(world):
    visit = _on_site_visit(world)
    url = f"/tickets/visits/{visit.pk}/"
    portal = client_for(world.portal_a)
    page = portal.get(url)
    assert page.status_code == 200
    assert b"data-signature-pad" not in page.content
    assert b"check-in" not in page.content
    assert portal.post(url + "check-in/").status_code == 403
    detail = portal.get(f"/tickets/{visit.ticket_id}/")
    assert visit.number in detail.content.decode()
    assert client_for(world.portal_b).get(url).status_code == 404
    assert client_for(world.other_engineer).get(url).status_code == 404
    # A colleague of the customer (not the requester) sees neither the ticket nor its visit.
    colleague = world.portal_a.__class__.objects.create(
        username="colleague_a", role="customer", customer=world.customer_a
    )
    assert client_for(colleague).get(url).status_code == 404


def test_booking_from_the_ticket_page(world):
    ticket = _clocked_ticket(world)
    client = client_for(world.dispatcher)
    page = client.get(f"/tickets/{ticket.pk}/")
    assert b'action="/tickets/%d/visits/"' % ticket.pk in page.content
    response = client.post(
        f"/tickets/{ticket.pk}/visits/",
        {
            "engineer": world.engineer.pk,
            "scheduled_at": "2030-01-01T10:00",
            "planned_minutes": 60,
        },
    )
    # The form is in the user's zone; a year-ahead limit refuses 2030 and nothing is booked.
    assert response.status_code == 400
    assert not Visit.objects.exists()
    tomorrow = (dt.datetime.now() + dt.timedelta(days=1)).strftime("%Y-%m-%dT10:00")
    response = client.post(
        f"/tickets/{ticket.pk}/visits/",
        {"engineer": world.engineer.pk, "scheduled_at": tomorrow, "planned_minutes": 60},
    )
    assert response.status_code == 302
    assert Visit.objects.get().engineer == world.engineer


def test_visit_api_sign_off_with_bad_strokes_is_a_field_error(world):
    visit = _on_site_visit(world)
    client = api_client(world.engineer)
    bad = call(
        client,
        "post",
        f"/api/v1/visits/{visit.pk}/sign-off",
        {"work_done": "已修复", "signer_name": "张伟", "signature": [[[1, 1], [9999, 1]]]},
    )
    assert bad.status_code == 422
    assert bad.body["errors"][0]["field"] == "signature"
    good = call(
        client,
        "post",
        f"/api/v1/visits/{visit.pk}/sign-off",
        {"work_done": "已修复", "signer_name": "张伟", "signature": SIGNATURE},
    )
    assert good.status_code == 200, good.body
    assert good.body["state"] == "completed"
    assert good.body["time_entry_id"] == Visit.objects.get().time_entry_id
    again = call(client, "post", f"/api/v1/visits/{visit.pk}/check-in")
    assert again.status_code == 409


def _queries(client, url) -> int:
    client.get(url)  # warm up: session, caches
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_my_work_lists_my_coming_visits_in_a_fixed_number_of_queries(world):
    ticket = _clocked_ticket(world)
    now = dt.datetime.now(dt.UTC)

    def book(count):
        # Each later than the ones before, so the list's order is known.
        for _n in range(count):
            services.visit_schedule(
                actor=world.dispatcher,
                ticket=ticket,
                engineer=world.engineer,
                scheduled_at=now + dt.timedelta(hours=Visit.objects.count() + 1),
            )

    book(2)
    client = client_for(world.engineer)
    few = _queries(client, "/tickets/mine/")
    detail = _queries(client, f"/tickets/{ticket.pk}/")
    book(20)
    page = client.get("/tickets/mine/")
    assert len(page.context["visits"]) == 22
    times = [visit.scheduled_at for visit in page.context["visits"]]
    assert times == sorted(times)
    assert _queries(client, "/tickets/mine/") == few
    assert _queries(client, f"/tickets/{ticket.pk}/") == detail
    # Someone else's visits are not on my list.
    assert client_for(world.other_engineer).get("/tickets/mine/").context["visits"] == []


def test_a_ticket_links_the_device_concerned_of_its_own_customer(world):
    from onestop.assets import services as asset_services

    printer = asset_services.device_create(
        actor=None, customer=world.customer_a, name="财务室打印机", kind="printer"
    )
    foreign = asset_services.device_create(actor=None, customer=world.customer_b, name="乙方电脑")
    client = api_client(world.dispatcher)
    created = call(
        client,
        "post",
        "/api/v1/tickets",
        {"customer_id": world.customer_a.pk, "title": "打印机卡纸", "device_id": printer.pk},
    )
    assert created.status_code == 201, created.body
    assert created.body["device_id"] == printer.pk
    ticket_id = created.body["id"]
    listed = call(client, "get", "/api/v1/tickets", device_id=printer.pk)
    assert [t["id"] for t in listed.body["results"]] == [ticket_id]
    # Another customer's device is refused (and not revealed: B is out of this user's scope).
    refused = call(client, "patch", f"/api/v1/tickets/{ticket_id}", {"device_id": foreign.pk})
    assert refused.status_code == 422
    page = client_for(world.dispatcher).get(f"/tickets/{ticket_id}/").content.decode()
    assert f"/devices/{printer.pk}/" in page
