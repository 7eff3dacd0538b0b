"""The outbound senders against real receivers on loopback: signing, content, rate limits,
outages, timeouts, URL checks, and folding what exceeds a robot's rate into a digest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import time
import urllib.parse
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from onestop.notify import senders
from onestop.notify.senders import Message, SendResult

SECRET = "SEC-test-secret"
MESSAGE = Message(
    title="#42 打印机卡纸",
    text="三楼财务室的打印机卡纸，请尽快处理。",
    url="https://onestop.example.com/tickets/42/",
    event="ticket.created",
    data={"ticket_id": 42, "amount": Decimal("12.50")},
)
KINDS = ["webhook", "dingtalk", "wecom", "feishu"]


def _send(
    kind: str, *, url: str, secret: str = "", message: Message = MESSAGE, **options
) -> SendResult:
    if kind == "webhook":
        return senders.send_webhook(url=url, secret=secret, message=message, **options)
    if kind == "dingtalk":
        return senders.send_dingtalk(url=url, secret=secret, message=message, **options)
    if kind == "wecom":
        return senders.send_wecom(url=url, message=message, **options)
    return senders.send_feishu(url=url, secret=secret, message=message, **options)


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/robot/send?access_token=abc"


# Webhook


def test_webhook_is_signed_and_verifiable_by_the_receiver(robot):
    receiver = robot("webhook", secret=SECRET)
    before = int(time.time())
    result = senders.send_webhook(url=receiver.url, secret=SECRET, message=MESSAGE)
    assert result == SendResult(ok=True, transient=False, status=204, detail="HTTP 204")
    [payload] = receiver.messages
    assert payload["event"] == "ticket.created"
    assert payload["title"] == MESSAGE.title
    assert payload["text"] == MESSAGE.text
    assert payload["url"] == MESSAGE.url
    assert payload["data"] == {"ticket_id": 42, "amount": "12.50"}
    [request] = receiver.received
    timestamp = request.headers["x-onestop-timestamp"]
    assert before <= int(timestamp) <= time.time()
    assert datetime.fromisoformat(payload["sent_at"]) == datetime.fromtimestamp(
        int(timestamp), tz=UTC
    )
    assert senders.verify_webhook_signature(
        secret=SECRET,
        timestamp=timestamp,
        body=request.body,
        signature=request.headers["x-onestop-signature"],
    )


def test_webhook_without_a_secret_is_unsigned(robot):
    receiver = robot("webhook")
    assert senders.send_webhook(url=receiver.url, secret="", message=MESSAGE).ok
    assert "x-onestop-signature" not in receiver.received[0].headers


def test_webhook_with_the_wrong_secret_is_refused_for_good(robot):
    receiver = robot("webhook", secret=SECRET)
    result = senders.send_webhook(url=receiver.url, secret="wrong", message=MESSAGE)
    assert (result.ok, result.transient, result.status) == (False, False, 401)
    assert "401" in result.detail
    assert receiver.messages == []


def test_webhook_rate_limit_is_transient_with_retry_after(robot):
    receiver = robot("webhook", secret=SECRET, rate_limit=2)
    results = [
        senders.send_webhook(url=receiver.url, secret=SECRET, message=MESSAGE) for _ in range(3)
    ]
    assert [r.ok for r in results] == [True, True, False]
    assert (results[2].transient, results[2].status) == (True, 429)
    assert results[2].retry_after is not None and 1 <= results[2].retry_after <= 60
    assert len(receiver.messages) == 2


def test_webhook_client_error_is_permanent(robot):
    receiver = robot("webhook")
    receiver.fail_next(1, status=404)
    result = senders.send_webhook(url=receiver.url, secret="", message=MESSAGE)
    assert (result.ok, result.transient, result.status) == (False, False, 404)


def test_webhook_signature_helper_accepts_good_and_rejects_tampered_or_stale():
    body = b'{"title": "x"}'
    now = 1_735_689_600
    mac = hmac.new(SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256)
    good = f"sha256={mac.hexdigest()}"

    def verify(**changes) -> bool:
        arguments = {
            "secret": SECRET,
            "timestamp": str(now),
            "body": body,
            "signature": good,
            "now": now + 10,
        }
        return senders.verify_webhook_signature(**(arguments | changes))

    assert verify()
    assert verify(now=now + 300)
    assert not verify(body=b'{"title": "y"}')
    assert not verify(secret="other")
    assert not verify(timestamp=str(now + 1))  # the timestamp is part of what is signed
    assert not verify(now=now + 301)  # stale: a replay
    assert not verify(now=now - 301)  # from the future
    assert not verify(timestamp="soon")
    assert not verify(signature="sha256=" + "0" * 64)
    assert not verify(signature="sha256=ü")
    assert not verify(secret="")


# DingTalk


def test_dingtalk_signed_markdown_is_accepted(robot):
    receiver = robot("dingtalk", secret=SECRET)
    result = senders.send_dingtalk(url=receiver.url, secret=SECRET, message=MESSAGE)
    assert (result.ok, result.status, result.detail) == (True, 200, "DingTalk: ok")
    assert receiver.messages == [
        {
            "msgtype": "markdown",
            "markdown": {
                "title": MESSAGE.title,
                "text": f"### {MESSAGE.title}\n\n{MESSAGE.text}\n\n[{MESSAGE.url}]({MESSAGE.url})",
            },
        }
    ]
    query = receiver.received[0].query
    assert query["access_token"] == "abc"
    assert abs(int(query["timestamp"]) - time.time() * 1000) < 60_000


def test_dingtalk_with_the_wrong_secret_is_refused_for_good(robot):
    receiver = robot("dingtalk", secret=SECRET)
    result = senders.send_dingtalk(url=receiver.url, secret="wrong", message=MESSAGE)
    assert (result.ok, result.transient, result.status) == (False, False, 200)
    assert result.detail == "DingTalk error 310000: sign not match"
    assert receiver.messages == []


def test_dingtalk_receiver_refuses_a_stale_signature(robot):
    """The receiver really checks freshness: a correct sign two hours old is refused."""
    receiver = robot("dingtalk", secret=SECRET)
    timestamp = str(int((time.time() - 7200) * 1000))
    digest = hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256)
    sign = urllib.parse.quote_plus(base64.b64encode(digest.digest()))
    response = httpx.post(
        f"{receiver.url}&timestamp={timestamp}&sign={sign}",
        json={"msgtype": "text", "text": {"content": "x"}},
    )
    assert response.json()["errcode"] == 310000


def test_dingtalk_without_secret_sends_no_signature(robot):
    receiver = robot("dingtalk")
    assert senders.send_dingtalk(url=receiver.url, secret="", message=MESSAGE).ok
    assert set(receiver.received[0].query) == {"access_token"}


def test_dingtalk_unknown_token_is_permanent(robot):
    receiver = robot("dingtalk", secret=SECRET, token="right")
    url = receiver.url.replace("right", "wrong")
    result = senders.send_dingtalk(url=url, secret=SECRET, message=MESSAGE)
    assert (result.ok, result.transient) == (False, False)
    assert "300005" in result.detail


def test_dingtalk_rate_limit_is_transient_for_ten_minutes(robot):
    receiver = robot("dingtalk", secret=SECRET, rate_limit=1)
    assert senders.send_dingtalk(url=receiver.url, secret=SECRET, message=MESSAGE).ok
    result = senders.send_dingtalk(url=receiver.url, secret=SECRET, message=MESSAGE)
    assert (result.ok, result.transient, result.retry_after) == (False, True, 600.0)
    assert "130101" in result.detail


def test_robot_answer_that_is_not_json_is_permanent(robot):
    receiver = robot("dingtalk")
    receiver.fail_next(1, status=200)  # a 200 with a plain-text body: not a robot endpoint
    result = senders.send_dingtalk(url=receiver.url, secret="", message=MESSAGE)
    assert (result.ok, result.transient, result.status) == (False, False, 200)
    assert "unexpected answer" in result.detail


# WeCom


def test_wecom_markdown_is_accepted(robot):
    receiver = robot("wecom", token="k")
    assert receiver.url.endswith("/cgi-bin/webhook/send?key=k")
    result = senders.send_wecom(url=receiver.url, message=MESSAGE)
    assert (result.ok, result.detail) == (True, "WeCom: ok")
    assert receiver.messages == [
        {
            "msgtype": "markdown",
            "markdown": {
                "content": (
                    f"### {MESSAGE.title}\n\n{MESSAGE.text}\n\n[{MESSAGE.url}]({MESSAGE.url})"
                )
            },
        }
    ]


def test_wecom_wrong_key_is_permanent(robot):
    receiver = robot("wecom", token="k")
    result = senders.send_wecom(url=receiver.url.replace("key=k", "key=x"), message=MESSAGE)
    assert (result.ok, result.transient) == (False, False)
    assert result.detail == "WeCom error 93000: invalid webhook url"


def test_wecom_rate_limit_is_transient(robot):
    receiver = robot("wecom", rate_limit=1)
    assert senders.send_wecom(url=receiver.url, message=MESSAGE).ok
    result = senders.send_wecom(url=receiver.url, message=MESSAGE)
    assert (result.ok, result.transient, result.retry_after) == (False, True, 60.0)
    assert "45009" in result.detail


def _wecom_content(robot, message: Message) -> str:
    receiver = robot("wecom")
    assert senders.send_wecom(url=receiver.url, message=message).ok
    return receiver.messages[0]["markdown"]["content"]


def test_wecom_content_of_exactly_4096_bytes_is_kept_whole(robot):
    # "### t\n\n" is 7 bytes and each 中 is 3: 7 + 3 * 1363 = 4096.
    content = _wecom_content(robot, Message(title="t", text="中" * 1363))
    assert content == "### t\n\n" + "中" * 1363
    assert len(content.encode()) == 4096


def test_wecom_one_byte_over_is_cut_to_4096_with_an_ellipsis(robot):
    content = _wecom_content(robot, Message(title="t", text="中" * 1363 + "a"))
    assert content == "### t\n\n" + "中" * 1362 + "…"
    assert len(content.encode()) == 4096


def test_wecom_long_chinese_text_is_cut_on_a_character_with_an_ellipsis(robot):
    text = "a" + "中" * 2000  # the byte cut would fall inside a character
    content = _wecom_content(robot, Message(title="t", text=text))
    assert len(content.encode()) <= 4096
    assert content == "### t\n\na" + "中" * 1361 + "…"


def test_wecom_cut_keeps_the_link(robot):
    message = Message(title="长标题", text="工单内容" * 800, url=MESSAGE.url)
    content = _wecom_content(robot, message)
    assert 4090 <= len(content.encode()) <= 4096
    assert content.startswith("### 长标题\n\n工单内容")
    assert content.endswith(f"…\n\n[{MESSAGE.url}]({MESSAGE.url})")


# Feishu


def test_feishu_signed_post_is_accepted(robot):
    receiver = robot("feishu", secret=SECRET, token="hook-token")
    assert receiver.url.endswith("/open-apis/bot/v2/hook/hook-token")
    result = senders.send_feishu(url=receiver.url, secret=SECRET, message=MESSAGE)
    assert (result.ok, result.detail) == (True, "Feishu: ok")
    [message] = receiver.messages
    assert abs(int(message["timestamp"]) - time.time()) < 60
    assert message["msg_type"] == "post"
    assert message["content"] == {
        "post": {
            "zh_cn": {
                "title": MESSAGE.title,
                "content": [
                    [{"tag": "text", "text": MESSAGE.text}],
                    [{"tag": "a", "text": MESSAGE.url, "href": MESSAGE.url}],
                ],
            }
        }
    }


def test_feishu_without_url_or_secret_sends_text_only(robot):
    receiver = robot("feishu")
    message = Message(title="t", text="正文")
    assert senders.send_feishu(url=receiver.url, secret="", message=message).ok
    [sent] = receiver.messages
    assert "sign" not in sent and "timestamp" not in sent
    assert sent["content"]["post"]["zh_cn"]["content"] == [[{"tag": "text", "text": "正文"}]]


def test_feishu_with_the_wrong_secret_is_refused_for_good(robot):
    receiver = robot("feishu", secret=SECRET)
    result = senders.send_feishu(url=receiver.url, secret="wrong", message=MESSAGE)
    assert (result.ok, result.transient) == (False, False)
    assert result.detail.startswith("Feishu error 19021: sign match fail")


def test_feishu_rate_limit_is_transient_even_as_http_400(robot):
    receiver = robot("feishu", secret=SECRET, rate_limit=1)
    assert senders.send_feishu(url=receiver.url, secret=SECRET, message=MESSAGE).ok
    result = senders.send_feishu(url=receiver.url, secret=SECRET, message=MESSAGE)
    assert (result.ok, result.transient, result.status) == (False, True, 400)
    assert "11232" in result.detail


# Every sender: outages, timeouts, refused connections, bad URLs


@pytest.mark.parametrize("kind", KINDS)
def test_server_error_is_transient_and_the_next_try_succeeds(robot, kind):
    receiver = robot(kind, secret=SECRET)
    receiver.fail_next(1, status=503)
    failed = _send(kind, url=receiver.url, secret=SECRET)
    assert (failed.ok, failed.transient, failed.status) == (False, True, 503)
    assert failed.detail == "HTTP 503: simulated failure"
    assert _send(kind, url=receiver.url, secret=SECRET).ok
    assert len(receiver.messages) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_hanging_receiver_times_out_as_transient(robot, kind):
    receiver = robot(kind, secret=SECRET)
    receiver.hang_next(1, seconds=5)
    started = time.monotonic()
    result = _send(kind, url=receiver.url, secret=SECRET, timeout=0.5)
    assert time.monotonic() - started < 3
    assert result == SendResult(
        ok=False, transient=True, status=None, detail="timed out after 0.5 s"
    )
    assert receiver.messages == []


@pytest.mark.parametrize("kind", KINDS)
def test_connection_refused_is_transient(kind):
    result = _send(kind, url=_closed_port_url(), secret=SECRET, timeout=2)
    assert (result.ok, result.transient, result.status) == (False, True, None)
    assert result.detail.startswith("connection failed")


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_url_is_permanent_and_not_echoed(kind):
    result = _send(kind, url="ftp://robot.example/send?access_token=TOPSECRET", secret=SECRET)
    assert (result.ok, result.transient, result.status) == (False, False, None)
    assert "TOPSECRET" not in result.detail


def test_one_client_serves_many_sends(robot):
    receiver = robot("dingtalk", secret=SECRET)
    with httpx.Client() as client:
        results = [
            senders.send_dingtalk(url=receiver.url, secret=SECRET, message=MESSAGE, client=client)
            for _ in range(3)
        ]
    assert all(result.ok for result in results)
    assert len(receiver.messages) == 3


# URL validation


@pytest.mark.parametrize(
    "url",
    [
        "https://oapi.dingtalk.com/robot/send?access_token=abc",
        "http://10.0.0.5:8080/hooks/onestop",
        "https://例子.中国/hook",
        "http://[::1]:9000/x",
    ],
)
def test_http_urls_with_a_host_are_valid(url):
    assert senders.validate_endpoint_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/x",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://",
        "http:///path",
        "https://:443/x",
        "http://exa mple.com/",
        " https://example.com/",
        "https://example.com/\n",
        "http://example.com:abc/",
        "http://example.com:99999/",
        "example.com/hook",
    ],
)
def test_other_urls_are_refused_with_a_clear_message(url):
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        senders.validate_endpoint_url(url)
    assert refused.value.messages == [
        "Enter a web address that starts with http:// or https:// and names a host."
    ]


# Rate budget and digest


@pytest.mark.parametrize(
    ("pending", "sent", "expected"),
    [
        (0, 0, (0, False)),
        (5, 0, (5, False)),
        (20, 0, (20, False)),
        (21, 0, (19, True)),
        (100, 0, (19, True)),
        (3, 17, (3, False)),
        (4, 17, (2, True)),
        (5, 19, (0, True)),  # one slot left: it carries everything as a digest
        (1, 19, (1, False)),
        (5, 20, (0, False)),  # no budget: wait for the next minute
        (5, 25, (0, False)),
    ],
)
def test_split_for_rate(pending, sent, expected):
    assert senders.split_for_rate(pending_count=pending, sent_in_last_minute=sent) == expected


def test_split_for_rate_with_another_limit():
    assert senders.split_for_rate(pending_count=10, sent_in_last_minute=0, limit=5) == (4, True)


def test_digest_lists_every_title_with_its_link():
    messages = [
        Message(title="#1 打印机", text="a", url="https://x/t/1/", event="ticket.created"),
        Message(title="#2 网络", text="b"),
        Message(title="#3 邮件", text="c", url="https://x/t/3/"),
    ]
    with translation.override("en"):
        digest = senders.digest_message(messages)
        assert senders.digest_message(messages[:1]).title == "1 notification"
    assert digest.title == "3 notifications"
    assert digest.text == "- [#1 打印机](https://x/t/1/)\n- #2 网络\n- [#3 邮件](https://x/t/3/)"
    assert digest.event == "digest"
    assert [m["title"] for m in digest.data["messages"]] == ["#1 打印机", "#2 网络", "#3 邮件"]
    with pytest.raises(ValueError):
        senders.digest_message([])


def test_a_burst_beyond_the_rate_arrives_whole_as_singles_and_one_digest(robot):
    """25 pending for a robot taking 20 a minute: 19 go singly, the 20th carries the other 6."""
    receiver = robot("dingtalk", secret=SECRET)
    pending = [Message(title=f"#{n}", text="x", url=f"https://x/t/{n}/") for n in range(25)]
    singles, fold = senders.split_for_rate(pending_count=len(pending), sent_in_last_minute=0)
    with translation.override("en"), httpx.Client() as client:
        outgoing = pending[:singles] + ([senders.digest_message(pending[singles:])] if fold else [])
        results = [
            senders.send_dingtalk(url=receiver.url, secret=SECRET, message=m, client=client)
            for m in outgoing
        ]
    assert all(result.ok for result in results)
    assert len(receiver.messages) == 20
    digest_text = receiver.messages[-1]["markdown"]["text"]
    assert digest_text.startswith("### 6 notifications")
    assert all(f"[#{n}](https://x/t/{n}/)" in digest_text for n in range(19, 25))
    singles_sent = [m["markdown"]["title"] for m in receiver.messages[:-1]]
    assert singles_sent == [f"#{n}" for n in range(19)]
    # The robot is now full: one more is throttled and comes back transient, to be retried.
    extra = senders.send_dingtalk(url=receiver.url, secret=SECRET, message=pending[0])
    assert (extra.ok, extra.transient) == (False, True)
    assert len(receiver.messages) == 20
