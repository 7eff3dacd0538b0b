"""Configuration from the environment: defaults, persisted keys, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from onestop.config import env

CLEAN = [
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "ONESTOP_ENCRYPTION_KEY",
    "ONESTOP_PUBLIC_URL",
    "ONESTOP_TRUSTED_PROXIES",
    "ONESTOP_TIME_ZONE",
    "ONESTOP_LANGUAGE",
    "ONESTOP_DEBUG",
    "ONESTOP_AUDIT_RETENTION_DAYS",
    "ONESTOP_ALLOWED_HOSTS",
    "ONESTOP_ENV_FILE",
]


@pytest.fixture
def environ(monkeypatch, tmp_path):
    for name in CLEAN:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONESTOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ONESTOP_ENV_FILE", str(tmp_path / "absent.env"))
    return monkeypatch


def test_defaults_make_an_embedded_install(environ, tmp_path):
    config = env.load()
    assert config.database_is_embedded
    assert config.database["NAME"] == str(tmp_path / "data" / "onestop.sqlite3")
    assert config.database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config.database["OPTIONS"]["init_command"]
    assert config.time_zone == "Asia/Shanghai"
    assert config.language_code == "zh-hans"
    assert config.redis_url is None


def test_generated_keys_are_kept_across_restarts(environ, tmp_path):
    first, second = env.load(), env.load()
    assert first.secret_key == second.secret_key
    assert first.encryption_key == second.encryption_key
    key_file = tmp_path / "data" / "secret_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_dotenv_file_is_read(environ, tmp_path):
    dotenv = tmp_path / "site.env"
    dotenv.write_text("ONESTOP_PUBLIC_URL=https://ops.example.cn\n")
    environ.setenv("ONESTOP_ENV_FILE", str(dotenv))
    environ.delenv("ONESTOP_PUBLIC_URL", raising=False)
    config = env.load()
    assert config.public_url == "https://ops.example.cn"
    assert config.public_url_is_https
    assert "ops.example.cn" in config.allowed_hosts
    os.environ.pop("ONESTOP_PUBLIC_URL", None)


@pytest.mark.parametrize(
    "name,value",
    [
        ("ONESTOP_PUBLIC_URL", "ftp://example.cn"),
        ("ONESTOP_TRUSTED_PROXIES", "10.0.0.0/8,not-an-ip"),
        ("ONESTOP_ENCRYPTION_KEY", "too-short"),
        ("ONESTOP_TIME_ZONE", "Mars/Olympus"),
        ("ONESTOP_LANGUAGE", "fr"),
        ("ONESTOP_AUDIT_RETENTION_DAYS", "30"),
        ("ONESTOP_DEBUG", "perhaps"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("DATABASE_URL", "mysql://root@127.0.0.1/onestop"),
        ("SECRET_KEY", "short"),
        ("ONESTOP_SMTP_URL", "http://mail.example.cn"),
        ("ONESTOP_SMTP_URL", "smtp://mail.example.cn:port"),
        ("ONESTOP_MAIL_FROM", "nobody"),
        ("ONESTOP_SNMP_TRAP_LISTEN", "162"),
        ("ONESTOP_SNMP_TRAP_LISTEN", "0.0.0.0:70000"),
        ("ONESTOP_SNMP_ENGINE_ID", "80004fb8"),
        ("ONESTOP_SNMP_ENGINE_ID", "80004fb805c0a8000"),
        ("ONESTOP_SNMP_ENGINE_ID", "not-an-engine-id"),
        ("ONESTOP_SNMP_ENGINE_ID", "0000000000"),
    ],
)
def test_bad_setting_is_named(environ, name, value):
    environ.setenv(name, value)
    with pytest.raises(env.SettingError) as caught:
        env.load()
    assert caught.value.name == name
    assert "\n" not in str(caught.value)


def test_smtp_url_is_parsed(environ):
    environ.setenv(
        "ONESTOP_SMTP_URL", "smtp://ops%40msp.cn:p%40ss@smtp.exmail.qq.com:587?starttls=1"
    )
    environ.setenv("ONESTOP_MAIL_FROM", "运维中心 <ops@msp.cn>")
    config = env.load()
    assert config.smtp == env.SmtpConfig(
        host="smtp.exmail.qq.com",
        port=587,
        username="ops@msp.cn",
        password="p@ss",
        use_starttls=True,
    )
    assert config.mail_from == "运维中心 <ops@msp.cn>"
    environ.setenv("ONESTOP_SMTP_URL", "smtps://relay.example.cn")
    assert env.load().smtp.port == 465
    assert env.load().smtp.use_ssl


def test_snmp_engine_id_is_hex(environ):
    assert env.load().snmp_engine_id is None
    environ.setenv("ONESTOP_SNMP_ENGINE_ID", "0x80004FB805c0a80001")
    assert env.load().snmp_engine_id == bytes.fromhex("80004fb805c0a80001")


def test_postgres_needs_shared_keys(environ):
    environ.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/onestop")
    with pytest.raises(env.SettingError) as caught:
        env.load()
    assert caught.value.name == "SECRET_KEY"
    environ.setenv("SECRET_KEY", "x" * 40)
    with pytest.raises(env.SettingError) as caught:
        env.load()
    assert caught.value.name == "ONESTOP_ENCRYPTION_KEY"


def test_trusted_proxies_are_networks(environ):
    environ.setenv("ONESTOP_TRUSTED_PROXIES", "10.0.0.5, 192.168.0.0/16")
    config = env.load()
    assert [str(n) for n in config.trusted_proxies] == ["10.0.0.5/32", "192.168.0.0/16"]


def test_concurrent_writers_never_hit_database_is_locked(tmp_path):
    """Four processes write through the services at once into one SQLite file."""
    environment = {
        **{k: v for k, v in os.environ.items() if k not in CLEAN},
        "ONESTOP_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "onestop.config.settings",
    }
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v0"],
        env=environment,
        check=True,
        timeout=120,
    )
    writer = textwrap.dedent(
        """
        import sys, django
        django.setup()
        from onestop.core import services
        from onestop.core.models import Customer
        worker = int(sys.argv[1])
        for n in range(40):
            customer = services.customer_create(
                actor=None, name=f"并发客户{worker}-{n}", short_code=f"W{worker}N{n}"
            )
            services.customer_update(actor=None, customer=customer, phone=str(n))
            Customer.objects.filter(pk=customer.pk).count()
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", writer, str(i)],
            env=environment,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    errors = [p.communicate(timeout=180)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    count = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from onestop.core.models import Customer, AuditEvent;"
            "print(Customer.objects.count(), AuditEvent.objects.count())",
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert count == ["160", "320"]
