"""Notifications outside the app: rules pick events, deliveries go to real receivers on loopback
(signed robots and webhooks, a real SMTP server), retried, rate-limited into digests, logged."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from onestop.contracts import services as contracts
from onestop.core import crypto
from onestop.core.models import AuditEvent
from onestop.notify import services
from onestop.notify.models import Channel, Delivery, Notification, Preference
from onestop.servicedesk import services as desk
from tests.apitest import api_client, call
from tests.conftest import client_for

pytestmark = pytest.mark.django_db
pytest_plugins = ["tests.servicedesk.mailservers"]

T0 = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)  # a Monday, 09:00 in Shanghai


@pytest.fixture
def clocked(world):
    """A 7×24 calendar and a policy whose P1 must be resolved within 60 minutes."""
    contracts.calendar_create(actor=None, name="7×24", preset="7x24", is_default=True)
    contracts.sla_policy_create(
        actor=None,
        name="标准",
        is_default=True,
        targets=[
            {"priority": p, "first_response_minutes": 30, "resolution_minutes": 60}
            for p in ("P1", "P2", "P3", "P4")
        ],
    )
    return world


def _ticket(world, title="核心交换机宕机", opened_at=T0, **extra):
    """A P1 ticket of customer A, answered at once: only its resolution clock is left."""
    fields = {"impact": 1, "urgency": 1, "team": world.team_a, **extra}
    ticket = desk.ticket_create(
        actor=world.dispatcher,
        customer=fields.pop("customer", world.customer_a),
        title=title,
        channel="phone",
        opened_at=opened_at,
        **fields,
    )
    desk.ticket_reply(actor=world.engineer, ticket=ticket, body="收到", at=opened_at)
    return ticket


def _dingtalk(robot, **rule):
    receiver = robot("dingtalk", secret="SEC-钉钉")
    channel = services.channel_create(
        actor=None, name="运维值班群", kind="dingtalk", url=receiver.url, secret="SEC-钉钉"
    )
    services.rule_create(
        actor=None,
        name="超时告警",
        channel=channel,
        events=rule.pop("events", ["ticket.sla_warning", "ticket.sla_breached"]),
        **rule,
    )
    return receiver, channel


def _run(now):
    planned = services.deliveries_plan(now=now)
    return planned, services.deliveries_send(now=now)


def test_a_breach_warning_reaches_a_dingtalk_robot_signed_within_the_minute(clocked, robot):
    world = clocked
    receiver, _channel = _dingtalk(robot)
    ticket = _ticket(world)
    services.deliveries_plan(now=T0)  # the creation is not a rule's event: nothing planned
    assert not Delivery.objects.exists()
    # 45 of 60 minutes used: the 75 % warning; the job that finds it runs every minute.
    desk.sla_sweep(now=T0 + dt.timedelta(minutes=45, seconds=30))
    planned, counts = _run(T0 + dt.timedelta(minutes=45, seconds=40))
    assert planned == 1
    assert counts["sent"] == 1
    [message] = receiver.messages  # the receiver checked the signature before accepting it
    text = message["markdown"]["text"]
    assert f"#{ticket.pk} 核心交换机宕机" in message["markdown"]["title"]
    assert f"http://127.0.0.1:8000/tickets/{ticket.pk}/" in text
    assert "上海甲方科技" in text
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.event_name, delivery.customer_id) == (
        Delivery.State.SENT,
        "ticket.sla_warning",
        world.customer_a.pk,
    )
    assert len(delivery.attempts) == 1 and delivery.attempts[0]["ok"]
    # The breach follows and goes the same way; nothing is sent twice.
    desk.sla_sweep(now=T0 + dt.timedelta(minutes=61))
    _run(T0 + dt.timedelta(minutes=61))
    _run(T0 + dt.timedelta(minutes=62))
    assert [m["markdown"]["title"][:3] for m in receiver.messages] == ["SLA", "SLA"]
    assert Delivery.objects.filter(state=Delivery.State.SENT).count() == 2


def test_rules_filter_by_customer_team_and_priority_and_speak_their_language(clocked, robot):
    world = clocked
    receiver = robot("webhook", secret="hook-secret")
    channel = services.channel_create(
        actor=None, name="ITSM", kind="webhook", url=receiver.url, secret="hook-secret"
    )
    services.rule_create(
        actor=None,
        name="甲方 P1",
        channel=channel,
        events=["ticket.created"],
        customer=world.customer_a,
        priorities=["P1"],
        language="en",
    )
    services.rule_create(
        actor=None, name="B 组", channel=channel, events=["ticket.created"], team=world.team_b
    )
    services.deliveries_plan(now=T0)  # start after the events of the setup
    wanted = _ticket(world, title="甲方 P1 故障")
    _ticket(world, title="甲方 P4 小事", impact=3, urgency=3)
    _ticket(world, title="乙方 P1 无组", customer=world.customer_b, team=None)
    team_b = _ticket(world, title="乙方 B 组", customer=world.customer_b, team=world.team_b)
    _run(T0 + dt.timedelta(minutes=1))
    titles = sorted(m["title"] for m in receiver.messages)
    assert titles == sorted(
        [f"New ticket: #{wanted.pk} 甲方 P1 故障", f"新工单：#{team_b.pk} 乙方 B 组"]
    )
    body = next(m for m in receiver.messages if "P1 故障" in m["title"])
    assert body["event"] == "ticket.created"
    assert body["data"] == {"object_type": "servicedesk.ticket", "object_id": str(wanted.pk)}


def test_a_robot_over_its_rate_gets_a_digest_and_nothing_is_lost(clocked, robot):
    world = clocked
    receiver, _channel = _dingtalk(robot, events=["ticket.created"])
    services.deliveries_plan(now=T0)
    tickets = [_ticket(world, title=f"批量告警 {n}") for n in range(25)]
    _run(T0 + dt.timedelta(minutes=1))
    # 19 singly and one digest of the other 6: the robot's 20 a minute, none refused.
    assert len(receiver.messages) == 20
    digest = receiver.messages[-1]["markdown"]
    assert "6" in digest["title"]
    for ticket in tickets[19:]:
        assert f"批量告警 {ticket.title[-2:].strip()}" in digest["text"]
    states = list(Delivery.objects.values_list("state", flat=True))
    assert states.count(Delivery.State.SENT) == 20  # 19 + the digest itself
    assert states.count(Delivery.State.DIGESTED) == 6
    assert Delivery.objects.filter(state=Delivery.State.PENDING).count() == 0


def test_a_receiver_that_fails_is_retried_with_backoff_until_it_recovers(clocked, robot):
    world = clocked
    receiver, _channel = _dingtalk(robot, events=["ticket.created"])
    services.deliveries_plan(now=T0)
    _ticket(world)
    receiver.fail_next(2, status=503)
    now = T0 + dt.timedelta(minutes=1)
    _planned, counts = _run(now)
    assert counts["retry"] == 1
    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.State.PENDING
    assert delivery.next_attempt_at == now + services.BACKOFF_FIRST
    # Not yet due: nothing is tried.
    assert services.deliveries_send(now=now + dt.timedelta(seconds=10))["retry"] == 0
    services.deliveries_send(now=now + dt.timedelta(seconds=31))
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == delivery_attempt_time(delivery, 1) + dt.timedelta(seconds=60)
    services.deliveries_send(now=now + dt.timedelta(minutes=5))
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.SENT
    assert [a["ok"] for a in delivery.attempts] == [False, False, True]
    assert "503" in delivery.attempts[0]["detail"]
    assert len(receiver.messages) == 1


def delivery_attempt_time(delivery, index):
    return dt.datetime.fromisoformat(delivery.attempts[index]["at"])


def test_a_wrong_secret_fails_at_once_and_says_why(clocked, robot):
    world = clocked
    receiver = robot("feishu", secret="right")
    channel = services.channel_create(
        actor=None, name="飞书", kind="feishu", url=receiver.url, secret="wrong"
    )
    services.rule_create(actor=None, name="全部", channel=channel, events=["ticket.created"])
    services.deliveries_plan(now=T0)
    _ticket(world)
    _planned, counts = _run(T0 + dt.timedelta(minutes=1))
    assert counts["failed"] == 1
    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.State.FAILED
    assert "19021" in delivery.attempts[0]["detail"]
    assert receiver.messages == []


def test_planning_twice_plans_nothing_twice(clocked, robot):
    world = clocked
    _receiver, channel = _dingtalk(robot, events=["ticket.created"])
    services.deliveries_plan(now=T0)
    _ticket(world)
    assert services.deliveries_plan(now=T0) == 1
    assert services.deliveries_plan(now=T0) == 0
    # Even with the cursor moved back (a crash before it was saved), the pair is unique.
    from onestop.core.models import EventCursor

    EventCursor.objects.filter(consumer=services.CHANNEL_CONSUMER).update(last_event_id=0)
    services.deliveries_plan(now=T0)
    assert Delivery.objects.filter(channel=channel).count() == 1


def test_an_email_channel_goes_through_a_real_smtp_server(clocked, smtp_server, settings):
    world = clocked
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    channel = services.channel_create(
        actor=None, name="经理邮件", kind="email", email_to="boss@example.com, ops@example.com"
    )
    services.rule_create(actor=None, name="超时", channel=channel, events=["ticket.created"])
    services.deliveries_plan(now=T0)
    ticket = _ticket(world)
    _planned, counts = _run(T0 + dt.timedelta(minutes=1))
    assert counts["sent"] == 1
    [envelope] = smtp_server.received
    assert sorted(envelope.rcpt_tos) == ["boss@example.com", "ops@example.com"]
    raw = envelope.content.decode()
    assert "Auto-Submitted: auto-generated" in raw
    assert f"/tickets/{ticket.pk}/" in raw


def test_personal_email_waits_out_quiet_hours_and_muted_events_stay_silent(clocked, settings):
    world = clocked
    world.engineer.email = "lilei@example.com"
    world.engineer.save()
    services.preference_set(
        user=world.engineer,
        muted_events=["ticket.created"],
        email_events=["ticket.sla_breached"],
        quiet_from=dt.time(22, 0),
        quiet_until=dt.time(8, 0),
    )
    # 23:00 in Shanghai: inside the quiet hours.
    late = dt.datetime(2026, 11, 2, 15, 0, tzinfo=dt.UTC)
    services.deliveries_plan(now=late)
    ticket = _ticket(
        world,
        title="夜间服务器告警",
        opened_at=late - dt.timedelta(minutes=90),
        assignee=world.engineer,
    )
    services.notifications_dispatch()
    assert not Notification.objects.filter(user=world.engineer, kind="ticket.created").exists()
    desk.sla_sweep(now=late)
    services.deliveries_plan(now=late)
    personal = Delivery.objects.get(recipient="lilei@example.com")
    assert personal.event_name == "ticket.sla_breached"
    # 08:00 Shanghai the next morning.
    assert personal.next_attempt_at == dt.datetime(2026, 11, 3, 0, 0, tzinfo=dt.UTC)
    assert services.deliveries_send(now=late)["sent"] == 0
    assert services.deliveries_send(now=personal.next_attempt_at)["sent"] == 1
    [message] = mail.outbox
    assert message.to == ["lilei@example.com"]
    assert f"#{ticket.pk}" in message.subject


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "webhook", "url": "ftp://example.com/hook"}, "url"),
        ({"kind": "dingtalk", "url": ""}, "url"),
        ({"kind": "wecom", "url": "https://qyapi.weixin.qq.com/x?key=k", "secret": "s"}, "secret"),
        ({"kind": "email", "email_to": "not-an-address"}, "email_to"),
        ({"kind": "email", "email_to": ""}, "email_to"),
        ({"kind": "pager", "url": "https://example.com"}, "kind"),
    ],
)
def test_a_channel_that_makes_no_sense_is_refused_and_nothing_is_stored(db, fields, field):
    with pytest.raises(ValidationError) as caught:
        services.channel_create(actor=None, name="坏的", **fields)
    assert field in caught.value.message_dict
    assert not Channel.objects.exists()


def test_rules_refuse_unknown_events_and_priorities(db):
    channel = services.channel_create(
        actor=None, name="钩子", kind="webhook", url="https://example.com/hook"
    )
    for bad in ({"events": []}, {"events": ["ticket.exploded"]}, {"priorities": ["P9"]}):
        with pytest.raises(ValidationError):
            services.rule_create(
                actor=None, name="x", channel=channel, **{"events": ["ticket.created"], **bad}
            )


def test_secrets_are_stored_encrypted_and_never_shown(world):
    client = api_client(world.admin)
    created = call(
        client,
        "post",
        "/api/v1/notification-channels",
        {
            "name": "企业微信",
            "kind": "wecom",
            "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=TOKEN-123",
        },
    )
    assert created.status_code == 201, created.body
    assert "TOKEN-123" not in json.dumps(created.body)
    assert created.body["has_url"] is True
    channel = Channel.objects.get()
    assert "TOKEN-123" not in channel.url_encrypted
    assert "TOKEN-123" in crypto.decrypt(channel.url_encrypted)
    events = AuditEvent.objects.filter(object_type="notify.channel")
    assert "TOKEN-123" not in json.dumps(list(events.values_list("changes", flat=True)))
    # A PATCH without the URL keeps it.
    call(client, "patch", f"/api/v1/notification-channels/{channel.pk}", {"name": "企微群"})
    assert "TOKEN-123" in services.channel_url(Channel.objects.get())


def test_send_test_records_the_delivery_and_its_outcome(world, robot):
    receiver = robot("wecom")
    channel = services.channel_create(actor=None, name="企微", kind="wecom", url=receiver.url)
    with translation.override("en"):
        response = call(
            api_client(world.admin), "post", f"/api/v1/notification-channels/{channel.pk}/test"
        )
    assert response.status_code == 200
    assert response.body["state"] == "sent"
    assert "OneStop" in receiver.messages[0]["markdown"]["content"]
    receiver.fail_next(1, status=500)
    page = client_for(world.admin).post(f"/notifications/channels/{channel.pk}/test/")
    assert page.status_code == 302
    failed = Delivery.objects.filter(event_name="test").order_by("-id").first()
    assert failed.state == Delivery.State.FAILED  # a test is tried once and says why
    assert "500" in failed.attempts[0]["detail"]


def test_preferences_through_the_api_are_the_callers_own(world):
    client = api_client(world.engineer)
    response = call(
        client,
        "put",
        "/api/v1/notification-preferences",
        {"muted_events": ["ticket.created"], "quiet_from": "22:00", "quiet_until": "08:00"},
    )
    assert response.status_code == 200, response.body
    assert call(client, "get", "/api/v1/notification-preferences").body["muted_events"] == [
        "ticket.created"
    ]
    other = call(api_client(world.dispatcher), "get", "/api/v1/notification-preferences")
    assert other.body["muted_events"] == []
    bad = call(client, "put", "/api/v1/notification-preferences", {"quiet_from": "22:00"})
    assert bad.status_code == 422
    assert Preference.objects.get(user=world.engineer).quiet_from == dt.time(22, 0)


def test_channel_and_rule_pages_for_admins_read_only_for_dispatchers(world, robot):
    receiver = robot("dingtalk", secret="S")
    admin = client_for(world.admin)
    response = admin.post(
        "/notifications/channels/new/",
        {
            "name": "值班群",
            "kind": "dingtalk",
            "url": receiver.url,
            "secret": "S",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = Channel.objects.get()
    detail = admin.get(f"/notifications/channels/{channel.pk}/").content.decode()
    assert "access_token" not in detail  # the stored address is never shown again
    assert f"/notifications/channels/{channel.pk}/test/" in detail
    refused = admin.post(
        "/notifications/channels/new/", {"name": "坏", "kind": "webhook", "url": "file:///etc"}
    )
    assert refused.status_code == 400
    assert Channel.objects.count() == 1
    response = admin.post(
        "/notifications/rules/new/",
        {
            "name": "P1 进群",
            "channel": channel.pk,
            "events": ["ticket.created", "ticket.sla_breached"],
            "priorities": ["P1"],
            "language": "zh-hans",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert admin.post(f"/notifications/channels/{channel.pk}/test/").status_code == 302
    assert len(receiver.messages) == 1
    log = admin.get("/notifications/deliveries/")
    assert "OneStop" in log.content.decode()
    dispatcher = client_for(world.dispatcher)
    page = dispatcher.get("/notifications/channels/")
    assert page.status_code == 200
    assert "/notifications/channels/new/" not in page.content.decode()
    assert dispatcher.get("/notifications/channels/new/").status_code == 403
    assert dispatcher.post(f"/notifications/channels/{channel.pk}/test/").status_code == 403
    assert client_for(world.engineer).get("/notifications/channels/").status_code == 403
    assert client_for(world.portal_a).get("/notifications/deliveries/").status_code == 403


def test_the_ticket_page_shows_what_was_sent_about_it(clocked, robot):
    world = clocked
    _receiver, _channel = _dingtalk(robot, events=["ticket.created"])
    services.deliveries_plan(now=T0)
    ticket = _ticket(world)
    _run(T0 + dt.timedelta(minutes=1))
    page = client_for(world.engineer).get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="deliveries"' in page
    assert "运维值班群" in page
    # Engineers of another customer see neither the ticket nor its log.
    listed = call(api_client(world.other_engineer), "get", "/api/v1/deliveries")
    assert listed.body["results"] == []


def test_the_delivery_log_runs_a_fixed_number_of_queries(world):
    channel = services.channel_create(
        actor=None, name="钩子", kind="webhook", url="https://example.com/hook"
    )

    def log(count):
        for n in range(count):
            Delivery.objects.create(
                channel=channel, event_name="test", title=f"测试 {n}", attempts=[{"ok": True}]
            )

    log(2)
    client = client_for(world.admin)
    client.get("/notifications/deliveries/")
    with CaptureQueriesContext(connection) as few:
        client.get("/notifications/deliveries/")
    log(30)
    with CaptureQueriesContext(connection) as many:
        assert client.get("/notifications/deliveries/").status_code == 200
    assert len(many) == len(few)


def test_preferences_page(world):
    client = client_for(world.engineer)
    assert client.get("/notifications/preferences/").status_code == 200
    response = client.post(
        "/notifications/preferences/",
        {"muted_events": ["ticket.created"], "quiet_from": "22:00", "quiet_until": "07:30"},
    )
    assert response.status_code == 302
    assert Preference.objects.get(user=world.engineer).quiet_until == dt.time(7, 30)
    refused = client.post("/notifications/preferences/", {"email_events": ["ticket.resolved"]})
    assert refused.status_code == 400  # no email address on the profile


def test_every_notified_event_has_a_label_for_rules_and_preferences():
    assert set(services.EVENT_LABELS) == set(services.NOTIFIED_EVENTS)
