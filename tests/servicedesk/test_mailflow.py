"""Email to ticket against a real Dovecot and a real SMTP server (aiosmtpd): filing new mail,
threading replies, triage, automatic mail and bounces, the crash guarantee, and threaded
outbound replies with retries."""

from __future__ import annotations

import base64
import datetime as dt
import email
import socket
from email import policy
from email.message import EmailMessage
from typing import TYPE_CHECKING

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from onestop.core import services as core_services
from onestop.core.errors import ConflictError
from onestop.core.models import AuditEvent, Contact
from onestop.servicedesk import services
from onestop.servicedesk.models import InboundMessage, Ticket, TicketEntry
from tests.conftest import client_for

if TYPE_CHECKING:
    from tests.servicedesk.mailservers import Dovecot, SmtpServer

pytest_plugins = ["tests.servicedesk.mailservers"]
pytestmark = pytest.mark.django_db
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


class Crash(BaseException):
    """Stands in for the worker being killed: not an Exception, so nothing catches it."""


@pytest.fixture
def mailbox(world, dovecot: Dovecot):
    core_services.contact_update(actor=None, contact=world.contact_a, email="ZhangWei@a.example")
    core_services.customer_update(actor=None, customer=world.customer_a, mail_domains=["A.example"])
    return services.mailbox_create(
        actor=None,
        name="服务台",
        address="support@msp.example",
        imap_host=dovecot.host,
        imap_port=dovecot.imap_port,
        imap_security="none",
        imap_username=dovecot.username,
        password=dovecot.password,
        team=world.team_a,
        default_priority="P2",
    )


def mail(
    *,
    sender: str = "张伟 <zhangwei@a.example>",
    subject: str = "三楼打印机无法打印",
    body: str = "打印机一直卡纸，麻烦尽快处理。",
    message_id: str = "<m1@a.example>",
    headers: dict[str, str] | None = None,
    attachment: tuple[str, str, bytes] | None = None,
) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = "support@msp.example"
    msg["Subject"] = subject
    if message_id:
        msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if attachment:
        name, content_type, content = attachment
        maintype, subtype = content_type.split("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def poll(mailbox) -> dict[str, int]:
    return services.mailbox_poll(mailbox=mailbox)


def unseen(dovecot: Dovecot) -> int:
    return sum(1 for flags, _raw in dovecot.messages() if r"\Seen" not in flags)


def first_ticket(world) -> Ticket:
    return Ticket.objects.get(customer=world.customer_a)


# Inbound ----------------------------------------------------------------------------------------


def test_new_mail_becomes_a_ticket_of_the_contact(world, dovecot, mailbox):
    raw = mail()
    dovecot.deliver(raw)
    assert poll(mailbox) == {"ticket": 1}
    ticket = first_ticket(world)
    assert (ticket.channel, ticket.requester, ticket.team, ticket.priority, ticket.mailbox) == (
        "email",
        world.contact_a,
        world.team_a,
        "P2",
        mailbox,
    )
    assert ticket.title == "三楼打印机无法打印"
    assert "卡纸" in ticket.description
    message = InboundMessage.objects.get()
    assert (message.outcome, message.ticket, message.message_id) == (
        "ticket",
        ticket,
        "<m1@a.example>",
    )
    with message.raw.open("rb") as stored:
        assert stored.read() == raw
    assert unseen(dovecot) == 0
    mailbox.refresh_from_db()
    assert mailbox.last_polled_at and mailbox.last_error == ""
    assert poll(mailbox) == {}


def test_domain_match_creates_the_contact(world, dovecot, mailbox):
    dovecot.deliver(mail(sender="王芳 <Wang.Fang@a.example>"))
    assert poll(mailbox) == {"ticket": 1}
    contact = Contact.objects.get(email="wang.fang@a.example")
    assert (contact.customer, contact.name) == (world.customer_a, "王芳")
    assert first_ticket(world).requester == contact


def test_unknown_sender_waits_in_triage_until_linked(world, dovecot, mailbox):
    dovecot.deliver(mail(sender="陈先生 <chen@unknown.example>", message_id="<t1@unknown.example>"))
    dovecot.deliver(mail(sender="spam@junk.example", message_id="<t2@junk.example>"))
    assert poll(mailbox) == {"triage": 2}
    assert not Ticket.objects.exists()
    first, second = InboundMessage.objects.order_by("pk")
    with pytest.raises(PermissionDenied):
        from onestop.core.permissions import require

        require(world.engineer, "change", first)
    ticket = services.inbound_message_link(
        actor=world.dispatcher, message=first, customer=world.customer_a, create_contact=True
    )
    assert ticket.requester.email == "chen@unknown.example"
    assert ticket.requester.name == "陈先生"
    assert ticket.mailbox == mailbox and ticket.channel == "email"
    first.refresh_from_db()
    assert (first.outcome, first.ticket, first.decided_by) == ("ticket", ticket, world.dispatcher)
    with pytest.raises(ConflictError):
        services.inbound_message_link(
            actor=world.dispatcher, message=first, customer=world.customer_a, create_contact=False
        )
    services.inbound_message_discard(actor=world.dispatcher, message=second)
    second.refresh_from_db()
    assert second.outcome == "discarded"
    assert (
        AuditEvent.objects.filter(
            object_type="servicedesk.inboundmessage", action="update", actor=world.dispatcher
        ).count()
        == 2
    )


QUOTED_REPLY = """\
好的，已经重启了，还是不行。

------------------ 原始邮件 ------------------
发件人: "服务台"<support@msp.example>;
发送时间: 2026年11月29日(星期天) 上午10:12
主题: Re: [#1] 三楼打印机无法打印

您好，请重启打印机后再试。
"""


def test_replies_thread_by_tag_and_by_in_reply_to(world, dovecot, mailbox):
    dovecot.deliver(mail())
    poll(mailbox)
    ticket = first_ticket(world)
    dovecot.deliver(
        mail(
            subject="回复: 三楼打印机无法打印",
            body=QUOTED_REPLY,
            message_id="<m2@a.example>",
            headers={"In-Reply-To": "<m1@a.example>", "References": "<m1@a.example>"},
            attachment=("截图.png", "image/png", PNG),
        )
    )
    dovecot.deliver(
        mail(
            subject=f"Re: [#{ticket.pk}] 打印机",
            body="补充：型号 HP M404",
            message_id="<m3@a.example>",
        )
    )
    assert poll(mailbox) == {"reply": 2}
    first, second = ticket.entries.filter(kind="reply").order_by("pk")
    assert first.body == "好的，已经重启了，还是不行。"
    assert (first.author_contact, first.message_id) == (world.contact_a, "<m2@a.example>")
    [picture] = first.attachments.all()
    assert (picture.name, picture.file.read()) == ("截图.png", PNG)
    assert second.body == "补充：型号 HP M404"
    assert Ticket.objects.count() == 1


def test_a_strangers_reply_goes_to_triage(world, dovecot, mailbox):
    dovecot.deliver(mail())
    poll(mailbox)
    ticket = first_ticket(world)
    dovecot.deliver(
        mail(
            sender="evil@elsewhere.example",
            subject=f"Re: [#{ticket.pk}] 三楼打印机无法打印",
            message_id="<x1@elsewhere.example>",
            headers={"In-Reply-To": "<m1@a.example>"},
        )
    )
    assert poll(mailbox) == {"triage": 1}
    assert not ticket.entries.filter(kind="reply").exists()


def test_reply_to_a_closed_ticket_opens_a_related_one(world, dovecot, mailbox):
    dovecot.deliver(mail())
    poll(mailbox)
    old = first_ticket(world)
    services.ticket_set_status(actor=world.admin, ticket=old, status="resolved")
    services.ticket_set_status(actor=world.admin, ticket=old, status="closed")
    dovecot.deliver(mail(subject=f"Re: [#{old.pk}] 又坏了", message_id="<m9@a.example>"))
    assert poll(mailbox) == {"ticket": 1}
    new = Ticket.objects.exclude(pk=old.pk).get()
    assert list(new.related.all()) == [old]


def test_gb2312_labelled_mail_keeps_its_characters(world, dovecot, mailbox):
    name = base64.b64encode("王喆".encode("gb18030")).decode()
    subject = base64.b64encode("喆的电脑蓝屏".encode("gb18030")).decode()
    raw = (
        f"From: =?gb2312?B?{name}?= <wangzhe@a.example>\r\n"
        "To: support@msp.example\r\n"
        f"Subject: =?GB2312?B?{subject}?=\r\n"
        "Message-ID: <gb1@a.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=gb2312\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + base64.encodebytes("王喆：电脑开机蓝屏。".encode("gb18030"))
    dovecot.deliver(raw)
    assert poll(mailbox) == {"ticket": 1}
    ticket = first_ticket(world)
    assert ticket.title == "喆的电脑蓝屏"
    assert ticket.description == "王喆：电脑开机蓝屏。"
    assert ticket.requester.name == "王喆"


def test_automatic_mail_and_our_own_mail_are_ignored(world, dovecot, mailbox):
    dovecot.deliver(
        mail(
            subject="自动回复: 休假中",
            message_id="<ooo@a.example>",
            headers={"Auto-Submitted": "auto-replied"},
        )
    )
    dovecot.deliver(mail(message_id="<loop1@msp.example>"))
    assert poll(mailbox) == {"ignored": 2}
    assert not Ticket.objects.exists()
    details = set(InboundMessage.objects.values_list("detail", flat=True))
    assert any("Auto-Submitted" in d for d in details) and any("own domain" in d for d in details)


def _bounce(original_id: str, recipient: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.a.example>\r\n"
        "To: support@msp.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce1@mx.a.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="RPT"\r\n\r\n'
        "--RPT\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--RPT\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.a.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        "--RPT\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: support@msp.example\r\nTo: {recipient}\r\nMessage-ID: {original_id}\r\n\r\n"
        "--RPT--\r\n"
    ).encode()


def test_bounce_is_noted_and_the_contact_flagged(world, dovecot, mailbox):
    dovecot.deliver(mail())
    poll(mailbox)
    ticket = first_ticket(world)
    reply = services.ticket_reply(actor=world.engineer, ticket=ticket, body="请重启打印机。")
    assert reply.email_state == "pending" and reply.message_id.endswith("@msp.example>")
    dovecot.deliver(_bounce(reply.message_id, "zhangwei@a.example"))
    assert poll(mailbox) == {"bounce": 1}
    world.contact_a.refresh_from_db()
    assert world.contact_a.email_bounced_at is not None
    note = ticket.entries.filter(kind="note").get()
    assert "zhangwei@a.example" in note.body and not note.is_public
    reply.refresh_from_db()
    assert reply.email_state == "failed"
    later = services.ticket_reply(actor=world.engineer, ticket=ticket, body="再试一次")
    assert later.email_state == ""  # never email an address that bounced


def test_crash_after_commit_before_marking_files_once(world, dovecot, mailbox, monkeypatch):
    dovecot.deliver(mail())
    real = services.inbound_mail_process

    def crash_after_commit(**kwargs):
        monkeypatch.setattr(services, "inbound_mail_process", real)
        real(**kwargs)
        raise Crash

    monkeypatch.setattr(services, "inbound_mail_process", crash_after_commit)
    with pytest.raises(Crash):
        poll(mailbox)
    assert unseen(dovecot) == 1 and Ticket.objects.count() == 1
    assert poll(mailbox) == {"ticket": 1}  # found on file: only marked processed
    assert unseen(dovecot) == 0
    assert Ticket.objects.count() == 1 and InboundMessage.objects.count() == 1


def test_crash_before_commit_loses_nothing(world, dovecot, mailbox, monkeypatch):
    dovecot.deliver(mail())
    real = services._inbound_route

    def crash_inside(*args):
        monkeypatch.setattr(services, "_inbound_route", real)
        real(*args)
        raise Crash

    monkeypatch.setattr(services, "_inbound_route", crash_inside)
    with pytest.raises(Crash):
        poll(mailbox)
    assert not Ticket.objects.exists() and not InboundMessage.objects.exists()
    assert unseen(dovecot) == 1
    assert poll(mailbox) == {"ticket": 1}
    assert Ticket.objects.count() == 1


def test_a_bad_message_is_rejected_and_the_next_one_filed(world, dovecot, mailbox, monkeypatch):
    dovecot.deliver(b"this is not an email at all\r\n")
    dovecot.deliver(mail(message_id="<boom@a.example>"))
    dovecot.deliver(mail(message_id="<m2@a.example>"))
    real = services.ticket_create
    calls = iter([RuntimeError("disk full")])

    def fail_once(**kwargs):
        error = next(calls, None)
        if error is not None:
            raise error
        return real(**kwargs)

    monkeypatch.setattr(services, "ticket_create", fail_once)
    assert poll(mailbox) == {"rejected": 2, "ticket": 1}
    assert unseen(dovecot) == 0
    garbage, boom = InboundMessage.objects.filter(outcome="rejected").order_by("pk")
    assert garbage.message_id.startswith("sha256:") and "From" in garbage.detail
    assert boom.message_id == "<boom@a.example>" and "disk full" in boom.detail
    with boom.raw.open("rb") as stored:
        assert b"<boom@a.example>" in stored.read()
    assert Ticket.objects.count() == 1


def test_unreachable_mailbox_is_recorded(world, mailbox):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    services.mailbox_update(actor=None, mailbox=mailbox, imap_port=port)
    assert poll(mailbox) == {}
    mailbox.refresh_from_db()
    assert "connection refused" in mailbox.last_error


# Outbound ---------------------------------------------------------------------------------------


@pytest.fixture
def smtp(settings, smtp_server: SmtpServer) -> SmtpServer:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = smtp_server.host, smtp_server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    return smtp_server


def _reply(world, ticket, capture, body="请重启打印机后再试。", **kwargs) -> TicketEntry:
    with capture(execute=True):
        entry = services.ticket_reply(actor=world.engineer, ticket=ticket, body=body, **kwargs)
    entry.refresh_from_db()
    return entry


def test_public_reply_is_emailed_threaded(
    world, dovecot, mailbox, smtp, django_capture_on_commit_callbacks
):
    dovecot.deliver(mail())
    poll(mailbox)
    ticket = first_ticket(world)
    cc = core_services.contact_create(
        actor=None, customer=world.customer_a, name="李四", email="lisi@a.example"
    )
    services.ticket_update(actor=None, ticket=ticket, cc_contacts=[cc])
    entry = _reply(world, ticket, django_capture_on_commit_callbacks)
    assert entry.email_state == "sent" and len(entry.email_attempts) == 1
    [received] = smtp.received
    assert sorted(received.rcpt_tos) == ["lisi@a.example", "zhangwei@a.example"]
    sent = email.message_from_bytes(received.content, policy=policy.default)
    assert sent["Message-ID"] == entry.message_id
    assert sent["In-Reply-To"] == "<m1@a.example>"
    assert sent["References"].split() == ["<m1@a.example>"]
    assert sent["Subject"] == f"Re: [#{ticket.pk}] 三楼打印机无法打印"
    assert "support@msp.example" in sent["From"]
    assert sent.get_content().strip() == "请重启打印机后再试。"

    # The customer answers our mail: it threads by In-Reply-To, and our next reply follows it.
    dovecot.deliver(
        mail(
            subject=sent["Subject"].replace("Re:", "回复:"),
            body="还是不行",
            message_id="<m2@a.example>",
            headers={
                "In-Reply-To": entry.message_id,
                "References": f"<m1@a.example> {entry.message_id}",
            },
        )
    )
    assert poll(mailbox) == {"reply": 1}
    second = _reply(world, ticket, django_capture_on_commit_callbacks, body="我们下午上门。")
    again = email.message_from_bytes(smtp.received[-1].content, policy=policy.default)
    assert again["In-Reply-To"] == "<m2@a.example>"
    assert again["References"].split() == ["<m1@a.example>", entry.message_id, "<m2@a.example>"]
    assert again["Subject"].count(f"[#{ticket.pk}]") == 1
    assert second.email_state == "sent"


def test_smtp_down_is_retried_later(
    world, mailbox, settings, smtp, django_capture_on_commit_callbacks
):
    ticket = services.ticket_create(
        actor=None,
        customer=world.customer_a,
        title="邮箱满了",
        channel="phone",
        requester=world.contact_a,
    )
    working_port = settings.EMAIL_PORT
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        settings.EMAIL_PORT = sock.getsockname()[1]
    entry = _reply(world, ticket, django_capture_on_commit_callbacks)
    assert entry.email_state == "pending" and entry.email_next_at > timezone.now()
    assert "Connection" in entry.email_error or "refused" in entry.email_error
    assert services.ticket_emails_send() == {}  # not due yet
    settings.EMAIL_PORT = working_port
    later = timezone.now() + dt.timedelta(minutes=2)
    assert services.ticket_emails_send(now=later) == {"sent": 1}
    entry.refresh_from_db()
    assert entry.email_state == "sent" and len(entry.email_attempts) == 2
    assert len(smtp.received) == 1
    # Ticket from the phone, no mailbox of its own: the default sender, else ONESTOP_MAIL_FROM.
    assert entry.message_id.endswith("@localhost>")


def test_notes_calls_and_imported_tickets_are_never_emailed(
    world, mailbox, smtp, django_capture_on_commit_callbacks
):
    ticket = services.ticket_create(
        actor=None,
        customer=world.customer_a,
        title="网络慢",
        channel="phone",
        requester=world.contact_a,
    )
    note = _reply(world, ticket, django_capture_on_commit_callbacks, kind="note")
    call = _reply(world, ticket, django_capture_on_commit_callbacks, kind="call")
    imported = services.ticket_create(
        actor=None,
        customer=world.customer_a,
        title="历史工单",
        channel="phone",
        requester=world.contact_a,
        imported=True,
        opened_at=timezone.now() - dt.timedelta(days=30),
    )
    old = _reply(world, imported, django_capture_on_commit_callbacks)
    assert (note.email_state, call.email_state, old.email_state) == ("", "", "")
    assert smtp.received == []


# UI ---------------------------------------------------------------------------------------------


def test_pages_for_admin_and_refusals_for_others(world, mailbox):
    InboundMessage.objects.create(
        message_id="<u1@x.example>",
        from_address="x@x.example",
        subject="?",
        outcome="triage",
        received_at=timezone.now(),
        raw="mail/none.eml",
    )
    admin = client_for(world.admin)
    for name, args in [
        ("ticket_mailbox_list", []),
        ("ticket_mailbox_create", []),
        ("ticket_mailbox_edit", [mailbox.pk]),
        ("ticket_triage", []),
        ("ticket_inbound_list", []),
    ]:
        assert admin.get(reverse(name, args=args)).status_code == 200, name
    assert client_for(world.engineer).get(reverse("ticket_mailbox_create")).status_code == 403
    assert client_for(world.engineer).get(reverse("ticket_triage")).status_code == 403
    assert (
        client_for(world.portal_a)
        .get(reverse("ticket_mailbox_edit", args=[mailbox.pk]))
        .status_code
        == 404
    )
    assert client_for(world.portal_a).get(reverse("ticket_triage")).status_code == 403


def test_triage_list_query_count_does_not_grow(world, mailbox):
    admin = client_for(world.admin)

    def add(n):
        for i in range(n):
            InboundMessage.objects.create(
                message_id=f"<q{InboundMessage.objects.count()}-{i}@x.example>",
                from_address="x@x.example",
                subject="求助",
                preview="你好",
                outcome="triage",
                mailbox=mailbox,
                received_at=timezone.now(),
                raw="mail/none.eml",
            )

    add(1)
    admin.get(reverse("ticket_triage"))
    with CaptureQueriesContext(connection) as few:
        assert admin.get(reverse("ticket_triage")).status_code == 200
    add(10)
    with CaptureQueriesContext(connection) as many:
        assert admin.get(reverse("ticket_triage")).status_code == 200
    assert len(many) == len(few)


def test_triage_page_links_and_discards(world, dovecot, mailbox):
    dovecot.deliver(mail(sender="陈先生 <chen@unknown.example>", message_id="<t1@unknown.example>"))
    dovecot.deliver(mail(sender="spam@junk.example", message_id="<t2@junk.example>"))
    poll(mailbox)
    first, second = InboundMessage.objects.order_by("pk")
    dispatcher = client_for(world.dispatcher)
    page = dispatcher.get(reverse("ticket_triage"))
    assert "chen@unknown.example" in page.content.decode()
    response = dispatcher.post(
        reverse("ticket_triage"),
        {"message": first.pk, "customer": world.customer_a.pk, "create_contact": "on"},
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "ticket_detail", args=[ticket.pk]
    )
    dispatcher.post(reverse("ticket_triage"), {"message": second.pk, "action": "discard"})
    second.refresh_from_db()
    assert second.outcome == "discarded"
    # Engineers do not triage.
    assert (
        client_for(world.engineer)
        .post(reverse("ticket_triage"), {"message": second.pk, "action": "discard"})
        .status_code
        == 403
    )


def test_test_connection_button(world, dovecot, mailbox):
    dovecot.deliver(mail())
    world.admin.language = "en"  # the page speaks the user's language
    world.admin.save()
    admin = client_for(world.admin)
    response = admin.post(reverse("ticket_mailbox_test", args=[mailbox.pk]), follow=True)
    assert "connected; 1 message waits in INBOX" in response.content.decode()
    services.mailbox_update(actor=None, mailbox=mailbox, password="wrong")
    response = admin.post(reverse("ticket_mailbox_test", args=[mailbox.pk]), follow=True)
    assert "failed" in response.content.decode()
