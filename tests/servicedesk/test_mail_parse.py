"""Reading received mail: charsets Chinese clients send, quoted history, attachments, automatic
mail, bounces, broken input; ticket tags in subjects; outbound threaded replies."""

from __future__ import annotations

import base64
import datetime as dt
import email
import random
import subprocess
import sys
import textwrap
import urllib.parse
from email import policy

import pytest

from onestop.servicedesk.mail import (
    Attachment,
    InboundMail,
    build_reply,
    make_message_id,
    parse_mail,
    strip_quoted_history,
    subject_with_ticket,
    ticket_number_in_subject,
)


def b64(text: str, charset: str) -> str:
    return base64.b64encode(text.encode(charset)).decode("ascii")


def word(text: str, charset: str, label: str | None = None) -> str:
    """An RFC 2047 encoded-word of `text` in `charset`, labelled `label`."""
    return f"=?{label or charset}?B?{b64(text, charset)}?="


def mail(headers: str, body: bytes | str = b"", **extra: str) -> bytes:
    """A message from header lines (LF-separated, turned into CRLF) and a body."""
    lines = [line for line in textwrap.dedent(headers).strip().splitlines() if line]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in extra.items()]
    body = body.encode("utf-8") if isinstance(body, str) else body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body.replace(b"\r\n", b"\n").replace(
        b"\n", b"\r\n"
    )


BASIC = (
    "From: Zhang Wei <zw@customer.example>\n"
    "To: support@msp.example\n"
    "Subject: printer\n"
    "Date: Sun, 29 Nov 2026 10:12:00 +0800\n"
    "Message-ID: <m1@customer.example>\n"
)


def text_mail(body: str, **extra: str) -> bytes:
    return mail(BASIC + "Content-Type: text/plain; charset=utf-8", body, **extra)


def test_plain_utf8_message_with_all_headers():
    raw = mail(
        f"""
        From: {word("张伟", "utf-8")} <ZW@Customer.Example>
        To: support@msp.example, "{word("李娜", "utf-8")}" <LN@customer.example>
        Cc: =?utf-8?Q?Wang_=E7=8E=8B?= <wang@customer.example>
        Reply-To: helpdesk-replies@customer.example
        Subject: {word("打印机无法打印", "utf-8")}
         {word("（三楼）", "utf-8")}
        Date: Sun, 29 Nov 2026 10:12:00 +0800
        Message-ID: <CAF=abc123@mail.customer.example>
        In-Reply-To: <prev@msp.example>
        References: <first@msp.example>
         <prev@msp.example>
        MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: 8bit
        """,
        "三楼的打印机卡纸了。\n谢谢！\n",
    )
    parsed = parse_mail(raw)
    assert isinstance(parsed, InboundMail)
    assert parsed.message_id == "<CAF=abc123@mail.customer.example>"
    assert parsed.in_reply_to == "<prev@msp.example>"
    assert parsed.references == ["<first@msp.example>", "<prev@msp.example>"]
    assert (parsed.from_address, parsed.from_name) == ("zw@customer.example", "张伟")
    assert parsed.to == ["support@msp.example", "ln@customer.example"]
    assert parsed.cc == ["wang@customer.example"]
    assert parsed.reply_to == ["helpdesk-replies@customer.example"]
    assert parsed.subject == "打印机无法打印（三楼）"
    assert parsed.date == dt.datetime(2026, 11, 29, 2, 12, tzinfo=dt.UTC)
    assert parsed.date.utcoffset() == dt.timedelta(hours=8)
    assert parsed.body_text == "三楼的打印机卡纸了。\n谢谢！"
    assert parsed.reply_text == parsed.body_text
    assert parsed.attachments == []
    assert parsed.auto_reason == ""
    assert parsed.bounce is None
    assert parsed.problems == []


def test_gb2312_label_decodes_characters_outside_gb2312():
    # 喆 and 镕 are not in GB2312; clients still label such GBK text "gb2312".
    text = "王喆和朱镕基的电脑蓝屏了"
    for label in ("gb2312", "GB2312", "gbk", "x-gbk", "cp936", "gb_2312-80"):
        raw = mail(
            BASIC
            + f'Content-Type: text/plain; charset="{label}"\nContent-Transfer-Encoding: base64',
            b64(text, "gb18030"),
        )
        parsed = parse_mail(raw)
        assert parsed.body_text == text, label
        assert parsed.problems == [], label


def test_gbk_encoded_word_subject_and_name_split_across_words():
    subject = "打印机卡纸 请王喆处理"
    data = subject.encode("gbk")
    # Outlook cuts long subjects into several encoded-words, sometimes inside a character.
    first, second = base64.b64encode(data[:5]).decode(), base64.b64encode(data[5:]).decode()
    raw = mail(
        f"""
        From: {word("王喆", "gb18030", "GB2312")} <wz@customer.example>
        To: support@msp.example
        Subject: =?GBK?B?{first}?=
         =?GBK?B?{second}?=
        Message-ID: <gbk@customer.example>
        Content-Type: text/plain; charset=gbk
        Content-Transfer-Encoding: base64
        """,
        b64("谢谢", "gbk"),
    )
    parsed = parse_mail(raw)
    assert parsed.subject == subject
    assert parsed.from_name == "王喆"
    assert parsed.body_text == "谢谢"
    assert parsed.problems == []


def test_raw_8bit_gbk_headers_without_encoding():
    # Some Chinese clients put GBK bytes straight into headers.
    raw = (
        b"From: \xcd\xf5\xb4\xf3\xc3\xf7 <w@customer.example>\r\n"
        + "Subject: 服务器宕机\r\n".encode("gbk")
        + b"Message-ID: <raw@customer.example>\r\n"
        b"Content-Type: text/plain; charset=gbk\r\n\r\n" + "机房断电".encode("gbk")
    )
    parsed = parse_mail(raw)
    assert parsed.from_name == "王大明"
    assert parsed.subject == "服务器宕机"
    assert parsed.body_text == "机房断电"


def test_big5_body_and_subject():
    text = "列印機無法連線，請協助。碁"
    raw = mail(
        f"""
        From: chan@customer.example.hk
        Subject: {word("列印機故障", "big5")}
        Message-ID: <big5@customer.example.hk>
        Content-Type: text/plain; charset=big5
        Content-Transfer-Encoding: base64
        """,
        b64(text, "cp950"),
    )
    parsed = parse_mail(raw)
    assert parsed.subject == "列印機故障"
    assert parsed.body_text == text
    assert parsed.problems == []


QQ_REPLY = """\
好的，打印机已经可以用了，谢谢！

------------------ 原始邮件 ------------------
发件人: "OneStop 服务台"<support@msp.example>;
发送时间: 2026年11月29日(星期天) 上午10:12
收件人: "张伟"<zw@customer.example>;
主题: Re: [#12345] 打印机无法打印

您好，请重启打印机后再试。
"""

FOXMAIL_REPLY = """\
已经处理好了。
张伟

发件人：OneStop 服务台
发送时间：2026-11-29 10:12
收件人：张伟
主题：Re: [#12345] 打印机无法打印

您好，请重启打印机后再试。
"""

OUTLOOK_ZH_REPLY = """\
收到，明天上午过来。

________________________________
发件人: 张伟 <zw@customer.example>
发送时间: 2026年11月29日 10:12
收件人: support@msp.example
主题: 打印机无法打印

三楼打印机卡纸。
"""

OUTLOOK_ZH_RULE_REPLY = """\
收到，明天上午过来。

-----原始邮件-----
发件人: 张伟 <zw@customer.example>
发送时间: 2026年11月29日 10:12
"""

NETEASE_REPLY = """\
问题依旧，请再派人来看看。

在 2026-11-29 10:12:00，"OneStop 服务台" <support@msp.example> 写道：
>您好，请重启打印机后再试。
>
"""

APPLE_ZH_REPLY = """\
可以了

在 2026年11月29日，10:12，OneStop 服务台 <support@msp.example> 写道：

您好，请重启打印机后再试。
"""

GMAIL_ZH_REPLY = """\
周一上午方便。

OneStop 服务台 <support@msp.example> 于2026年11月29日周日 10:12写道：

> 请问什么时间方便上门？
"""

GMAIL_ZH_WRAPPED_REPLY = """\
周二也可以。
SN 12345

OneStop 服务台 <support@msp.example> 于2026年11月29日周日
10:12写道：

> 请问什么时间方便上门？
"""

ENGLISH_REPLY = """\
It works now, thanks.

On Sun, 29 Nov 2026 at 10:12, OneStop Service Desk <support@msp.example>
wrote:

> Please restart the printer.
>
> --
> OneStop
"""

OUTLOOK_EN_REPLY = """\
Thanks, that fixed it.

-----Original Message-----
From: OneStop Service Desk <support@msp.example>
Sent: Sunday, November 29, 2026 10:12 AM
To: Zhang Wei <zw@customer.example>
Subject: RE: [#12345] Printer

Please restart the printer.
"""

OUTLOOK_EN_BLOCK_REPLY = """\
Thanks, that fixed it.

From: OneStop Service Desk <support@msp.example>
Sent: Sunday, November 29, 2026 10:12 AM
To: Zhang Wei <zw@customer.example>
Subject: RE: [#12345] Printer

Please restart the printer.
"""

INTERLEAVED_REPLY = (
    "On Sun, 29 Nov 2026, support@msp.example wrote:\n"
    "> Which floor is the printer on?\n"
    "Third floor.\n"
    "> Which model?\n"
    "HP M404.\n"
    "\n"
    "-- \n"  # the signature separator, with its space
    "Zhang Wei\n"
    "East China Precision\n"
)


@pytest.mark.parametrize(
    ("body", "reply"),
    [
        (QQ_REPLY, "好的，打印机已经可以用了，谢谢！"),
        (FOXMAIL_REPLY, "已经处理好了。\n张伟"),
        (OUTLOOK_ZH_REPLY, "收到，明天上午过来。"),
        (OUTLOOK_ZH_RULE_REPLY, "收到，明天上午过来。"),
        (NETEASE_REPLY, "问题依旧，请再派人来看看。"),
        (APPLE_ZH_REPLY, "可以了"),
        (GMAIL_ZH_REPLY, "周一上午方便。"),
        (GMAIL_ZH_WRAPPED_REPLY, "周二也可以。\nSN 12345"),
        (ENGLISH_REPLY, "It works now, thanks."),
        (OUTLOOK_EN_REPLY, "Thanks, that fixed it."),
        (OUTLOOK_EN_BLOCK_REPLY, "Thanks, that fixed it."),
        (INTERLEAVED_REPLY, "Third floor.\nHP M404."),
    ],
    ids=[
        "qq",
        "foxmail",
        "outlook-zh",
        "outlook-zh-rule",
        "netease",
        "apple-zh",
        "gmail-zh",
        "gmail-zh-wrapped",
        "english",
        "outlook-en",
        "outlook-en-block",
        "interleaved",
    ],
)
def test_reply_text_drops_quoted_history(body, reply):
    parsed = parse_mail(text_mail(body))
    assert parsed.reply_text == reply
    assert parsed.body_text == body.strip()


def test_reply_text_keeps_prose_that_only_looks_like_headers():
    body = "请帮忙搬电脑：\nFrom: 3楼\nTo: 5楼\n发件人：财务部\n收件人：IT部"
    assert strip_quoted_history(body) == body
    # A message that is all history (a bare forward) keeps its text.
    assert strip_quoted_history("> only quoted\n> lines") == "> only quoted\n> lines"


def test_html_only_mail_becomes_readable_text():
    html = """<html><head><style>p {color: red}</style><title>T</title></head><body>
<div>您好，</div><div>打印机&nbsp;又坏了。<br>型号：HP&amp;M404</div>
<p>详情见 <a href="https://portal.example/t/1">门户</a></p>
<ul><li>一楼</li><li>二楼</li></ul>
<script>alert("x")</script>
<table><tr><td>SN</td><td>CN123</td></tr></table>
<div>OneStop 服务台 &lt;support@msp.example&gt; 于2026年11月29日 10:12写道：</div>
<blockquote>请重启打印机<br>谢谢</blockquote>
</body></html>"""
    raw = mail(BASIC + "Content-Type: text/html; charset=utf-8", html)
    parsed = parse_mail(raw)
    assert parsed.body_text.splitlines() == [
        "您好，",
        "打印机 又坏了。",
        "型号：HP&M404",
        "详情见 门户 (https://portal.example/t/1)",
        "- 一楼",
        "- 二楼",
        "SN CN123",
        "OneStop 服务台 <support@msp.example> 于2026年11月29日 10:12写道：",
        "> 请重启打印机",
        "> 谢谢",
    ]
    assert "alert" not in parsed.body_text and "color" not in parsed.body_text
    assert parsed.reply_text.splitlines()[-1] == "SN CN123"


OUTLOOK_ZH_HTML = """<html><body><div class=WordSection1>
<p class=MsoNormal>收到，明天上午过来。<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>
<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>
<p class=MsoNormal><b><span lang=ZH-CN>发件人<span lang=EN-US>:</span></span></b>
<span lang=EN-US> OneStop </span>服务台<span lang=EN-US> &lt;support@msp.example&gt; <br></span>
<b>发送时间<span lang=EN-US>:</span></b><span lang=EN-US> 2026</span>年11月29日 10:12<br>
<b>收件人:</b> 张伟<br><b>主题:</b> 打印机<o:p></o:p></p></div>
<p class=MsoNormal>您好，请重启打印机后再试。</p></div></body></html>"""

QQ_HTML = """<div>好的，谢谢</div><div><br></div>
<div style="font-size: 12px;">------------------&nbsp;原始邮件&nbsp;------------------</div>
<div style="background:#efefef;">
<div><b>发件人:</b>&nbsp;"OneStop 服务台"&lt;support@msp.example&gt;;</div>
<div><b>发送时间:</b>&nbsp;2026年11月29日(星期天) 上午10:12</div></div><div><br></div>您好"""


@pytest.mark.parametrize(
    ("html", "reply"), [(OUTLOOK_ZH_HTML, "收到，明天上午过来。"), (QQ_HTML, "好的，谢谢")]
)
def test_html_replies_drop_quoted_history(html, reply):
    parsed = parse_mail(mail(BASIC + "Content-Type: text/html; charset=utf-8", html))
    assert parsed.reply_text == reply
    assert "发送时间: 2026年11月29日" in parsed.body_text


def test_html_charset_from_meta_tag_and_outlook_blank_paragraphs():
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
        "</head><body><p class=MsoNormal>第一行</p><p class=MsoNormal>&nbsp;</p>"
        "<p class=MsoNormal>王喆</p></body></html>"
    )
    raw = mail(BASIC + "Content-Type: text/html", html.encode("gb18030"))
    assert parse_mail(raw).body_text == "第一行\n\n王喆"


def alternative(plain: str, html: str) -> bytes:
    return mail(
        BASIC + 'MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="ALT"',
        f"--ALT\nContent-Type: text/plain; charset=utf-8\n\n{plain}\n"
        f"--ALT\nContent-Type: text/html; charset=utf-8\n\n{html}\n--ALT--\n",
    )


def test_alternative_prefers_plain_text_unless_it_is_empty():
    assert parse_mail(alternative("纯文本", "<p>超文本</p>")).body_text == "纯文本"
    assert parse_mail(alternative("  \n", "<p>超文本</p>")).body_text == "超文本"


def attachments_mail() -> bytes:
    quote = urllib.parse.quote
    price_list = quote("王喆的报价单.xlsx".encode("gb18030"))
    log_name = word("日志.txt", "gbk")
    inner = mail(
        """
        From: zw@customer.example
        Subject: 原始故障单
        Message-ID: <inner@customer.example>
        """,
        "打印机卡纸",
    ).decode()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(200)).decode()
    return mail(
        BASIC + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="MIX"',
        f"""--MIX
Content-Type: multipart/related; boundary="REL"

--REL
Content-Type: multipart/alternative; boundary="ALT"

--ALT
Content-Type: text/plain; charset=utf-8

见截图和附件。
--ALT
Content-Type: text/html; charset=utf-8

<p>见截图和附件。<img src="cid:image001.png@01DA1234"></p>
--ALT--
--REL
Content-Type: image/png; name="image001.png"
Content-Transfer-Encoding: base64
Content-ID: <image001.png@01DA1234>
Content-Disposition: inline; filename="image001.png"

{png}
--REL--
--MIX
Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet
Content-Disposition: attachment; filename*=gb2312''{price_list}
Content-Transfer-Encoding: base64

{base64.b64encode(b"PK-xlsx").decode()}
--MIX
Content-Type: image/jpeg
Content-Disposition: attachment;
 filename*0*=utf-8''{quote("机房".encode())};
 filename*1*={quote("照片.jpg".encode())}
Content-Transfer-Encoding: base64

{base64.b64encode(b"JPEG").decode()}
--MIX
Content-Type: text/plain; charset=gbk; name="{log_name}"
Content-Disposition: attachment; filename="{log_name}"

log line
--MIX
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="../../etc/passwd"

root:x:0:0
--MIX
Content-Type: message/rfc822

{inner}
--MIX
Content-Type: application/pkcs7-signature; name="smime.p7s"
Content-Disposition: attachment; filename="smime.p7s"

c2lnbmF0dXJl
--MIX--
""",
    )


def test_attachments_with_chinese_filenames_and_inline_image():
    parsed = parse_mail(attachments_mail())
    assert parsed.body_text == "见截图和附件。"
    assert parsed.problems == []
    found = {a.filename: a for a in parsed.attachments}
    assert list(found) == [
        "image001.png",
        "王喆的报价单.xlsx",
        "机房照片.jpg",
        "日志.txt",
        "passwd",
        "原始故障单.eml",
    ]
    image = found["image001.png"]
    assert (image.inline, image.content_id, image.content_type) == (
        True,
        "image001.png@01DA1234",
        "image/png",
    )
    assert image.content.startswith(b"\x89PNG") and image.size == 208
    price_list = found["王喆的报价单.xlsx"]
    assert (price_list.inline, price_list.content, price_list.size) == (False, b"PK-xlsx", 7)
    assert found["机房照片.jpg"].content == b"JPEG"
    assert found["日志.txt"].content.strip() == b"log line"
    assert found["passwd"].content.strip() == b"root:x:0:0"
    forwarded = parse_mail(found["原始故障单.eml"].content)
    assert (forwarded.subject, forwarded.body_text) == ("原始故障单", "打印机卡纸")


def test_raw_8bit_gbk_filename():
    raw = mail(
        BASIC + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"',
        b"--B\nContent-Type: text/plain; charset=gbk\n\n"
        + "见附件".encode("gbk")
        + b'\n--B\nContent-Type: application/msword\nContent-Disposition: attachment; filename="'
        + "故障报告.doc".encode("gbk")
        + b'"\n\nDOC\n--B--\n',
    )
    parsed = parse_mail(raw)
    assert parsed.body_text == "见附件"
    assert [(a.filename, a.content) for a in parsed.attachments] == [("故障报告.doc", b"DOC")]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Auto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: auto-generated; type=oof", "Auto-Submitted: auto-generated"),
        ("Precedence: bulk", "Precedence: bulk"),
        ("Precedence: junk", "Precedence: junk"),
        ("Precedence: list", "Precedence: list"),
        ("Precedence: auto_reply", "Precedence: auto_reply"),
        ("X-Auto-Response-Suppress: All", "X-Auto-Response-Suppress"),
        ("X-Autoreply: yes", "X-Autoreply"),
        ("X-Autorespond: 外出", "X-Autorespond"),
        ("Return-Path: <>", "Return-Path"),
    ],
)
def test_automatic_mail_is_recognised(header, reason):
    parsed = parse_mail(text_mail("我正在休假，12月1日回来。", **dict([header.split(": ", 1)])))
    assert reason in parsed.auto_reason


def test_mail_from_people_is_not_automatic():
    raw = text_mail("请帮忙", Auto_Submitted="no", Precedence="normal", Return_Path="<zw@x.cn>")
    assert parse_mail(raw).auto_reason == ""


def test_mailer_daemon_and_our_own_message_id_are_automatic():
    daemon = mail(
        "From: MAILER-DAEMON@mx.customer.example\nSubject: failure\nMessage-ID: <d@mx>",
        "x",
    )
    assert "MAILER-DAEMON" in parse_mail(daemon).auto_reason
    ours = make_message_id(domain="desk.msp.example")
    looped = mail(f"From: support@msp.example\nSubject: x\nMessage-ID: {ours}", "x")
    assert "own domain" in parse_mail(looped, own_domain="desk.msp.example").auto_reason
    assert parse_mail(looped, own_domain="other.example").auto_reason == ""
    assert parse_mail(looped).auto_reason == ""


def dsn(returned: str) -> bytes:
    return mail(
        """
        From: Mail Delivery System <postmaster@mx.customer.example>
        To: support@msp.example
        Subject: Undelivered Mail Returned to Sender
        Message-ID: <20261129101200.ABC@mx.customer.example>
        MIME-Version: 1.0
        Content-Type: multipart/report; report-type=delivery-status; boundary="RPT"
        """,
        f"""--RPT
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

--RPT
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.customer.example
Arrival-Date: Sun, 29 Nov 2026 10:12:00 +0800

Final-Recipient: rfc822; ok@customer.example
Action: delivered
Status: 2.0.0

Final-Recipient: rfc822; Nobody@customer.example
Original-Recipient: rfc822;nobody@customer.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <nobody@customer.example>: Recipient address
    rejected: User unknown

--RPT
{returned}
--RPT--
""",
    )


@pytest.mark.parametrize("kind", ["message/rfc822", "text/rfc822-headers"])
def test_delivery_status_notification_names_our_message_and_the_failed_recipient(kind):
    returned = f"""Content-Type: {kind}

From: support@msp.example
To: nobody@customer.example
Subject: Re: [#12345] printer
Message-ID: <abc123@desk.msp.example>
"""
    if kind == "message/rfc822":
        returned += "\nbody\n"
    parsed = parse_mail(dsn(returned), own_domain="desk.msp.example")
    bounce = parsed.bounce
    assert bounce is not None
    assert bounce.original_message_id == "<abc123@desk.msp.example>"
    assert bounce.recipients == ["nobody@customer.example"]
    assert (bounce.action, bounce.status, bounce.failed) == ("failed", "5.1.1", True)
    assert "User unknown" in bounce.diagnostic
    assert parsed.auto_reason == "delivery status notification"
    assert parsed.body_text.startswith("I'm sorry")


def test_broken_boundary_is_read_as_text_with_a_problem():
    raw = mail(
        BASIC + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XYZ"',
        "--ABC\nContent-Type: text/plain\n\n服务器宕机\n--ABC--\n",
    )
    parsed = parse_mail(raw)
    assert "服务器宕机" in parsed.body_text
    assert any("boundary" in problem for problem in parsed.problems)


def test_missing_from_unknown_charset_and_bad_base64_are_problems_not_errors():
    raw = mail(
        """
        To: support@msp.example
        Subject: x
        Date: not a date
        Content-Type: text/plain; charset="x-klingon"
        """,
        "中文正文",
    )
    parsed = parse_mail(raw)
    assert parsed.from_address == "" and parsed.message_id == "" and parsed.date is None
    assert parsed.body_text == "中文正文"
    assert "no From address" in parsed.problems
    assert "no Message-ID header" in parsed.problems
    assert any("unknown charset 'x-klingon'" in p for p in parsed.problems)
    assert any("Date header" in p for p in parsed.problems)
    # A codec that is not a character set is no charset either.
    assert "unknown charset" in " ".join(
        parse_mail(text_mail("x").replace(b"charset=utf-8", b"charset=base64")).problems
    )
    bad_base64 = mail(
        BASIC + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64",
        b64("正文", "utf-8")[:-2] + "*!",
    )
    assert any("base64" in p for p in parse_mail(bad_base64).problems)


def test_text_invalid_in_its_charset_is_kept_with_a_problem():
    damaged = "正常文字".encode("gb18030") + b"\xff\xff" + "后半段".encode("gb18030")
    parsed = parse_mail(mail(BASIC + "Content-Type: text/plain; charset=gb2312", damaged))
    assert parsed.body_text == "正常文字\ufffd\ufffd后半段"
    assert any("not valid gb2312" in p for p in parsed.problems)
    # UTF-8 labelled us-ascii (a common mistake) is read as UTF-8.
    parsed = parse_mail(mail(BASIC + "Content-Type: text/plain; charset=us-ascii", "中文"))
    assert parsed.body_text == "中文"
    assert any("not valid us-ascii, decoded as utf-8" in p for p in parsed.problems)


def test_date_without_zone_is_utc():
    parsed = parse_mail(text_mail("x").replace(b"+0800", b"-0000"))
    assert parsed.date == dt.datetime(2026, 11, 29, 10, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"\x00" * 1000,
        bytes(range(256)) * 50,
        random.Random(5).randbytes(65536),
        b"From: =?utf-8?B?####?= <a@b\r\nSubject: =?x?Q?=ZZ?=\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
        b"Content-Type: text/plain; charset*=''\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=",
        b"Subject: " + b"A" * 200_000 + b"\r\n\r\nbody",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\n"
        b"Content-Type: message/delivery-status\r\n\r\n--B--\r\n",
    ],
)
def test_garbage_never_raises(raw):
    parsed = parse_mail(raw)
    assert isinstance(parsed, InboundMail)


def test_damaged_copies_of_a_real_message_never_raise():
    original = attachments_mail()
    rng = random.Random(1)
    for cut in range(0, len(original), 97):
        assert isinstance(parse_mail(original[:cut]), InboundMail)
    for _ in range(150):
        damaged = bytearray(original)
        for _ in range(20):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        assert isinstance(parse_mail(bytes(damaged)), InboundMail)


def test_deeply_nested_multiparts_are_cut_off():
    depth = 60
    body = "".join(
        f"--B{i}\nContent-Type: multipart/mixed; boundary=B{i + 1}\n\n" for i in range(depth)
    )
    body += f"--B{depth}\nContent-Type: text/plain\n\ndeep\n"
    raw = mail(BASIC + "Content-Type: multipart/mixed; boundary=B0", body)
    parsed = parse_mail(raw)
    assert any("nested too deeply" in p for p in parsed.problems)


def test_a_60_mb_message_takes_a_few_copies_of_memory():
    # Measured in a fresh interpreter: this process's peak says nothing about one parse.
    script = textwrap.dedent(
        """
        import base64, os, resource
        from onestop.servicedesk.mail import parse_mail
        raw = (
            b"From: a@b.example\\r\\nMessage-ID: <big@b.example>\\r\\nMIME-Version: 1.0\\r\\n"
            b"Content-Type: multipart/mixed; boundary=BB\\r\\n\\r\\n--BB\\r\\n"
            b"Content-Type: text/plain\\r\\n\\r\\nsee attachment\\r\\n--BB\\r\\n"
            b"Content-Type: application/octet-stream; name=big.bin\\r\\n"
            b"Content-Transfer-Encoding: base64\\r\\n\\r\\n"
            + base64.encodebytes(os.urandom(45 * 2**20)).replace(b"\\n", b"\\r\\n")
            + b"--BB--\\r\\n"
        )
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        parsed = parse_mail(raw)
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(len(raw), growth * 1024, parsed.attachments[0].size, len(parsed.problems))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    size, growth, attachment_size, problems = map(int, result.stdout.split())
    assert size > 60 * 10**6
    assert attachment_size == 45 * 2**20 and problems == 0
    assert growth < 6 * size, f"parsing took {growth / size:.1f} times the message size"


@pytest.mark.parametrize(
    ("subject", "number"),
    [
        ("Re: [#12345] 打印机无法打印", 12345),
        ("回复：［#12345］打印机", 12345),
        ("答复: 打印机 [#7]", 7),
        ("[ # 42 ] spaced", 42),
        ("打印机 #12345", None),
        ("[12345]", None),
        ("", None),
    ],
)
def test_ticket_number_in_subject(subject, number):
    assert ticket_number_in_subject(subject) == number


@pytest.mark.parametrize(
    ("subject", "tagged"),
    [
        ("Printer", "[#12] Printer"),
        ("Re: Printer", "Re: [#12] Printer"),
        ("RE: Fwd: Printer", "RE: Fwd: [#12] Printer"),
        ("回复：打印机", "回复： [#12] 打印机"),
        ("Re: [#12] Printer", "Re: [#12] Printer"),
        ("Re: Printer ［#12］", "Re: Printer ［#12］"),
        ("Re: [#99] Printer", "Re: [#12] Printer"),
        ("", "[#12]"),
    ],
)
def test_subject_with_ticket_adds_the_tag_once(subject, tagged):
    assert subject_with_ticket(subject, 12) == tagged
    assert subject_with_ticket(tagged, 12) == tagged


def test_make_message_id():
    first, second = (
        make_message_id(domain="Desk.MSP.example"),
        make_message_id(domain="desk.msp.example"),
    )
    assert first != second
    assert first.startswith("<") and first.endswith("@desk.msp.example>")
    assert make_message_id(domain="服务台.中国").endswith("@xn--zfr63am33b.xn--fiqs8s>")
    for bad in ("", "a b", "x@y", "<x>"):
        with pytest.raises(ValueError, match="not a domain name"):
            make_message_id(domain=bad)


def test_build_reply_threads_under_the_customer_message():
    long_parent = "<" + "CAF" + "x" * 90 + "@mail.gmail.com>"
    message_id = make_message_id(domain="desk.msp.example")
    reply = build_reply(
        from_address="OneStop 服务台 <support@msp.example>",
        to=["张伟 <zw@customer.example>"],
        cc=["ln@customer.example"],
        subject="Re: 打印机无法打印",
        text="您好，工程师明天上午上门。\n\nOneStop 服务台",
        ticket_id=12345,
        message_id=message_id,
        in_reply_to=long_parent,
        references=["<first@customer.example>", "<second@msp.example>"],
    )
    raw = reply.as_bytes()
    assert f"In-Reply-To: {long_parent}\r\n".encode() in raw  # not folded or encoded
    sent = email.message_from_bytes(raw, policy=policy.default)
    assert sent["Message-ID"] == message_id
    assert sent["Subject"] == "Re: [#12345] 打印机无法打印"
    assert sent["To"] == "张伟 <zw@customer.example>"
    assert sent["Cc"] == "ln@customer.example"
    assert sent["References"].split() == [
        "<first@customer.example>",
        "<second@msp.example>",
        long_parent,
    ]
    assert sent["Auto-Submitted"] is None
    assert sent.get_content_charset() == "utf-8"
    assert sent.get_content().splitlines() == ["您好，工程师明天上午上门。", "", "OneStop 服务台"]
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert all(byte < 128 for byte in raw)  # no raw 8-bit for old relays
    # What the customer's reply to it looks like to us: threaded, tagged, not a loop.
    parsed = parse_mail(raw, own_domain="desk.msp.example")
    assert parsed.references[-1] == long_parent == parsed.in_reply_to
    assert ticket_number_in_subject(parsed.subject) == 12345
    assert "own domain" in parsed.auto_reason


def test_build_reply_automatic_flag_attachments_and_limits():
    chain = [f"<ref{i}@customer.example>" for i in range(30)]
    reply = build_reply(
        from_address="support@msp.example",
        to=["zw@customer.example"],
        cc=[],
        subject="[#7] 打印机",
        text="我们已收到您的请求。",
        ticket_id=7,
        message_id="<ack@desk.msp.example>",
        in_reply_to="<ref29@customer.example>\r\nBcc: victim@example.com",
        references=chain,
        attachments=[
            Attachment(filename="维修报告.pdf", content_type="application/pdf", content=b"%PDF-1"),
            Attachment(
                filename="logo.png",
                content_type="image/png",
                content=b"\x89PNG",
                inline=True,
                content_id="logo@msp",
            ),
        ],
        automatic=True,
    )
    raw = reply.as_bytes()
    assert b"victim" not in raw
    sent = email.message_from_bytes(raw, policy=policy.default)
    assert sent["Subject"] == "[#7] 打印机"
    assert sent["Auto-Submitted"] == "auto-replied"
    assert sent["In-Reply-To"] == "<ref29@customer.example>"
    references = sent["References"].split()
    assert len(references) == 20
    assert references[0] == "<ref0@customer.example>" and references[-1] == chain[-1]
    parsed = parse_mail(raw)
    assert parsed.auto_reason == "Auto-Submitted: auto-replied"
    assert parsed.body_text == "我们已收到您的请求。"
    assert [(a.filename, a.content, a.inline, a.content_id) for a in parsed.attachments] == [
        ("维修报告.pdf", b"%PDF-1", False, ""),
        ("logo.png", b"\x89PNG", True, "logo@msp"),
    ]
    # Line breaks cannot smuggle in headers: a subject is flattened, an address refused.
    flattened = build_reply(
        from_address="support@msp.example",
        to=["zw@customer.example"],
        subject="x\r\nBcc: victim@example.com",
        text="x",
        ticket_id=7,
        message_id="<x@desk.msp.example>",
        in_reply_to=None,
        references=[],
    )
    assert flattened["Subject"] == "[#7] x Bcc: victim@example.com"
    assert flattened["Bcc"] is None
    with pytest.raises(ValueError):
        build_reply(
            from_address="support@msp.example",
            to=["zw@customer.example\r\nBcc: victim@example.com"],
            subject="x",
            text="x",
            ticket_id=7,
            message_id="<x@desk.msp.example>",
            in_reply_to=None,
            references=[],
        )
