"""Sending one notification out: signed webhooks and the DingTalk, WeCom and Feishu group robots.

Each sender posts one `Message` and answers a `SendResult`; none raises for a network or HTTP
problem, so its caller only chooses between done, retry later with backoff (`transient`) and
give up. No detail ever repeats the URL: robot URLs carry their access token.

Webhook signature
-----------------
Every webhook POST carries two headers::

    X-OneStop-Timestamp: 1735689600
    X-OneStop-Signature: sha256=<hex>

``<hex>`` is the HMAC-SHA256, keyed with the channel's secret (UTF-8), of the timestamp, a dot
and the raw request body: ``f"{timestamp}.".encode() + body``. A receiver recomputes it over the
body bytes exactly as received (before parsing the JSON), compares in constant time and refuses
a timestamp more than five minutes from its own clock, which stops replays;
`verify_webhook_signature` does all three. A channel without a secret sends no signature.

The JSON body is ``{"event", "title", "text", "url", "data", "sent_at"}``, ``sent_at`` being the
same instant as the timestamp in ISO 8601 (UTC).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

# Group robots take about 20 messages a minute (DingTalk and WeCom document exactly 20).
ROBOT_RATE_PER_MINUTE = 20

# The longest markdown content a WeCom robot accepts, in UTF-8 bytes.
WECOM_MARKDOWN_MAX_BYTES = 4096

USER_AGENT = "OneStop"
ELLIPSIS = "…"


@dataclass(frozen=True)
class SendResult:
    """What became of one send.

    transient: worth retrying later with backoff (timeout, connection error, HTTP 5xx, 408, 429,
    a platform's rate limit); a failure that is not transient will fail again as it is.
    retry_after: seconds to wait at least, when the receiver said so or its rate limit is known.
    """

    ok: bool
    transient: bool
    status: int | None
    detail: str
    retry_after: float | None = None


@dataclass(frozen=True)
class Message:
    """One notification as the senders see it; `url` should be absolute (it leaves OneStop)."""

    title: str
    text: str
    url: str = ""
    event: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def validate_endpoint_url(url: str) -> str:
    """Returns the URL if it is an http(s) URL with a host, else raises ValidationError."""
    message = _("Enter a web address that starts with http:// or https:// and names a host.")
    if not url or any(char.isspace() or not char.isprintable() for char in url):
        raise ValidationError(message, code="invalid")
    try:
        # Parsed as httpx will send it, so what passes here is what the senders can post to.
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ValidationError(message, code="invalid") from None
    valid_port = parsed.port is None or 0 < parsed.port < 65536
    if parsed.scheme not in ("http", "https") or not parsed.host or not valid_port:
        raise ValidationError(message, code="invalid")
    return url


def verify_webhook_signature(
    *,
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    tolerance: float = 300,
) -> bool:
    """True if `signature` is ours for this timestamp and body, and the timestamp is fresh.

    For receivers of OneStop's webhooks; `timestamp` and `signature` are the header values.
    """
    if not secret:
        return False
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    expected = _webhook_signature(secret=secret, timestamp=timestamp, body=body)
    # Bytes, because compare_digest refuses non-ASCII str and a forged header may hold any.
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def send_webhook(
    *,
    url: str,
    secret: str,
    message: Message,
    timeout: float = 10.0,
    client: httpx.Client | None = None,
) -> SendResult:
    """POSTs the message as signed JSON (see the module docstring); any 2xx is success."""
    timestamp = str(int(time.time()))
    payload = {
        "event": message.event,
        "title": message.title,
        "text": message.text,
        "url": message.url,
        "data": message.data,
        "sent_at": datetime.fromtimestamp(int(timestamp), tz=UTC).isoformat(),
    }
    body = json.dumps(payload, ensure_ascii=False, cls=DjangoJSONEncoder).encode()
    headers = {"X-OneStop-Timestamp": timestamp}
    if secret:
        headers["X-OneStop-Signature"] = _webhook_signature(
            secret=secret, timestamp=timestamp, body=body
        )
    response = _post(url=url, body=body, headers=headers, timeout=timeout, client=client)
    if isinstance(response, SendResult):
        return response
    return _http_failure(response) or SendResult(
        ok=True, transient=False, status=response.status_code, detail=f"HTTP {response.status_code}"
    )


def send_dingtalk(
    *,
    url: str,
    secret: str,
    message: Message,
    timeout: float = 10.0,
    client: httpx.Client | None = None,
) -> SendResult:
    """Posts a markdown message to a DingTalk custom robot (`url` holds `?access_token=`).

    With a secret ("加签"), the URL gets `timestamp` (ms) and `sign`: the URL-encoded base64 of
    HMAC-SHA256 keyed with the secret over f"{timestamp}\\n{secret}".
    """
    if secret:
        timestamp = str(int(time.time() * 1000))
        digest = hmac.new(
            secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256
        ).digest()
        sign = urllib.parse.quote_plus(base64.b64encode(digest))
        url = f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={sign}"
    payload = {
        "msgtype": "markdown",
        "markdown": {"title": message.title, "text": _markdown(message)},
    }
    return _send_robot(url=url, payload=payload, platform=_DINGTALK, timeout=timeout, client=client)


def send_wecom(
    *,
    url: str,
    message: Message,
    timeout: float = 10.0,
    client: httpx.Client | None = None,
) -> SendResult:
    """Posts a markdown message to a WeCom group robot (`url` holds `?key=`; no signing).

    A body too long for WeCom's 4096 bytes is cut short with an ellipsis; the title and link
    are kept, so the reader can still open the ticket.
    """
    content = _markdown(message, max_bytes=WECOM_MARKDOWN_MAX_BYTES)
    payload = {"msgtype": "markdown", "markdown": {"content": content}}
    return _send_robot(url=url, payload=payload, platform=_WECOM, timeout=timeout, client=client)


def send_feishu(
    *,
    url: str,
    secret: str,
    message: Message,
    timeout: float = 10.0,
    client: httpx.Client | None = None,
) -> SendResult:
    """Posts a rich-text ("post") message to a Feishu/Lark custom bot.

    With a secret ("签名校验"), the body gets `timestamp` (s) and `sign`: the base64 of
    HMAC-SHA256 keyed with f"{timestamp}\\n{secret}" over an empty message.
    """
    lines: list[list[dict[str, str]]] = [[{"tag": "text", "text": message.text}]]
    if message.url:
        lines.append([{"tag": "a", "text": message.url, "href": message.url}])
    payload: dict[str, Any] = {
        "msg_type": "post",
        "content": {"post": {"zh_cn": {"title": message.title, "content": lines}}},
    }
    if secret:
        timestamp = str(int(time.time()))
        key = f"{timestamp}\n{secret}".encode()
        digest = hmac.new(key, b"", hashlib.sha256).digest()
        payload = {"timestamp": timestamp, "sign": base64.b64encode(digest).decode(), **payload}
    return _send_robot(url=url, payload=payload, platform=_FEISHU, timeout=timeout, client=client)


def split_for_rate(
    *, pending_count: int, sent_in_last_minute: int, limit: int = ROBOT_RATE_PER_MINUTE
) -> tuple[int, bool]:
    """How many pending messages to send one by one now, and whether to fold the rest into one.

    Robots accept about `limit` messages a minute and throttle beyond it, so what exceeds the
    remaining budget is batched into a digest (`digest_message`), never dropped: when more are
    pending than the budget allows, budget - 1 go singly and the last slot carries the digest.
    With no budget left nothing is sent now; the messages wait for the next minute.
    """
    budget = max(limit - max(sent_in_last_minute, 0), 0)
    if pending_count <= 0 or budget == 0:
        return 0, False
    if pending_count <= budget:
        return pending_count, False
    return budget - 1, True


def digest_message(messages: list[Message]) -> Message:
    """Folds several messages into one that lists each title with its link.

    The webhook payload keeps every folded message under `data["messages"]`.
    """
    if not messages:
        raise ValueError("nothing to fold into a digest")
    count = len(messages)
    title = ngettext("%(count)d notification", "%(count)d notifications", count) % {"count": count}
    lines = [
        f"- [{message.title}]({message.url})" if message.url else f"- {message.title}"
        for message in messages
    ]
    return Message(
        title=title,
        text="\n".join(lines),
        event="digest",
        data={"messages": [asdict(message) for message in messages]},
    )


@dataclass(frozen=True)
class _Platform:
    """How a robot platform answers: where its result code sits and which codes mean throttled."""

    name: str
    code_keys: tuple[str, ...]
    message_keys: tuple[str, ...]
    rate_limit_codes: frozenset[int]
    rate_limit_pause: float  # seconds, when the answer itself does not say


# DingTalk throttles a robot for ten minutes once it exceeds 20 messages a minute.
_DINGTALK = _Platform("DingTalk", ("errcode",), ("errmsg",), frozenset({130101, 660026}), 600.0)
_WECOM = _Platform("WeCom", ("errcode",), ("errmsg",), frozenset({45009}), 60.0)
# Older Feishu endpoints answer StatusCode/StatusMessage instead of code/msg.
_FEISHU = _Platform(
    "Feishu", ("code", "StatusCode"), ("msg", "StatusMessage"), frozenset({9499, 11232}), 60.0
)


def _send_robot(
    *,
    url: str,
    payload: dict[str, Any],
    platform: _Platform,
    timeout: float,
    client: httpx.Client | None,
) -> SendResult:
    """Posts a robot's payload and reads the platform's result code from its JSON answer."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    response = _post(url=url, body=body, headers={}, timeout=timeout, client=client)
    if isinstance(response, SendResult):
        return response
    status = response.status_code
    code, text = _platform_code(response, platform)
    if status >= 500 or status in (408, 429) or code is None:
        return _http_failure(response) or SendResult(
            ok=False,
            transient=False,
            status=status,
            detail=f"{platform.name}: unexpected answer{_excerpt(response)}",
        )
    if code == 0 and response.is_success:
        return SendResult(ok=True, transient=False, status=status, detail=f"{platform.name}: ok")
    throttled = code in platform.rate_limit_codes
    return SendResult(
        ok=False,
        transient=throttled,
        status=status,
        detail=f"{platform.name} error {code}: {text}"[:300],
        retry_after=(_retry_after(response) or platform.rate_limit_pause) if throttled else None,
    )


def _post(
    *,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    client: httpx.Client | None,
) -> httpx.Response | SendResult:
    """POSTs JSON; every way of not getting a response comes back as a SendResult."""
    try:
        validate_endpoint_url(url)
    except ValidationError:
        return SendResult(
            ok=False, transient=False, status=None, detail="invalid URL: not http(s) with a host"
        )
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        **headers,
    }
    try:
        if client is not None:
            return client.post(url, content=body, headers=headers, timeout=timeout)
        # trust_env: many sites reach the internet only through HTTP(S)_PROXY.
        with httpx.Client(trust_env=True) as own:
            return own.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return SendResult(
            ok=False, transient=True, status=None, detail=f"timed out after {timeout:g} s"
        )
    except httpx.HTTPError as exc:
        return SendResult(
            ok=False,
            transient=True,
            status=None,
            detail=f"connection failed: {str(exc) or type(exc).__name__}",
        )


def _http_failure(response: httpx.Response) -> SendResult | None:
    """The result of a response that failed at the HTTP level; None for a 2xx."""
    status = response.status_code
    if response.is_success:
        return None
    transient = status >= 500 or status in (408, 429)
    return SendResult(
        ok=False,
        transient=transient,
        status=status,
        detail=f"HTTP {status}{_excerpt(response)}",
        retry_after=_retry_after(response) if transient else None,
    )


def _platform_code(response: httpx.Response, platform: _Platform) -> tuple[int | None, str]:
    """The platform's result code and message from a JSON answer; (None, "") if there is none."""
    try:
        answer = response.json()
    except ValueError:
        return None, ""
    if not isinstance(answer, dict):
        return None, ""
    code = next((answer[key] for key in platform.code_keys if key in answer), None)
    if not isinstance(code, int) or isinstance(code, bool):
        return None, ""
    text = next((answer[key] for key in platform.message_keys if key in answer), "")
    return code, str(text)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delay-seconds or an HTTP date), if there is one."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())[:200]
    return f": {text}" if text else ""


def _webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def _markdown(message: Message, *, max_bytes: int | None = None) -> str:
    """Title, text and link as markdown; past `max_bytes` (UTF-8) the text gives way first."""
    head = f"### {message.title}\n\n"
    tail = f"\n\n[{message.url}]({message.url})" if message.url else ""
    if max_bytes is None:
        return head + message.text + tail
    room = max(max_bytes - len(head.encode()) - len(tail.encode()), 0)
    # Only an absurdly long title or link still overflows; then the end gives way too.
    return _fit_utf8(head + _fit_utf8(message.text, room) + tail, max_bytes)


def _fit_utf8(text: str, limit: int) -> str:
    """The text if it fits in `limit` UTF-8 bytes, else cut on a character and ended with …."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    ellipsis = ELLIPSIS.encode()
    if limit < len(ellipsis):
        return encoded[:limit].decode("utf-8", errors="ignore")
    # errors="ignore" drops the partial character the byte cut may leave at the end.
    return encoded[: limit - len(ellipsis)].decode("utf-8", errors="ignore") + ELLIPSIS
