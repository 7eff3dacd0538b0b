"""Reads OneStop's configuration from the environment (and an optional .env file).

Every setting is parsed and checked here, so a bad value stops the start with one line that
names the variable, before Django or any server is touched.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from cryptography.fernet import Fernet
from dotenv import load_dotenv


class SettingError(Exception):
    """A setting is missing or malformed; the message names it in one line."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name


LANGUAGE_CODES = ("zh-hans", "en")


@dataclass(frozen=True)
class SmtpConfig:
    """The relay all outgoing mail goes through (ticket replies and notifications)."""

    host: str
    port: int
    username: str = ""
    password: str = ""
    use_ssl: bool = False  # smtps:// — TLS from the first byte (port 465)
    use_starttls: bool = False  # smtp://…?starttls=1 — upgrade after EHLO (port 587)


def _smtp(raw: str) -> SmtpConfig | None:
    """ONESTOP_SMTP_URL: smtp://user:password@host:587?starttls=1 or smtps://…:465."""
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise SettingError(
            "ONESTOP_SMTP_URL", "must look like smtp://user:password@host:587?starttls=1"
        )
    query = {k: v for k, _sep, v in (item.partition("=") for item in parts.query.split("&"))}
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise SettingError("ONESTOP_SMTP_URL", "the port is not a number") from None
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        use_ssl=parts.scheme == "smtps",
        use_starttls=query.get("starttls", "") in {"1", "true", "yes"},
    )


@dataclass(frozen=True)
class Config:
    """The validated configuration OneStop runs with."""

    data_dir: Path
    media_dir: Path
    database: dict
    database_is_embedded: bool
    redis_url: str | None
    secret_key: str
    encryption_key: str
    public_url: str
    allowed_hosts: list[str]
    trusted_proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(
        default_factory=list
    )
    debug: bool = False
    time_zone: str = "Asia/Shanghai"
    language_code: str = "zh-hans"
    audit_retention_days: int = 365
    login_failure_limit: int = 5
    login_lockout_minutes: int = 15
    attachment_max_mb: int = 25
    # Outgoing mail: None writes each message to data_dir/outbox instead (nothing is lost).
    smtp: SmtpConfig | None = None
    mail_from: str = "OneStop <onestop@localhost>"
    # Where the poller receives SNMP traps ("host:port"); empty: it receives none.
    snmp_trap_listen: str = ""
    # The trap receiver's SNMP engine id; None: the poller derives one from the secret key.
    snmp_engine_id: bytes | None = None

    @property
    def public_url_is_https(self) -> bool:
        return self.public_url.startswith("https://")


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise SettingError(name, f"expected true/false, got {raw!r}")


def _int(name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(name, f"expected a whole number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingError(name, f"must be between {minimum} and {maximum}, got {value}")
    return value


def _read_or_create_key(path: Path, make: callable) -> str:
    """Keeps a generated key in the data folder so it survives restarts."""
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = make()
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def _database(data_dir: Path) -> tuple[dict, bool]:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return (
            {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(data_dir / "onestop.sqlite3"),
                # Several writers (web, worker, poller) share the file: immediate transactions
                # take the write lock up front, so they queue on the busy timeout instead of
                # failing with "database is locked" when a read transaction upgrades.
                "OPTIONS": {
                    "transaction_mode": "IMMEDIATE",
                    "timeout": 20,
                    "init_command": (
                        "PRAGMA journal_mode=WAL;"
                        "PRAGMA synchronous=NORMAL;"
                        "PRAGMA foreign_keys=ON;"
                        "PRAGMA busy_timeout=20000;"
                    ),
                },
            },
            True,
        )
    scheme = urlsplit(url).scheme
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise SettingError("DATABASE_URL", f"unsupported scheme {scheme!r} (use postgres://)")
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # dj_database_url raises several types for a malformed URL
        raise SettingError("DATABASE_URL", f"cannot parse: {exc}") from None
    if config["ENGINE"].endswith("sqlite3"):
        return config, True
    # Test databases are created UTF-8 so that text search sees Chinese as on production.
    config["TEST"] = {"CHARSET": "UTF8", "TEMPLATE": "template0"}
    return config, False


def load(environ_file: str | os.PathLike | None = None) -> Config:
    """Builds the Config from the environment; raises SettingError naming the bad setting."""
    env_file = Path(environ_file or os.environ.get("ONESTOP_ENV_FILE", ".env"))
    if env_file.is_file():
        load_dotenv(env_file, override=False)

    data_dir = Path(os.environ.get("ONESTOP_DATA_DIR") or "./var").expanduser().resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingError(
            "ONESTOP_DATA_DIR", f"cannot create {data_dir}: {exc.strerror}"
        ) from None
    if not os.access(data_dir, os.W_OK):
        raise SettingError("ONESTOP_DATA_DIR", f"{data_dir} is not writable")
    media_dir = data_dir / "files"
    media_dir.mkdir(exist_ok=True)

    database, embedded = _database(data_dir)

    redis_url = os.environ.get("REDIS_URL", "").strip() or None
    if redis_url and urlsplit(redis_url).scheme not in {"redis", "rediss", "unix"}:
        raise SettingError("REDIS_URL", "must start with redis://, rediss:// or unix://")

    secret_key = os.environ.get("SECRET_KEY", "").strip()
    encryption_key = os.environ.get("ONESTOP_ENCRYPTION_KEY", "").strip()
    if not embedded:
        # Replicas behind a load balancer must share both keys, so neither may be generated.
        if not secret_key:
            raise SettingError("SECRET_KEY", "required when DATABASE_URL is set")
        if not encryption_key:
            raise SettingError("ONESTOP_ENCRYPTION_KEY", "required when DATABASE_URL is set")
    if not secret_key:
        secret_key = _read_or_create_key(data_dir / "secret_key", lambda: secrets.token_urlsafe(50))
    if len(secret_key) < 32:
        raise SettingError("SECRET_KEY", "must be at least 32 characters")
    if not encryption_key:
        encryption_key = _read_or_create_key(
            data_dir / "encryption_key", lambda: Fernet.generate_key().decode()
        )
    try:
        Fernet(encryption_key.encode())
    except ValueError:
        raise SettingError(
            "ONESTOP_ENCRYPTION_KEY",
            "must be 32 url-safe base64-encoded bytes (generate one with: onestop generate-key)",
        ) from None

    public_url = os.environ.get("ONESTOP_PUBLIC_URL", "").strip() or "http://127.0.0.1:8000"
    parts = urlsplit(public_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SettingError("ONESTOP_PUBLIC_URL", f"must be an http(s) URL, got {public_url!r}")
    public_url = public_url.rstrip("/")

    allowed_raw = os.environ.get("ONESTOP_ALLOWED_HOSTS", "").strip()
    if allowed_raw:
        allowed_hosts = [h.strip() for h in allowed_raw.split(",") if h.strip()]
    else:
        allowed_hosts = sorted({parts.hostname, "127.0.0.1", "localhost", "[::1]"})

    trusted: list = []
    for item in os.environ.get("ONESTOP_TRUSTED_PROXIES", "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            trusted.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingError(
                "ONESTOP_TRUSTED_PROXIES", f"{item!r} is not an IP address or network"
            ) from None

    time_zone = os.environ.get("ONESTOP_TIME_ZONE", "").strip() or "Asia/Shanghai"
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError("ONESTOP_TIME_ZONE", f"unknown time zone {time_zone!r}") from None

    language = (os.environ.get("ONESTOP_LANGUAGE", "").strip() or "zh-hans").lower()
    if language not in LANGUAGE_CODES:
        raise SettingError("ONESTOP_LANGUAGE", f"must be one of {', '.join(LANGUAGE_CODES)}")

    return Config(
        data_dir=data_dir,
        media_dir=media_dir,
        database=database,
        database_is_embedded=embedded,
        redis_url=redis_url,
        secret_key=secret_key,
        encryption_key=encryption_key,
        public_url=public_url,
        allowed_hosts=allowed_hosts,
        trusted_proxies=trusted,
        debug=_bool("ONESTOP_DEBUG", False),
        time_zone=time_zone,
        language_code=language,
        audit_retention_days=_int("ONESTOP_AUDIT_RETENTION_DAYS", 365, minimum=180, maximum=36500),
        login_failure_limit=_int("ONESTOP_LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=1000),
        login_lockout_minutes=_int("ONESTOP_LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=24 * 60),
        smtp=_smtp(os.environ.get("ONESTOP_SMTP_URL", "").strip()),
        mail_from=_mail_from(os.environ.get("ONESTOP_MAIL_FROM", "").strip()),
        snmp_trap_listen=_listen(os.environ.get("ONESTOP_SNMP_TRAP_LISTEN", "").strip()),
        snmp_engine_id=_engine_id(os.environ.get("ONESTOP_SNMP_ENGINE_ID", "").strip()),
    )


def _listen(raw: str) -> str:
    if not raw:
        return ""
    host, colon, port = raw.rpartition(":")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SettingError("ONESTOP_SNMP_TRAP_LISTEN", "must be host:port, e.g. 0.0.0.0:162")
    return raw


def _engine_id(raw: str) -> bytes | None:
    if not raw:
        return None
    digits = raw.removeprefix("0x")
    # RFC 3411: 5 to 32 octets, neither all zeros nor all ones.
    if (
        not re.fullmatch(r"[0-9a-fA-F]{10,64}", digits)
        or len(digits) % 2
        or set(digits.lower()) in ({"0"}, {"f"})
    ):
        raise SettingError(
            "ONESTOP_SNMP_ENGINE_ID", "must be 5 to 32 bytes in hex, e.g. 80004fb805c0a80001"
        )
    return bytes.fromhex(digits)


def _mail_from(raw: str) -> str:
    if not raw:
        return "OneStop <onestop@localhost>"
    _name, address = parseaddr(raw)
    if "@" not in address:
        raise SettingError("ONESTOP_MAIL_FROM", f"not an email address: {raw!r}")
    return raw
