"""Email to ticket, below the models: one raw message read into `InboundMail` (`parse_mail`),
our ticket tag in subjects (`ticket_number_in_subject`, `subject_with_ticket`), and outbound
replies that thread in the customer's mail client (`make_message_id`, `build_reply`).

`parse_mail` never raises: whatever it cannot decode it records in `InboundMail.problems`, so
the poller can always file (or knowingly skip) a message instead of retrying it forever.
"""

from __future__ import annotations

import binascii
import codecs
import datetime as dt
import email
import email.errors
import email.utils
import functools
import mimetypes
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from html.parser import HTMLParser
from typing import TypeVar

_T = TypeVar("_T")


@dataclass(frozen=True)
class Attachment:
    """One attached file or inline image; also what `build_reply` attaches."""

    filename: str
    content_type: str
    content: bytes = field(repr=False)
    inline: bool = False
    content_id: str = ""  # without the angle brackets: what an HTML body's "cid:" names

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class Bounce:
    """A delivery status notification (RFC 3464) about one of our messages."""

    original_message_id: str  # "<id@domain>" of the message that was not delivered, or ""
    recipients: list[str]  # the failed ones; when none failed, the delayed ones
    action: str  # "failed", "delayed", or a success report: "delivered", "relayed", "expanded"
    status: str  # e.g. "5.1.1"
    diagnostic: str  # the remote server's words, e.g. "550 5.1.1 User unknown"

    @property
    def failed(self) -> bool:
        return self.action == "failed"


@dataclass(frozen=True)
class InboundMail:
    """One received message. Addresses are lower-cased; message ids keep their angle brackets;
    a missing header gives "" (or [] or None). Texts hold no NUL characters and no undecoded
    bytes, so any database column takes them.

    A new ticket takes `body_text`; an entry on an existing ticket takes `reply_text`, which
    is `body_text` without the quoted history and the signature.
    """

    message_id: str
    in_reply_to: str
    references: list[str]
    from_address: str
    from_name: str
    to: list[str]
    cc: list[str]
    reply_to: list[str]
    subject: str
    date: dt.datetime | None
    body_text: str
    reply_text: str
    attachments: list[Attachment]
    auto_reason: str  # "" when a person wrote it, else why it is automatic
    bounce: Bounce | None
    problems: list[str]


# Senders label GBK text "gb2312" and still use characters outside GB2312 (喆, 镕), which a
# strict GB2312 decoder drops; GB18030 is a superset of all of them.
_CHARSET_ALIASES = dict.fromkeys(
    (
        "gb2312",
        "gb_2312",
        "gb_2312-80",
        "csgb2312",
        "euc-cn",
        "x-euc-cn",
        "chinese",
        "gbk",
        "x-gbk",
        "cp936",
        "ms936",
        "windows-936",
        "gb18030",
    ),
    "gb18030",
)
# Big5 mail from Hong Kong uses HKSCS characters; big5hkscs is a superset of plain Big5.
_CHARSET_ALIASES.update(dict.fromkeys(("big5", "x-big5", "cn-big5", "csbig5"), "big5hkscs"))
# Codecs that are not character sets: a label naming them is a trick or a mistake.
_NOT_CHARSETS = frozenset({"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"})


def _guess(data: bytes) -> tuple[str, str]:
    for codec in ("utf-8", "gb18030"):
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1", errors="replace"), "latin-1"


def _decode(data: bytes, label: str | None, problems: list[str], what: str) -> str:
    """`data` as text in the charset `label` names. A missing or unknown label is guessed
    around (UTF-8, GB18030, Latin-1); text invalid in its charset is read as UTF-8 when it is
    that, else with the bad bytes replaced. Either way `problems` says so."""
    return _storable(_decode_any(data, label, problems, what))


def _storable(text: str) -> str:
    """`text` without what no database column takes: NUL characters (PostgreSQL refuses
    them) and lone surrogates (the parser's stand-ins for undecoded bytes)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _decode_any(data: bytes, label: str | None, problems: list[str], what: str) -> str:
    label = (label or "").strip().strip("\"'").lower()
    codec = _CHARSET_ALIASES.get(label, label) or "utf-8"
    try:
        if codecs.lookup(codec).name in _NOT_CHARSETS:
            raise LookupError(codec)
        return data.decode(codec)
    except UnicodeError:  # before ValueError, its base class
        known = True
    except (LookupError, ValueError):  # ValueError: a NUL in the label
        known = False
    if not label:
        text, used = _guess(data)
        problems.append(f"{what}: no charset given, decoded as {used}")
    elif not known:
        text, used = _guess(data)
        problems.append(f"{what}: unknown charset {label!r}, decoded as {used}")
    else:
        try:
            text, used = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, used = data.decode(codec, errors="replace"), "it with bad bytes replaced"
        problems.append(f"{what}: text is not valid {label}, decoded as {used}")
    return text


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _word_bytes(encoding: str, text: str, problems: list[str], what: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    if encoding in "qQ":
        return binascii.a2b_qp(data, header=True)
    # Senders drop the padding or leave stray characters; repair what base64 allows.
    data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    if len(data) % 4 == 1:
        problems.append(f"{what}: a base64 encoded-word was cut short")
        data = data[:-1]
    return binascii.a2b_base64(data + b"=" * (-len(data) % 4))


def _header_text(value: str | None, problems: list[str], what: str) -> str:
    """A raw header value as text: unfolded, raw 8-bit bytes and RFC 2047 encoded-words decoded."""
    if not value:
        return ""
    value = re.sub(r"\r?\n(?=[ \t])", "", value)
    if re.search(r"[\udc80-\udcff]", value):
        # Raw 8-bit header (common from Chinese clients): the parser kept the bytes as surrogates.
        value = _decode(value.encode("utf-8", "surrogateescape"), None, problems, what)
    # Adjacent encoded-words of one charset are joined before decoding: senders split a
    # multi-byte character across two of them. Pieces: (charset, bytes) or ("", text).
    pieces: list[tuple[str, bytes | str]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        after_word = bool(pieces) and isinstance(pieces[-1][1], bytes)
        if between and not (between.isspace() and after_word):
            pieces.append(("", between))
        charset = match.group(1).split("*", 1)[0].lower()  # RFC 2231 adds "*language"
        data = _word_bytes(match.group(2), match.group(3), problems, what)
        last_charset, last = pieces[-1] if pieces else ("", "")
        if isinstance(last, bytes) and last_charset == charset:
            pieces[-1] = (charset, last + data)
        else:
            pieces.append((charset, data))
        position = match.end()
    pieces.append(("", value[position:]))
    text = "".join(
        piece if isinstance(piece, str) else _decode(piece, charset, problems, what)
        for charset, piece in pieces
    )
    return _storable(text).strip()


def _raw_headers(msg: Message, name: str) -> list[str]:
    # raw_items keeps 8-bit bytes as surrogates; compat32's get() would wrap them in Header.
    name = name.lower()
    return [str(value) for key, value in msg.raw_items() if key.lower() == name]


def _raw_header(msg: Message, name: str) -> str | None:
    values = _raw_headers(msg, name)
    return values[0] if values else None


_MSG_ID = re.compile(r"<[^<>\s]+>")


def _message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    value = _storable(value)
    ids = _MSG_ID.findall(value)
    if not ids and value.strip() and not re.search(r"\s", value.strip()):
        ids = [f"<{value.strip()}>"]  # some senders leave out the brackets
    return ids


def _addresses(msg: Message, name: str, problems: list[str]) -> list[tuple[str, str]]:
    values = []
    for value in _raw_headers(msg, name):
        value = re.sub(r"\r?\n(?=[ \t])", "", value)
        if re.search(r"[\udc80-\udcff]", value):  # raw 8-bit names or (SMTPUTF8) addresses
            value = _decode(value.encode("utf-8", "surrogateescape"), None, problems, name)
        values.append(value)
    # Addresses are split before encoded-words are decoded: a decoded name may hold commas.
    return [
        (_header_text(display, problems, f"{name} header"), address.strip().lower())
        for display, address in email.utils.getaddresses(values)
        if "@" in address
    ]


def _date(value: str | None, problems: list[str]) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (ValueError, TypeError, IndexError, OverflowError):
        problems.append(f"Date header could not be read: {value.strip()[:100]!r}")
        return None
    # "-0000" means the zone is unknown; UTC is as good a guess as any and keeps it aware.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _attempt(problems: list[str], what: str, read: Callable[[], _T], default: _T) -> _T:
    """`read()`, or `default` with a problem noted: one unreadable piece must not lose the mail."""
    try:
        return read()
    except Exception as exc:
        problems.append(f"{what} could not be read: {type(exc).__name__}: {exc}")
        return default


class _HtmlText(HTMLParser):
    """Readable text of an HTML body: one line per block, blockquotes quoted with "> "."""

    _BLOCKS = frozenset(
        {
            *("address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset"),
            *("figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6"),
            *("header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table"),
            *("tbody", "tfoot", "thead", "tr", "ul"),
        }
    )
    _HIDDEN = frozenset({"head", "script", "style", "template", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._quote = 0
        self._hidden = 0
        self._pre = 0
        self._links: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag == "br":
            self._end_line(keep_empty=True)
        elif tag in self._BLOCKS:
            self._end_line()
            if tag == "blockquote":
                self._quote += 1
            elif tag == "pre":
                self._pre += 1
            elif tag == "li":
                self._line.append("- ")
        elif tag in ("td", "th"):
            self._line.append(" ")
        elif tag == "a":
            self._links.append((dict(attrs).get("href") or "", len(self._line)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            # An empty paragraph is how Outlook writes a blank line.
            self._end_line(keep_empty=tag == "p")
            if tag == "blockquote":
                self._quote = max(0, self._quote - 1)
            elif tag == "pre":
                self._pre = max(0, self._pre - 1)
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            label = "".join(self._line[start:])
            if href.startswith(("http://", "https://")) and href not in label:
                self._line.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._pre:
            first, *rest = data.split("\n")
            self._line.append(first)
            for line in rest:
                self._end_line(keep_empty=True)
                self._line.append(line)
        else:
            self._line.append(re.sub(r"\s+", " ", data))

    def _end_line(self, *, keep_empty: bool = False) -> None:
        text = "".join(self._line).strip()
        self._line = []
        if text or keep_empty:
            self.lines.append(("> " * self._quote + text).rstrip())

    def text(self) -> str:
        self._end_line()
        return re.sub(r"\n{3,}", "\n\n", "\n".join(self.lines)).strip()


def html_to_text(markup: str) -> str:
    """Readable plain text of an HTML mail body (quoted parts prefixed with "> ")."""
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return parser.text()


_HISTORY_RULE = re.compile(
    r"^\s*[-_=]{2,}\s*(original message|original|原始邮件|原始邮件信息|原邮件|回复的原邮件)"
    r"\s*[-_=]{2,}\s*$",
    re.IGNORECASE,
)
_FROM_FIELD = re.compile(r"^\s*\*?(from|发件人)\*?\s*[:：]", re.IGNORECASE)
_DATE_FIELD = re.compile(r"^\s*\*?(sent|date|发送时间|时间|日期)\*?\s*[:：]", re.IGNORECASE)
_ENGLISH_ATTRIBUTION = re.compile(r"^\s*On\s.{0,300}\bwrote:\s*$", re.DOTALL)
_CHINESE_ATTRIBUTION = re.compile(r"^.{0,300}\d.{0,300}[写寫]道\s*[:：]\s*$", re.DOTALL)
_CHINESE_ATTRIBUTION_START = re.compile(r"^在|<[^<>\s]+@[^<>\s]+>|于\s*\d")


def _is_header_block(lines: list[str], index: int) -> bool:
    # "From:" alone is too common in prose; Outlook's block has a date field right below it.
    return bool(_FROM_FIELD.match(lines[index])) and any(
        _DATE_FIELD.match(line) for line in lines[index + 1 : index + 5]
    )


def _attribution_length(lines: list[str], index: int) -> int:
    """How many lines (0, 1 or 2: clients wrap it) the "On ... wrote:" line at `index` spans."""
    first = lines[index].strip()
    for length in (1, 2):
        text = " ".join(line.strip() for line in lines[index : index + length])
        if _ENGLISH_ATTRIBUTION.match(text):
            return length
        # A wrapped Chinese one must start like one, not merely precede one.
        if _CHINESE_ATTRIBUTION.match(text) and (
            length == 1 or _CHINESE_ATTRIBUTION_START.search(first)
        ):
            return length
    return 0


def strip_quoted_history(text: str) -> str:
    """What the sender wrote in `text`: without quoted ("> ") lines, the history below an
    "On ... wrote:" / "在 ... 写道：" line, Outlook's and Chinese clients' "Original Message" /
    "原始邮件" rule and "From:/Sent:" / "发件人:/发送时间:" block, and the "-- " signature.
    Answers written between quoted lines stay; a text that is all history is kept whole."""
    lines = text.split("\n")
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.rstrip() == "--":
            break
        if _HISTORY_RULE.match(line) or _is_header_block(lines, index):
            # Outlook draws a rule of underscores above its header block.
            while kept and set(kept[-1].strip()) <= {"_", "-"}:
                kept.pop()
            break
        attribution = _attribution_length(lines, index)
        if attribution:
            following = next((rest for rest in lines[index + attribution :] if rest.strip()), "")
            if not following.lstrip().startswith(">"):
                break  # the history follows unquoted: cut it all
            index += attribution
            continue
        if not line.lstrip().startswith(">"):
            kept.append(line)
        index += 1
    return "\n".join(kept).strip() or text.strip()


_DEFECT_TEXTS: dict[type[email.errors.MessageDefect], str] = {
    email.errors.StartBoundaryNotFoundDefect: "multipart boundary not found; body read as text",
    email.errors.CloseBoundaryNotFoundDefect: "multipart end boundary missing; may be truncated",
    email.errors.NoBoundaryInMultipartDefect: "multipart without a boundary; body read as text",
    email.errors.MissingHeaderBodySeparatorDefect: "malformed header line; the rest read as body",
    email.errors.FirstHeaderLineIsContinuationDefect: "first header line is a continuation",
    email.errors.MisplacedEnvelopeHeaderDefect: "misplaced envelope header line",
    email.errors.InvalidBase64PaddingDefect: "base64 content with wrong padding",
    email.errors.InvalidBase64CharactersDefect: "base64 content with invalid characters",
    email.errors.InvalidBase64LengthDefect: "base64 content of invalid length; last bytes lost",
    email.errors.InvalidMultipartContentTransferEncodingDefect: (
        "multipart with a content transfer encoding other than 7bit/8bit/binary"
    ),
}
_BODY_TYPES = ("text/plain", "text/html")
# Signatures of signed mail mean nothing to a ticket and only clutter its attachments.
_SIGNATURE_TYPES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
)
_MAX_DEPTH = 30


@dataclass
class _Body:
    problems: list[str]
    texts: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)


def _param(part: Message, param: str, header: str, problems: list[str]) -> str | tuple | None:
    """A header parameter as `Message.get_param` gives it, raw 8-bit bytes decoded first:
    compat32 would turn them (GBK filenames from some clients) into U+FFFD."""
    raw = _raw_header(part, header)
    if raw is not None and re.search(r"[\udc80-\udcff]", raw):
        decoded = Message()
        decoded[header] = _decode(raw.encode("utf-8", "surrogateescape"), None, problems, header)
        part = decoded
    return part.get_param(param, header=header)


def _filename(part: Message, problems: list[str]) -> str:
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        value = _param(part, param, header, problems)
        if isinstance(value, tuple):
            # RFC 2231: (charset, language, the percent-decoded bytes as Latin-1 text)
            charset, _language, text = value
            try:
                data = text.encode("latin-1", "surrogateescape")
            except UnicodeEncodeError:  # raw 8-bit text among the percent-escapes
                data = text.encode("utf-8", "surrogateescape")
            name = _decode(data, charset, problems, f"attachment {param}")
        elif value:
            name = _header_text(value, problems, f"attachment {param}")
        else:
            continue
        # Only the last path component: a name like "../../x" or "C:\\x" must not steer storage.
        name = re.split(r"[/\\]", name)[-1]
        name = "".join(char for char in name if char.isprintable()).strip().lstrip(".")
        if name:
            return name
    return ""


def _part_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _part_text(part: Message, problems: list[str]) -> str:
    data = _part_bytes(part)
    charset = part.get_content_charset()
    ctype = part.get_content_type()
    if charset is None and ctype == "text/html":
        declared = re.search(rb"<meta[^>]+charset=[\"']?([-\w:.]+)", data[:4096], re.IGNORECASE)
        charset = declared.group(1).decode("ascii") if declared else None
    text = _decode(data, charset, problems, f"{ctype} part")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _add_attachment(part: Message, body: _Body, content: bytes, filename: str) -> None:
    ctype = part.get_content_type()
    if not filename:
        extension = mimetypes.guess_extension(ctype) or ".bin"
        filename = f"attachment-{len(body.attachments) + 1}{extension}"
    content_id = _storable(_raw_header(part, "Content-ID") or "").strip().strip("<>").strip()
    disposition = part.get_content_disposition()
    body.attachments.append(
        Attachment(
            filename=filename,
            content_type=ctype,
            content=content,
            inline=disposition == "inline" or (disposition is None and bool(content_id)),
            content_id=content_id,
        )
    )


def _walk(part: Message, body: _Body, *, want_text: bool, depth: int) -> None:
    if depth > _MAX_DEPTH:
        body.problems.append("MIME parts nested too deeply; the innermost were skipped")
        return
    ctype = part.get_content_type()
    payload = part.get_payload()
    if ctype in ("message/rfc822", "message/global") and isinstance(payload, list) and payload:
        _attempt(body.problems, f"attached {ctype}", lambda: _add_message(part, body), None)
    elif ctype == "message/delivery-status":
        return  # read by _bounce
    elif isinstance(payload, list):
        if ctype == "multipart/alternative":
            _walk_alternative(payload, body, want_text=want_text, depth=depth + 1)
        else:
            for child in payload:
                _walk(child, body, want_text=want_text, depth=depth + 1)
    else:
        # One unreadable part must not cost the others.
        read = functools.partial(_walk_leaf, part, body, want_text=want_text)
        _attempt(body.problems, f"{ctype} part", read, None)


def _add_message(part: Message, body: _Body) -> None:
    """An attached (forwarded) message, as an .eml file named after its subject."""
    inner = part.get_payload(0)
    subject = _header_text(_raw_header(inner, "Subject"), body.problems, "attached Subject")
    subject = re.sub(r'[/\\:*?"<>|]', "_", subject)
    filename = _filename(part, body.problems) or f"{subject or 'message'}.eml"
    _add_attachment(part, body, inner.as_bytes(), filename)


def _is_body_text(part: Message) -> bool:
    return (
        part.get_content_type() in _BODY_TYPES
        and part.get_content_disposition() != "attachment"
        and not part.get_param("filename", header="content-disposition")
        and not part.get_param("name")
    )


def _walk_alternative(children: list[Message], body: _Body, *, want_text: bool, depth: int) -> None:
    # Plain text is preferred, unless it is empty ("view this mail in HTML"); the richest of
    # the rest (last, RFC 2046) gives the text otherwise, and its inline images are kept anyway.
    plain = next(
        (c for c in children if c.get_content_type() == "text/plain" and _is_body_text(c)), None
    )
    start = len(body.texts)
    if plain is not None:
        _walk(plain, body, want_text=want_text, depth=depth)
    use_plain = any(text.strip() for text in body.texts[start:])
    if not use_plain:
        del body.texts[start:]
    others = [child for child in children if child is not plain]
    richest = next(
        (c for c in reversed(others) if c.get_content_type() == "text/html" or c.is_multipart()),
        others[-1] if others else None,
    )
    for child in others:
        _walk(child, body, want_text=want_text and not use_plain and child is richest, depth=depth)


def _walk_leaf(part: Message, body: _Body, *, want_text: bool) -> None:
    ctype = part.get_content_type()
    if ctype in _SIGNATURE_TYPES:
        return
    # A multipart whose boundary is missing arrives as one text: it is the body all the same.
    if _is_body_text(part) or part.get_content_maintype() == "multipart":
        if want_text:
            text = _part_text(part, body.problems)
            body.texts.append(html_to_text(text) if ctype == "text/html" else text)
        return
    _add_attachment(part, body, _part_bytes(part), _filename(part, body.problems))


def _defects(msg: Message) -> list[str]:
    found = []
    for part in msg.walk():
        for defect in part.defects:
            text = _DEFECT_TEXTS.get(type(defect), f"{type(defect).__name__}: {defect}")
            found.append(f"{part.get_content_type()} part: {text}")
    return list(dict.fromkeys(found))


def _report_type(msg: Message, problems: list[str]) -> str:
    if msg.get_content_type() != "multipart/report":
        return ""
    value = _param(msg, "report-type", "content-type", problems)
    return str(value[2] if isinstance(value, tuple) else value or "").strip().lower()


def _dsn_field(block: Message, name: str, problems: list[str]) -> str:
    """A delivery-status field without its type: "rfc822; a@b.example" gives "a@b.example"."""
    value = _header_text(_raw_header(block, name), problems, f"delivery-status {name}")
    return " ".join(value.split(";", 1)[-1].split())


def _bounce(msg: Message, problems: list[str]) -> Bounce | None:
    if _report_type(msg, problems) != "delivery-status":
        return None
    parts = msg.get_payload()
    parts = parts if isinstance(parts, list) else []
    status = next((p for p in parts if p.get_content_type() == "message/delivery-status"), None)
    blocks = status.get_payload() if status is not None else None
    if not isinstance(blocks, list) or not blocks:
        problems.append("delivery report without a readable delivery-status part")
        return None
    per_message, *recipients = blocks
    reports = [
        (
            _dsn_field(block, "Action", problems).lower(),
            (
                _dsn_field(block, "Final-Recipient", problems)
                or _dsn_field(block, "Original-Recipient", problems)
            )
            .strip("<>")
            .lower(),
            _dsn_field(block, "Status", problems).split(" ")[0],
            _dsn_field(block, "Diagnostic-Code", problems),
        )
        for block in recipients
    ]
    chosen = (
        [report for report in reports if report[0] == "failed"]
        or [report for report in reports if report[0] == "delayed"]
        or reports
    )
    # Our message's id: from its returned copy or headers, else a field some servers add.
    returned = []
    for part in parts:
        inner = part.get_payload()
        if part.get_content_type() in ("message/rfc822", "message/global") and isinstance(
            inner, list
        ):
            returned.extend(inner[:1])
        elif part.get_content_type() == "text/rfc822-headers":
            returned.append(HeaderParser().parsestr(_part_text(part, problems)))
    candidates = [_raw_header(headers, "Message-ID") for headers in returned]
    candidates += [_raw_header(m, "Original-Message-ID") for m in (per_message, msg)]
    original = next((ids[0] for c in candidates if (ids := _message_ids(c))), "")
    action, _, code, diagnostic = chosen[0] if chosen else ("", "", "", "")
    return Bounce(
        original_message_id=original,
        recipients=[report[1] for report in chosen if report[1]],
        action=action,
        status=code,
        diagnostic=diagnostic,
    )


_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})


def _auto_reason(msg: Message, *, message_id: str, from_address: str, own_domain: str) -> str:
    if own_domain and message_id.lower().endswith(f"@{own_domain.strip().lower()}>"):
        return "Message-ID from our own domain (a mail loop)"
    submitted = (_raw_header(msg, "Auto-Submitted") or "").split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    precedence = (_raw_header(msg, "Precedence") or "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in ("X-Auto-Response-Suppress", "X-Autoreply", "X-Autorespond"):
        if _raw_header(msg, name) is not None:
            return f"{name} header present"
    return_path = _raw_header(msg, "Return-Path")
    if return_path is not None and re.sub(r"\s", "", return_path) == "<>":
        return "empty Return-Path (a bounce or notification)"
    if from_address.split("@")[0] == "mailer-daemon":
        return "sent by MAILER-DAEMON"
    return {
        "delivery-status": "delivery status notification",
        "disposition-notification": "read receipt",
    }.get(_report_type(msg, []), "")


@dataclass
class _Headers:
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    from_name: str = ""
    from_address: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    subject: str = ""
    date: dt.datetime | None = None


def _headers(msg: Message, problems: list[str]) -> _Headers:
    message_ids = _message_ids(_raw_header(msg, "Message-ID"))
    if not message_ids:
        problems.append("no Message-ID header")
    senders = _addresses(msg, "From", problems)
    if not senders:
        problems.append("no From address")
    from_name, from_address = senders[0] if senders else ("", "")
    subject = _header_text(_raw_header(msg, "Subject"), problems, "Subject header")
    return _Headers(
        message_id=message_ids[0] if message_ids else "",
        in_reply_to=next(iter(_message_ids(_raw_header(msg, "In-Reply-To"))), ""),
        references=_message_ids(" ".join(_raw_headers(msg, "References"))),
        from_name=from_name,
        from_address=from_address,
        to=[address for _, address in _addresses(msg, "To", problems)],
        cc=[address for _, address in _addresses(msg, "Cc", problems)],
        reply_to=[address for _, address in _addresses(msg, "Reply-To", problems)],
        subject=" ".join(subject.split()),
        date=_date(_raw_header(msg, "Date"), problems),
    )


def parse_mail(raw: bytes, *, own_domain: str = "") -> InboundMail:
    """`raw` (one RFC 5322 message) read into an `InboundMail`. Never raises: what cannot be
    decoded is guessed around or left empty, and said in `problems`. `own_domain` is the
    domain of our Message-IDs (`make_message_id`): a message carrying one is our own coming
    back, and `auto_reason` says so."""
    problems: list[str] = []
    body = _Body(problems)
    try:
        # compat32 is the most lenient parser and keeps raw 8-bit header bytes for us to decode.
        msg = email.message_from_bytes(raw, policy=policy.compat32)
    except Exception as exc:
        problems.append(f"message could not be parsed: {type(exc).__name__}: {exc}")
        msg = Message()
    headers = _attempt(problems, "headers", lambda: _headers(msg, problems), _Headers())
    _attempt(problems, "body", lambda: _walk(msg, body, want_text=True, depth=0), None)
    problems.extend(_attempt(problems, "MIME structure", lambda: _defects(msg), []))
    body_text = "\n\n".join(text.strip("\n") for text in body.texts if text.strip())
    auto_reason = _attempt(
        problems,
        "automatic-mail headers",
        lambda: _auto_reason(
            msg,
            message_id=headers.message_id,
            from_address=headers.from_address,
            own_domain=own_domain,
        ),
        "",
    )
    return InboundMail(
        message_id=headers.message_id,
        in_reply_to=headers.in_reply_to,
        references=headers.references,
        from_address=headers.from_address,
        from_name=headers.from_name,
        to=headers.to,
        cc=headers.cc,
        reply_to=headers.reply_to,
        subject=headers.subject,
        date=headers.date,
        body_text=body_text,
        reply_text=_attempt(problems, "reply", lambda: strip_quoted_history(body_text), body_text),
        attachments=body.attachments,
        auto_reason=auto_reason,
        bounce=_attempt(problems, "delivery report", lambda: _bounce(msg, problems), None),
        problems=problems,
    )


_TICKET_TAG = re.compile(r"[\[［]\s*[#＃]\s*(\d{1,12})\s*[\]］]")
_REPLY_PREFIXES = re.compile(
    r"^(\s*(re|fw|fwd|aw|sv|回复|答复|回覆|转发|轉寄)\s*[:：]\s*)+", re.IGNORECASE
)


def ticket_number_in_subject(subject: str) -> int | None:
    """The ticket number of our tag "[#12345]" (or full-width "［#12345］") in `subject`."""
    match = _TICKET_TAG.search(subject)
    return int(match.group(1)) if match else None


def subject_with_ticket(subject: str, ticket_id: int) -> str:
    """`subject` tagged once with `ticket_id` after its reply prefixes: "Re: Printer" becomes
    "Re: [#12] Printer"; a tag of another ticket is replaced."""
    subject = " ".join(subject.split())
    if ticket_number_in_subject(subject) == ticket_id:
        return subject
    subject = " ".join(_TICKET_TAG.sub(" ", subject).split())
    prefixes = _REPLY_PREFIXES.match(subject)
    prefix = prefixes.group(0) if prefixes else ""
    parts = (prefix.strip(), f"[#{ticket_id}]", subject[len(prefix) :].strip())
    return " ".join(part for part in parts if part)


def make_message_id(*, domain: str) -> str:
    """A new unique Message-ID "<random@domain>" for a message we send; `domain` is the one
    `parse_mail(own_domain=...)` recognises when such a message comes back."""
    try:
        ascii_domain = domain.strip().lower().encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"not a domain name: {domain!r}") from exc
    if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", ascii_domain):
        raise ValueError(f"not a domain name: {domain!r}")
    return f"<{uuid.uuid4().hex}@{ascii_domain}>"


# Text goes out as base64 or quoted-printable ("7bit" transport), never as raw 8-bit that an
# old relay may mangle; "none" keeps the pre-folded threading headers exactly as written.
_OUTBOUND = policy.SMTP.clone(cte_type="7bit", refold_source="none")
# Long threads keep the first message and the latest ones, as mail clients do.
_MAX_REFERENCES = 20


def build_reply(
    *,
    from_address: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    subject: str,
    text: str,
    ticket_id: int,
    message_id: str,
    in_reply_to: str | None,
    references: Sequence[str],
    attachments: Sequence[Attachment] = (),
    automatic: bool = False,
) -> EmailMessage:
    """An outbound UTF-8 message on ticket `ticket_id`, threaded under `in_reply_to`.

    Addresses may carry display names ("服务台 <support@example.com>"). `subject` gets the
    ticket tag (`subject_with_ticket`); add "Re: " before calling if wanted. `message_id`
    comes from `make_message_id`. `references` is the References chain of the message answered
    (`InboundMail.references`); `in_reply_to` is appended to it. `automatic` marks a message
    no person wrote (acknowledgements, notices): Auto-Submitted: auto-replied, and
    X-Auto-Response-Suppress so that Exchange answers it with no out-of-office mail.
    Raises ValueError for a header value with a line break.
    """
    msg = EmailMessage(policy=_OUTBOUND)
    msg["From"] = from_address
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject_with_ticket(subject, ticket_id)
    msg["Date"] = email.utils.format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = message_id
    chain = _message_ids(" ".join(references))
    parent = next(iter(_message_ids(in_reply_to)), "")
    if parent:
        # Set raw (ids hold no line breaks): the header registry would RFC 2047-encode an id
        # longer than a line and so break the threading in every client.
        msg.set_raw("In-Reply-To", parent)
        if parent not in chain:
            chain.append(parent)
    if len(chain) > _MAX_REFERENCES:
        chain = [chain[0], *chain[-(_MAX_REFERENCES - 1) :]]
    if chain:
        msg.set_raw("References", "\n ".join(chain))
    if automatic:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text, charset="utf-8")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        msg.add_attachment(
            attachment.content,
            maintype=maintype if subtype else "application",
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
            disposition="inline" if attachment.inline else "attachment",
            cid=f"<{attachment.content_id}>" if attachment.content_id else None,
        )
    return msg
