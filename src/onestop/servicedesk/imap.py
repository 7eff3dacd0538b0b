"""A small IMAP client for the mailbox poller, over the standard library's imaplib.

The poller's contract, which makes a crash anywhere harmless:

1. `unprocessed_uids()` lists the unseen messages of the folder;
2. `fetch(uid)` reads one without marking it seen (BODY.PEEK);
3. the poller files it (`mail.parse_mail`, a ticket or an entry) and commits;
4. only then `mark_processed(uid)`.

A crash between 2 and 4 leaves the message unseen, so the next run fetches it again, and the
poller's idempotency on the Message-ID keeps it from filing it twice.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import re
import socket
import ssl
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

Security = Literal["ssl", "starttls", "none"]


class MailboxError(Exception):
    """The mailbox could not be reached or used; the message says why, for the administrator."""


@dataclass(frozen=True, kw_only=True)
class MailboxSettings:
    """Where and how to log in. Exactly one of `password` and `oauth2_token` (an OAuth 2.0
    access token, sent with SASL XOAUTH2 as Microsoft 365 and Gmail require)."""

    host: str
    port: int = 993
    security: Security = "ssl"
    username: str
    password: str = field(default="", repr=False)
    oauth2_token: str = field(default="", repr=False)
    folder: str = "INBOX"
    processed_folder: str = ""  # empty: processed messages stay in `folder`, marked seen
    timeout: float = 30.0  # seconds, for connecting and for each reply
    ssl_context: ssl.SSLContext | None = None  # e.g. trusting a private CA; default: system CAs

    def __post_init__(self) -> None:
        if self.security not in ("ssl", "starttls", "none"):
            raise ValueError(f"security must be ssl, starttls or none, not {self.security!r}")
        if bool(self.password) == bool(self.oauth2_token):
            raise ValueError("give exactly one of password and oauth2_token")


def _text(data: object) -> str:
    """A server reply or imaplib error as readable text."""
    if isinstance(data, list | tuple):
        return " ".join(_text(item) for item in data if item is not None)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data)


def _mailbox_name(name: str) -> str:
    """`name` as an IMAP mailbox argument: modified UTF-7 (RFC 3501 5.1.3), so a folder named
    "已处理" works, and quoted."""
    encoded = []
    for chunk in re.split(r"([\x20-\x7e]+)", name):
        if not chunk:
            continue
        if re.fullmatch(r"[\x20-\x7e]+", chunk):
            encoded.append(chunk.replace("&", "&-"))
        else:
            utf16 = base64.b64encode(chunk.encode("utf-16-be")).rstrip(b"=")
            encoded.append("&" + utf16.decode("ascii").replace("/", ",") + "-")
    quoted = "".join(encoded).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}"'


class ImapSession:
    """One logged-in connection with `settings.folder` selected; use it as a context manager.
    Every failure raises `MailboxError`."""

    def __init__(self, settings: MailboxSettings) -> None:
        self.settings = settings
        self._conn: imaplib.IMAP4 | None = None
        self._capabilities: frozenset[str] = frozenset()

    def __enter__(self) -> ImapSession:
        try:
            self._conn = self._connect()
            self._login(self._conn)
            self._select()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Logs out; a connection that is already broken is just dropped."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.logout()  # it swallows the server's errors itself

    def unprocessed_uids(self) -> list[int]:
        """UIDs of the folder's unseen messages, oldest first."""
        data = self._run("listing the unseen messages", "uid", "SEARCH", "UNSEEN UNDELETED")
        return sorted(int(uid) for uid in _text(data).split() if uid.isdigit())

    def fetch(self, uid: int) -> bytes:
        """The raw message `uid`; it stays unseen."""
        data = self._run(f"fetching message {uid}", "uid", "FETCH", str(uid), "(BODY.PEEK[])")
        for item in data:
            if isinstance(item, tuple) and b"BODY[]" in item[0].upper():
                return item[1]
        raise MailboxError(f"message {uid} is no longer in folder {self.settings.folder!r}")

    def mark_processed(self, uid: int) -> None:
        """Moves message `uid` to the processed folder, or marks it seen when there is none.
        Call it only after what the message became is committed (see the module docstring)."""
        target = self.settings.processed_folder
        if not target:
            self._run(f"marking message {uid} seen", "uid", "STORE", str(uid), "+FLAGS", r"(\Seen)")
            return
        what = f"moving message {uid} to folder {target!r}"
        if "MOVE" in self._capabilities:
            self._run(what, "uid", "MOVE", str(uid), _mailbox_name(target))
            return
        self._run(what, "uid", "COPY", str(uid), _mailbox_name(target))
        self._run(what, "uid", "STORE", str(uid), "+FLAGS", r"(\Deleted)")
        # UID EXPUNGE removes only this message; plain EXPUNGE also whatever else someone
        # marked deleted in the folder, which a server without UIDPLUS leaves no way around.
        if "UIDPLUS" in self._capabilities:
            self._run(what, "uid", "EXPUNGE", str(uid))
        else:
            self._run(what, "expunge")

    def _connect(self) -> imaplib.IMAP4:
        settings = self.settings
        where = f"{settings.host}:{settings.port}"
        context = settings.ssl_context or ssl.create_default_context()
        try:
            if settings.security == "ssl":
                return imaplib.IMAP4_SSL(
                    settings.host, settings.port, ssl_context=context, timeout=settings.timeout
                )
            conn = imaplib.IMAP4(settings.host, settings.port, timeout=settings.timeout)
            if settings.security == "starttls":
                try:
                    conn.starttls(ssl_context=context)
                except BaseException:
                    conn.shutdown()
                    raise
            return conn
        except ssl.SSLCertVerificationError as exc:
            raise MailboxError(f"TLS with {where} failed: {exc.verify_message}") from exc
        except ssl.SSLError as exc:
            reason = exc.reason or str(exc)
            if reason == "WRONG_VERSION_NUMBER":
                reason = "the server does not speak TLS on this port (check port and security)"
            raise MailboxError(f"TLS with {where} failed: {reason}") from exc
        except ConnectionRefusedError as exc:
            raise MailboxError(f"cannot connect to {where}: connection refused") from exc
        except TimeoutError as exc:
            raise MailboxError(f"cannot connect to {where}: timed out") from exc
        except socket.gaierror as exc:
            raise MailboxError(f"cannot connect to {where}: unknown host") from exc
        except OSError as exc:
            raise MailboxError(f"cannot connect to {where}: {exc.strerror or exc}") from exc
        except imaplib.IMAP4.error as exc:
            raise MailboxError(f"{where} refused the session: {_text(exc.args)}") from exc

    def _login(self, conn: imaplib.IMAP4) -> None:
        settings = self.settings
        try:
            if settings.oauth2_token:
                token = f"user={settings.username}\x01auth=Bearer {settings.oauth2_token}\x01\x01"
                # A refusal comes as a challenge holding the error; the empty answer ends it.
                conn.authenticate("XOAUTH2", lambda challenge: b"" if challenge else token.encode())
            else:
                conn.login(settings.username, settings.password)
        except imaplib.IMAP4.error as exc:
            raise MailboxError(
                f"login as {settings.username!r} on {settings.host} failed: {_text(exc.args)}"
            ) from exc
        except OSError as exc:
            raise MailboxError(f"connection to {settings.host} lost at login: {exc}") from exc

    def _select(self) -> None:
        settings = self.settings
        # Asked after login: servers announce MOVE and UIDPLUS only to logged-in users.
        capabilities = self._run("reading the capabilities", "capability")
        self._capabilities = frozenset(_text(capabilities).upper().split())
        for folder in filter(None, (settings.folder, settings.processed_folder)):
            found = self._run(f"looking up folder {folder!r}", "list", '""', _mailbox_name(folder))
            if not any(found):
                raise MailboxError(f"folder {folder!r} does not exist on {settings.host}")
        self._run(f"opening folder {settings.folder!r}", "select", _mailbox_name(settings.folder))

    def _run(self, what: str, method: str, *args: str) -> list:
        """Runs one imaplib command method; its data, or MailboxError saying `what` failed."""
        if self._conn is None:
            raise MailboxError("the mailbox session is closed")
        try:
            status, data = getattr(self._conn, method)(*args)
        except imaplib.IMAP4.abort as exc:
            raise MailboxError(f"{what}: connection lost: {_text(exc.args)}") from exc
        except imaplib.IMAP4.error as exc:
            raise MailboxError(f"{what} failed: {_text(exc.args)}") from exc
        except TimeoutError as exc:
            raise MailboxError(f"{what}: {self.settings.host} did not answer in time") from exc
        except OSError as exc:
            raise MailboxError(f"{what}: connection lost: {exc}") from exc
        if status != "OK":
            raise MailboxError(f"{what} failed: {_text(data)}")
        return data
