"""Backups: the database and the stored files in one .tar.gz with a manifest, and restore.

SQLite is copied with its online backup API, PostgreSQL with pg_dump's custom format; both give
a consistent snapshot while the server keeps running. The Huey queue is not included: it only
holds wake-ups, and the work itself lives in the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from onestop.core.models import AuditEvent, Customer, User

FORMAT = 1
MANIFEST = "manifest.json"
FILES = "files"
DATABASE_FILES = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}

Progress = Callable[[str, int, int], None]


class BackupError(Exception):
    """A backup or restore cannot go on; the message says why in one line."""


@dataclass(frozen=True)
class Manifest:
    """What an archive holds, read before anything is restored."""

    format: int
    version: str
    vendor: str
    created_at: str
    migrations: dict[str, list[str]]
    files: int
    key_fingerprint: str

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})
        except (ValueError, KeyError, TypeError):
            raise BackupError("the archive's manifest is damaged") from None


def key_fingerprint() -> str:
    """A short hash of ONESTOP_ENCRYPTION_KEY: tells whether stored secrets will decrypt."""
    return hashlib.sha256(settings.ONESTOP_ENCRYPTION_KEY.encode()).hexdigest()[:16]


def default_backup_path() -> Path:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    return Path(settings.ONESTOP_DATA_DIR) / "backups" / f"onestop-{stamp}.tar.gz"


def _vendor() -> str:
    vendor = connection.vendor
    if vendor not in DATABASE_FILES:
        raise BackupError(f"backups of {vendor} databases are not supported")
    return vendor


def _applied_migrations() -> dict[str, list[str]]:
    applied: dict[str, list[str]] = {}
    for app, name in sorted(MigrationRecorder(connection).applied_migrations()):
        applied.setdefault(app, []).append(name)
    return applied


def _stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} not found: install the PostgreSQL client tools (apt install postgresql-client)"
        )
    return path


def _pg_environment() -> dict[str, str]:
    """libpq variables, so the password never appears on a command line."""
    db = connection.settings_dict
    env = dict(os.environ)
    for variable, value in (
        ("PGHOST", db.get("HOST")),
        ("PGPORT", db.get("PORT")),
        ("PGUSER", db.get("USER")),
        ("PGPASSWORD", db.get("PASSWORD")),
        ("PGDATABASE", db.get("NAME")),
        ("PGSSLMODE", db.get("OPTIONS", {}).get("sslmode")),
    ):
        if value:
            env[variable] = str(value)
    return env


def _run(argv: list[str]) -> None:
    result = subprocess.run(  # noqa: S603 - a fixed PostgreSQL tool with our own arguments
        argv, env=_pg_environment(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {result.returncode}"
        raise BackupError(f"{Path(argv[0]).name} failed: {reason}")


def _dump_database(vendor: str, target: Path) -> None:
    if vendor == "sqlite":
        connection.ensure_connection()
        destination = sqlite3.connect(target)
        try:
            # One step (pages=-1) reads one snapshot; stepping would restart on every write.
            connection.connection.backup(destination)
        finally:
            destination.close()
    else:
        _run([_tool("pg_dump"), "--format=custom", f"--file={target}"])


def backup_create(*, output: Path | None = None, progress: Progress | None = None) -> Manifest:
    """Writes a consistent copy of the database and the stored files to one .tar.gz."""
    vendor = _vendor()
    output = Path(output or default_backup_path())
    output.parent.mkdir(parents=True, exist_ok=True)
    files = _stored_files()
    total = len(files) + 1
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".onestop-backup-") as tmp:
        manifest = Manifest(
            format=FORMAT,
            version=metadata.version("onestop"),
            vendor=vendor,
            created_at=timezone.now().isoformat(),
            migrations=_applied_migrations(),
            files=len(files),
            key_fingerprint=key_fingerprint(),
        )
        dump = Path(tmp) / DATABASE_FILES[vendor]
        _dump_database(vendor, dump)
        if progress:
            progress("Backing up", 1, total)
        manifest_path = Path(tmp) / MANIFEST
        manifest_path.write_text(json.dumps(asdict(manifest), indent=2, ensure_ascii=False))
        partial = Path(tmp) / output.name
        root = Path(settings.MEDIA_ROOT)
        with tarfile.open(partial, "w:gz") as tar:
            # The manifest goes first, so restore can check it before reading anything else.
            tar.add(manifest_path, arcname=MANIFEST)
            tar.add(dump, arcname=dump.name)
            for done, path in enumerate(files, start=2):
                tar.add(path, arcname=f"{FILES}/{path.relative_to(root).as_posix()}")
                if progress:
                    progress("Backing up", done, total)
        # The archive holds password hashes and customer data.
        partial.chmod(0o600)
        os.replace(partial, output)
    return manifest


def _holds_data() -> bool:
    tables = set(connection.introspection.table_names())
    return any(
        model._meta.db_table in tables and model.objects.exists()
        for model in (Customer, User, AuditEvent)
    )


def _check_compatible(manifest: Manifest) -> None:
    if manifest.format != FORMAT:
        raise BackupError(f"unknown backup format {manifest.format}")
    vendor = _vendor()
    if manifest.vendor != vendor:
        raise BackupError(
            f"the archive holds a {manifest.vendor} database; this OneStop runs on {vendor}"
        )
    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    for app, names in manifest.migrations.items():
        for name in names:
            if (app, name) not in known:
                raise BackupError(
                    f"the archive comes from a newer OneStop ({manifest.version}, migration "
                    f"{app}.{name}); upgrade OneStop first"
                )
    if vendor == "postgresql":
        archived = {(app, name) for app, names in manifest.migrations.items() for name in names}
        newer = sorted(set(MigrationRecorder(connection).applied_migrations()) - archived)
        if newer:
            # pg_restore --clean only replaces what the dump holds; newer tables would linger.
            app, name = newer[0]
            raise BackupError(
                f"the database has migrations the archive lacks ({app}.{name}); restore into "
                "a new, empty database, then run: onestop migrate"
            )


def _member_path(name: str, vendor: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise BackupError(f"the archive holds an unsafe path: {name}")
    if path.parts[0] != FILES and name != DATABASE_FILES[vendor]:
        raise BackupError(f"the archive holds an unexpected file: {name}")
    return path


def _extract(tar: tarfile.TarFile, target: Path, manifest: Manifest, progress: Progress | None):
    total = manifest.files + 1
    done = 0
    for member in tar:
        if member.isdir() or member.name == MANIFEST:
            continue
        path = _member_path(member.name, manifest.vendor)
        if not member.isfile():
            raise BackupError(f"the archive holds a link or device: {member.name}")
        destination = target.joinpath(*path.parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        with source, destination.open("wb") as sink:
            shutil.copyfileobj(source, sink)
        done += 1
        if progress:
            progress("Restoring", min(done, total), total)


def _load_database(vendor: str, dump: Path) -> None:
    if not dump.is_file():
        raise BackupError("the archive holds no database")
    if vendor == "sqlite":
        connection.ensure_connection()
        source = sqlite3.connect(dump)
        try:
            # The backup API writes into the live file under its lock, WAL included.
            source.backup(connection.connection)
        finally:
            source.close()
    else:
        restore = _tool("pg_restore")
        # pg_restore --clean drops tables; an open connection of ours could hold locks on them.
        connections.close_all()
        _run(
            [
                restore,
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--exit-on-error",
                f"--dbname={connection.settings_dict['NAME']}",
                str(dump),
            ]
        )


def _replace_files(restored: Path) -> None:
    """Swaps the stored-files folder for the restored one with two renames."""
    media = Path(settings.MEDIA_ROOT)
    restored.mkdir(exist_ok=True)
    retired = restored.with_name("files-before-restore")
    if media.exists():
        os.rename(media, retired)
    os.rename(restored, media)
    shutil.rmtree(retired, ignore_errors=True)


def read_manifest(archive: Path) -> Manifest:
    """The manifest of an archive, without restoring anything."""
    with _open(archive) as tar:
        return _first_manifest(tar)


def _open(archive: Path) -> tarfile.TarFile:
    if not archive.is_file():
        raise BackupError(f"{archive}: no such file")
    try:
        return tarfile.open(archive, "r:gz")
    except (tarfile.TarError, OSError):
        raise BackupError(f"{archive} is not a OneStop backup (.tar.gz)") from None


def _first_manifest(tar: tarfile.TarFile) -> Manifest:
    try:
        first = tar.next()
    except (tarfile.TarError, OSError, EOFError):
        first = None
    if first is None or first.name != MANIFEST or not first.isfile():
        raise BackupError("not a OneStop backup: the archive has no manifest")
    return Manifest.from_json(tar.extractfile(first).read())


def backup_restore(
    *, archive: Path, replace: bool = False, progress: Progress | None = None
) -> Manifest:
    """Replaces the database and the stored files with an archive's; refuses to overwrite a
    database holding data unless `replace`. Run migrations afterwards (older archives)."""
    archive = Path(archive)
    media_parent = Path(settings.MEDIA_ROOT).parent
    with _open(archive) as tar:
        manifest = _first_manifest(tar)
        _check_compatible(manifest)
        if not replace and _holds_data():
            raise BackupError("the database already holds data; confirm with --yes to replace it")
        with tempfile.TemporaryDirectory(dir=media_parent, prefix=".onestop-restore-") as tmp:
            try:
                _extract(tar, Path(tmp), manifest, progress)
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise BackupError(f"the archive is damaged: {exc}") from None
            _load_database(manifest.vendor, Path(tmp) / DATABASE_FILES[manifest.vendor])
            _replace_files(Path(tmp) / FILES)
    return manifest
