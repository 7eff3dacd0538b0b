"""The IMAP client against a real Dovecot: logins, TLS, listing, fetching without marking seen,
marking processed by flag or by moving, and every failure as one MailboxError. Also proves the
SMTP fixture by sending an outbound reply through it."""

from __future__ import annotations

import email
import smtplib
import socket
import time
from email import policy
from typing import TYPE_CHECKING

import pytest

from onestop.servicedesk.imap import ImapSession, MailboxError, MailboxSettings
from onestop.servicedesk.mail import build_reply, make_message_id, parse_mail

if TYPE_CHECKING:
    from tests.servicedesk.mailservers import Dovecot, SmtpServer

# The dovecot, start_dovecot and smtp_server fixtures; loaded as a plugin (not imported here)
# so that pytest rewrites the asserts of its helpers.
pytest_plugins = ["tests.servicedesk.mailservers"]
HOST = "127.0.0.1"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def settings(server: Dovecot, **overrides) -> MailboxSettings:
    values = {
        "host": server.host,
        "port": server.imap_port,
        "security": "none",
        "username": server.username,
        "password": server.password,
        "timeout": 5,
    }
    return MailboxSettings(**(values | overrides))


def message(number: int, subject: str = "打印机无法打印") -> bytes:
    return (
        f"From: 张伟 <zw@customer.example>\r\n"
        f"To: support@msp.example\r\n"
        f"Subject: {subject} {number}\r\n"
        f"Message-ID: <m{number}@customer.example>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"第 {number} 封\r\n"
    ).encode()


def test_password_login_lists_unseen_and_fetch_leaves_them_unseen(dovecot):
    dovecot.deliver(message(1))
    dovecot.deliver(message(2), flags=r"\Seen")  # a person already read this one
    dovecot.deliver(message(3))
    with ImapSession(settings(dovecot)) as session:
        uids = session.unprocessed_uids()
        assert len(uids) == 2 and uids == sorted(uids)
        raws = [session.fetch(uid) for uid in uids]
    assert raws == [message(1), message(3)]
    assert [parse_mail(raw).message_id for raw in raws] == [
        "<m1@customer.example>",
        "<m3@customer.example>",
    ]
    assert [r"\Seen" in flags for flags, _raw in dovecot.messages()] == [False, True, False]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_with_a_private_ca(dovecot, security):
    dovecot.deliver(message(1))
    port = dovecot.imaps_port if security == "ssl" else dovecot.imap_port
    mailbox = settings(dovecot, security=security, port=port, ssl_context=dovecot.ssl_context())
    with ImapSession(mailbox) as session:
        assert len(session.unprocessed_uids()) == 1


def test_xoauth2_login(dovecot):
    dovecot.deliver(message(1))
    mailbox = settings(dovecot, password="", oauth2_token=dovecot.oauth2_token)
    with ImapSession(mailbox) as session:
        [uid] = session.unprocessed_uids()
        assert session.fetch(uid) == message(1)
    wrong = settings(dovecot, password="", oauth2_token="expired-token")
    with pytest.raises(MailboxError, match=r"login as 'agent' on 127\.0\.0\.1 failed"):
        ImapSession(wrong).__enter__()


def test_wrong_password(dovecot):
    wrong = settings(dovecot, password="wrong")
    with pytest.raises(MailboxError, match=r"login as 'agent' on 127\.0\.0\.1 failed: .*Authentic"):
        ImapSession(wrong).__enter__()


def test_unknown_folders(dovecot):
    with pytest.raises(MailboxError, match="folder 'Tickets' does not exist"):
        ImapSession(settings(dovecot, folder="Tickets")).__enter__()
    with pytest.raises(MailboxError, match="folder '已处理' does not exist"):
        ImapSession(settings(dovecot, processed_folder="已处理")).__enter__()


def test_tls_failures(dovecot):
    # The system CAs do not trust the test certificate.
    untrusted = settings(dovecot, security="ssl", port=dovecot.imaps_port)
    with pytest.raises(MailboxError, match=r"TLS with 127\.0\.0\.1:\d+ failed: .*certificate"):
        ImapSession(untrusted).__enter__()
    # TLS spoken to the plain IMAP port.
    plain_port = settings(dovecot, security="ssl", ssl_context=dovecot.ssl_context())
    with pytest.raises(MailboxError, match=r"TLS with 127\.0\.0\.1:\d+ failed: .*not speak TLS"):
        ImapSession(plain_port).__enter__()


def test_closed_port_and_silent_server():
    closed = MailboxSettings(host=HOST, port=closed_port(), username="u", password="p", timeout=5)
    with pytest.raises(MailboxError, match="connection refused"):
        ImapSession(closed).__enter__()
    # A server that accepts the connection and never greets.
    with socket.socket() as silent:
        silent.bind((HOST, 0))
        silent.listen()
        mailbox = MailboxSettings(
            host=HOST,
            port=silent.getsockname()[1],
            security="none",
            username="u",
            password="p",
            timeout=0.5,
        )
        started = time.monotonic()
        with pytest.raises(MailboxError, match="timed out"):
            ImapSession(mailbox).__enter__()
        assert time.monotonic() - started < 5


def test_mark_processed_without_folder_marks_seen(dovecot):
    dovecot.deliver(message(1))
    dovecot.deliver(message(2))
    with ImapSession(settings(dovecot)) as session:
        first, second = session.unprocessed_uids()
        session.mark_processed(first)
        assert session.unprocessed_uids() == [second]
    assert [r"\Seen" in flags for flags, _raw in dovecot.messages()] == [True, False]
    assert dovecot.folders() == ["INBOX"]


@pytest.mark.parametrize(
    ("folder", "created_as"), [("Processed", "Processed"), ("台北", "&U,BTFw-")]
)
def test_mark_processed_moves_to_the_processed_folder(dovecot, folder, created_as):
    # "&U,BTFw-" is 台北 in modified UTF-7, the example of RFC 3501.
    dovecot.create_folder(created_as)
    dovecot.deliver(message(1))
    dovecot.deliver(message(2))
    with ImapSession(settings(dovecot, processed_folder=folder)) as session:
        first, second = session.unprocessed_uids()
        session.mark_processed(first)
        assert session.unprocessed_uids() == [second]
    assert [raw for _flags, raw in dovecot.messages("INBOX")] == [message(2)]
    assert [raw for _flags, raw in dovecot.messages(created_as)] == [message(1)]
    assert dovecot.folders() == sorted(["INBOX", folder])


@pytest.mark.parametrize("capability", ["IMAP4rev1 UIDPLUS", "IMAP4rev1"])
def test_mark_processed_on_a_server_without_move(start_dovecot, capability):
    # Dovecot announcing less than it has stands in for an older server.
    server = start_dovecot(extra_config=f"imap_capability = {capability}")
    server.create_folder("Processed")
    server.deliver(message(1))
    server.deliver(message(2))
    with ImapSession(settings(server, processed_folder="Processed")) as session:
        first, second = session.unprocessed_uids()
        session.mark_processed(first)
        assert session.unprocessed_uids() == [second]
    assert [raw for _flags, raw in server.messages("INBOX")] == [message(2)]
    assert [raw for _flags, raw in server.messages("Processed")] == [message(1)]


def test_a_crash_before_mark_processed_fetches_the_message_again(dovecot):
    dovecot.deliver(message(1))
    with ImapSession(settings(dovecot)) as session:
        [uid] = session.unprocessed_uids()
        session.fetch(uid)
        # ... the poller dies before its ticket entry is committed ...
    with ImapSession(settings(dovecot)) as session:
        assert session.unprocessed_uids() == [uid]
        assert session.fetch(uid) == message(1)
    with pytest.raises(MailboxError, match="session is closed"):
        session.unprocessed_uids()


def test_settings_validate_and_hide_secrets():
    with pytest.raises(ValueError, match="exactly one"):
        MailboxSettings(host=HOST, username="u", password="p", oauth2_token="t")
    with pytest.raises(ValueError, match="exactly one"):
        MailboxSettings(host=HOST, username="u")
    with pytest.raises(ValueError, match="security"):
        MailboxSettings(host=HOST, username="u", password="p", security="tls")  # type: ignore[arg-type]
    shown = repr(MailboxSettings(host=HOST, username="u", password="s3cret", oauth2_token=""))
    assert "s3cret" not in shown


def test_smtp_fixture_records_a_reply_sent_with_smtplib(smtp_server: SmtpServer):
    reply = build_reply(
        from_address="OneStop 服务台 <support@msp.example>",
        to=["张伟 <zw@customer.example>"],
        cc=["ln@customer.example"],
        subject="Re: 打印机无法打印",
        text="工程师明天上午上门。",
        ticket_id=12345,
        message_id=make_message_id(domain="desk.msp.example"),
        in_reply_to="<m1@customer.example>",
        references=["<m1@customer.example>"],
        automatic=True,
    )
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        refused = client.send_message(reply)
    assert refused == {}
    [received] = smtp_server.received
    assert received.mail_from == "support@msp.example"
    assert received.rcpt_tos == ["zw@customer.example", "ln@customer.example"]
    sent = email.message_from_bytes(received.content, policy=policy.default)
    assert sent["Subject"] == "Re: [#12345] 打印机无法打印"
    assert sent["Message-ID"] == reply["Message-ID"]
    assert sent["In-Reply-To"] == "<m1@customer.example>"
    assert sent["Auto-Submitted"] == "auto-replied"
    assert sent.get_content().strip() == "工程师明天上午上门。"
