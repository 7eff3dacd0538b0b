"""Backup and restore: a round trip brings back deleted data and files; bad archives are refused."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from onestop.core import backup, services
from onestop.core.models import Customer
from tests import factories
from tests.conftest import require_peer

pytestmark = pytest.mark.django_db(transaction=True)
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL only: set DATABASE_URL to a PostgreSQL database",
)


@pytest.fixture
def media(settings, tmp_path) -> Path:
    root = tmp_path / "data" / "files"
    root.mkdir(parents=True)
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture
def peer_tools() -> None:
    if connection.vendor == "postgresql":
        require_peer(shutil.which("pg_dump") is not None, "pg_dump is not installed")


def _archive(path: Path, manifest: dict, extra: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {backup.MANIFEST: json.dumps(manifest).encode(), **(extra or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _applied() -> dict[str, list[str]]:
    applied: dict[str, list[str]] = {}
    for app, name in MigrationRecorder(connection).applied_migrations():
        applied.setdefault(app, []).append(name)
    return applied


def _manifest(**changes) -> dict:
    data = {
        "format": backup.FORMAT,
        "version": "0.1.0",
        "vendor": connection.vendor,
        "created_at": "2025-06-01T00:00:00+00:00",
        "migrations": _applied(),
        "files": 0,
        "key_fingerprint": backup.key_fingerprint(),
    }
    return {**data, **changes}


def test_round_trip_restores_a_deleted_customer_and_a_stored_file(media, tmp_path, peer_tools):
    customer = factories.customer(name="上海备份测试有限公司", short_code="BAK")
    factories.site(customer, name="总部")
    (media / "contracts").mkdir()
    (media / "contracts" / "合同.pdf").write_bytes(b"%PDF-1.4 contract")

    archive = tmp_path / "backups" / "onestop.tar.gz"
    manifest = backup.backup_create(output=archive)

    assert archive.is_file()
    assert archive.stat().st_mode & 0o077 == 0
    assert manifest.vendor == connection.vendor
    assert manifest.files == 1
    assert "0001_initial" in manifest.migrations["core"]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[0] == backup.MANIFEST
    assert backup.DATABASE_FILES[connection.vendor] in names
    assert "files/contracts/合同.pdf" in names

    services.customer_delete(actor=None, customer=customer)
    (media / "contracts" / "合同.pdf").unlink()
    (media / "after-backup.txt").write_text("not in the backup")
    assert not Customer.objects.filter(short_code="BAK").exists()

    with pytest.raises(backup.BackupError, match="--yes"):
        backup.backup_restore(archive=archive)

    restored = backup.backup_restore(archive=archive, replace=True)

    assert restored == manifest
    customer = Customer.objects.get(short_code="BAK")
    assert customer.name == "上海备份测试有限公司"
    assert customer.sites.get().name == "总部"
    assert (media / "contracts" / "合同.pdf").read_bytes() == b"%PDF-1.4 contract"
    assert not (media / "after-backup.txt").exists()
    assert not list(media.parent.glob(".onestop-restore-*"))


def test_restore_into_an_empty_database_needs_no_confirmation(media, tmp_path, peer_tools):
    archive = tmp_path / "empty.tar.gz"
    backup.backup_create(output=archive)
    backup.backup_restore(archive=archive)
    assert not Customer.objects.exists()


def test_restore_refuses_an_archive_of_another_database_vendor(media, tmp_path):
    other = "postgresql" if connection.vendor == "sqlite" else "sqlite"
    archive = _archive(tmp_path / "other.tar.gz", _manifest(vendor=other))
    with pytest.raises(backup.BackupError, match=f"holds a {other} database"):
        backup.backup_restore(archive=archive, replace=True)


def test_restore_refuses_an_archive_from_a_newer_version(media, tmp_path):
    archive = _archive(
        tmp_path / "newer.tar.gz",
        _manifest(migrations={**_applied(), "core": ["9999_from_the_future"]}),
    )
    with pytest.raises(backup.BackupError, match="newer OneStop"):
        backup.backup_restore(archive=archive, replace=True)


def test_restore_refuses_paths_outside_the_data_folder(media, tmp_path):
    archive = _archive(tmp_path / "evil.tar.gz", _manifest(), {"files/../../evil": b"x"})
    with pytest.raises(backup.BackupError, match="unsafe path"):
        backup.backup_restore(archive=archive, replace=True)
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("content", [b"not a tarball", None])
def test_restore_refuses_what_is_not_a_backup(media, tmp_path, content):
    path = tmp_path / "junk.tar.gz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(backup.BackupError):
        backup.backup_restore(archive=path, replace=True)


def test_restore_refuses_a_tarball_without_manifest(media, tmp_path):
    path = tmp_path / "plain.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("hello.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(backup.BackupError, match="no manifest"):
        backup.backup_restore(archive=path, replace=True)


@postgres_only
def test_postgres_backup_without_pg_dump_says_so(media, tmp_path, monkeypatch):
    monkeypatch.setattr(backup.shutil, "which", lambda name: None)
    with pytest.raises(backup.BackupError, match="pg_dump not found"):
        backup.backup_create(output=tmp_path / "x.tar.gz")


def test_progress_is_reported(media, tmp_path, peer_tools):
    (media / "a.txt").write_text("a")
    (media / "b.txt").write_text("b")
    seen: list[tuple[str, int, int]] = []
    backup.backup_create(output=tmp_path / "p.tar.gz", progress=lambda *a: seen.append(a))
    assert seen[-1] == ("Backing up", 3, 3)


@postgres_only
def test_postgres_restore_refuses_a_database_newer_than_the_archive(media, tmp_path):
    older = {app: names for app, names in _applied().items() if app != "axes"}
    archive = _archive(tmp_path / "older.tar.gz", _manifest(migrations=older))
    with pytest.raises(backup.BackupError, match="migrations the archive lacks"):
        backup.backup_restore(archive=archive, replace=True)
