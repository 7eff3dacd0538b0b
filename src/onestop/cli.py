"""The `onestop` command: serve, scale out, migrate, check, create the first admin, back up.

Each subcommand validates the configuration first (one line naming a bad setting, exit 2), then
starts Django and calls services or Django management commands; the work lives elsewhere.
"""

from __future__ import annotations

import argparse
import ctypes
import getpass
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onestop.config import env

PROG = "onestop"
SETTINGS_MODULE = "onestop.config.settings"
WSGI_TARGET = "onestop.config.wsgi:application"
# A child gets this long to stop after the signal before it is killed; longer than the
# Huey and granian grace periods below, so they finish their own shutdown first.
STOP_TIMEOUT = 30.0
HUEY_SHUTDOWN_TIMEOUT = 20
GRANIAN_KILL_TIMEOUT = 20
# A child that dies this soon after starting counts as a quick failure; after MAX_QUICK_FAILURES
# in a row (a taken port, a broken install) the supervisor stops instead of looping forever.
QUICK_FAILURE_SECONDS = 10.0
MAX_QUICK_FAILURES = 5
MAX_BACKOFF_SECONDS = 30.0


class Failure(Exception):
    """Ends the command with one line on stderr and a non-zero exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _say(message: str = "") -> None:
    print(message, flush=True)


def _warn(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


# Start-up -------------------------------------------------------------------------------------


def _start_django() -> env.Config:
    """Validates the configuration, then loads Django with it."""
    try:
        config = env.load()
    except env.SettingError as exc:
        raise Failure(str(exc), code=2) from None
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        raise Failure(str(exc).splitlines()[0], code=2) from None
    return config


@contextmanager
def _as_cli() -> Iterator[None]:
    """Audit events written by this command say source=cli."""
    from onestop.core.context import acting

    with acting("cli"):
        yield


def _progress() -> Callable[[str, int, int], None] | None:
    """A tqdm progress bar on a terminal; nothing when the output goes to a file or a pipe."""
    if not sys.stdout.isatty():
        return None
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(label: str, done: int, total: int) -> None:
        bar = bars.get(label)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[label] = tqdm(total=total, desc=label, leave=False)
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _unapplied_migrations() -> list[str]:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def _migrate(verbose: bool) -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1 if verbose else 0)


def _one_line(exc: Exception) -> str:
    """A ValidationError (or any error) as one line: `field: message; field: message`."""
    message_dict = getattr(exc, "message_dict", None)
    if message_dict:
        return "; ".join(
            f"{field}: {' '.join(str(m) for m in messages)}"
            for field, messages in message_dict.items()
        )
    messages = getattr(exc, "messages", None) or [str(exc)]
    return " ".join(str(m) for m in messages).replace("\n", " ")


# Processes ------------------------------------------------------------------------------------


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _ensure_port_free(host: str, port: int) -> None:
    """Fails with one line when something already listens there, before any child starts."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Failure(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise Failure(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _granian_argv(host: str, port: int, workers: int) -> list[str]:
    # Each request thread may hold a database connection, so their number stays near the CPU
    # count rather than granian's default of hundreds; further requests wait in the backlog.
    threads = min(32, 2 * (os.cpu_count() or 1) + 1)
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--backpressure",
        str(2 * threads),
        "--respawn-failed-workers",
        "--workers-kill-timeout",
        str(GRANIAN_KILL_TIMEOUT),
        WSGI_TARGET,
    ]


def _huey_args(workers: int | None, scheduler: bool) -> list[str]:
    # SIGTERM (systemd, the supervisor) lets running tasks finish; SIGINT interrupts them.
    args = ["--graceful-signal", "TERM", "--shutdown-timeout", str(HUEY_SHUTDOWN_TIMEOUT)]
    if workers:
        args += ["--workers", str(workers)]
    if not scheduler:
        args.append("--no-periodic")
    return args


def _die_with_parent() -> None:
    """Runs in the child before exec: if the supervisor is killed outright, so is the child."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class _Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_failures: int = 0
    restart_at: float | None = None

    def start(self) -> None:
        # Its own process group: a terminal's Ctrl-C reaches only the supervisor, which forwards
        # it once, and a final SIGKILL reaches the child's own workers too.
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            self.argv, process_group=0, preexec_fn=_die_with_parent
        )
        self.started_at = time.monotonic()
        self.restart_at = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _supervise(children: list[_Child]) -> int:
    """Runs the children until SIGTERM/SIGINT, restarting a crashed one with backoff."""
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            child.start()
        code = _tend(children, received)
        _stop(children, received[0] if received else signal.SIGTERM, received)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _tend(children: list[_Child], received: list[int]) -> int:
    while not received:
        now = time.monotonic()
        for child in children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.start()
                continue
            if child.running:
                continue
            returncode = child.process.returncode if child.process else None
            _kill_group(child)
            if now - child.started_at < QUICK_FAILURE_SECONDS:
                child.quick_failures += 1
            else:
                child.quick_failures = 1
            if child.quick_failures >= MAX_QUICK_FAILURES:
                _warn(f"{child.name} keeps failing (exit code {returncode}); stopping")
                return 1
            delay = min(MAX_BACKOFF_SECONDS, 2.0 ** (child.quick_failures - 1))
            _warn(f"{child.name} exited with code {returncode}; restarting in {delay:g}s")
            child.restart_at = now + delay
        time.sleep(0.2)
    return 0


def _stop(children: list[_Child], signum: int, received: list[int]) -> None:
    """Forwards the signal, waits, then kills what is left; a second signal kills at once."""
    for child in children:
        if child.running:
            child.process.send_signal(signum)
    deadline = time.monotonic() + STOP_TIMEOUT
    signals_seen = len(received)
    while any(child.running for child in children):
        if time.monotonic() >= deadline or len(received) > signals_seen:
            break
        time.sleep(0.1)
    for child in children:
        if child.running:
            _warn(f"{child.name} is still running; killing it")
            _kill_group(child)
            child.process.wait()


def _kill_group(child: _Child) -> None:
    """Kills what is left of a child's process group, e.g. the workers of a crashed server."""
    if child.process is not None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)


def _serve(host: str, port: int, workers: int) -> int:
    """The embedded default: web server, worker with the scheduler and the poller, supervised
    together."""
    _ensure_port_free(host, port)
    _warn_unapplied()
    _release_database()
    python = sys.executable
    children = [
        _Child("web", _granian_argv(host, port, workers)),
        _Child("worker", [python, "-m", "django", "run_huey", *_huey_args(None, scheduler=True)]),
        _Child("poller", [python, "-m", "onestop", "poller"]),
    ]
    _say(f"OneStop is running on {_url(host, port)} (press Ctrl-C to stop)")
    return _supervise(children)


def _warn_unapplied() -> None:
    pending = _unapplied_migrations()
    if pending:
        _warn(f"{len(pending)} database migrations are not applied; run: onestop migrate")


def _release_database() -> None:
    """Children open their own connections; the parent holds none while it supervises."""
    from django.db import connections

    connections.close_all()


# Commands -------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    _start_django()
    return _serve(args.host, args.port, args.workers)


def cmd_web(args: argparse.Namespace) -> int:
    _start_django()
    _ensure_port_free(args.host, args.port)
    _warn_unapplied()
    _release_database()
    _say(f"OneStop web is running on {_url(args.host, args.port)}")
    argv = _granian_argv(args.host, args.port, args.workers)
    # granian takes over this process: signals from systemd reach it directly.
    os.execv(argv[0], argv)  # noqa: S606 - our own interpreter and arguments
    return 0  # pragma: no cover


def cmd_worker(args: argparse.Namespace) -> int:
    _start_django()
    from django.core.management import call_command

    call_command("run_huey", *_huey_args(args.workers, args.scheduler))
    return 0


def _shard(value: str) -> tuple[int, int]:
    index, slash, count = value.partition("/")
    try:
        shard, shards = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError("must be i/N, e.g. 1/3") from None
    if not slash or shards < 1 or not 1 <= shard <= shards:
        raise argparse.ArgumentTypeError("must be i/N with 1 <= i <= N, e.g. 1/3")
    return shard - 1, shards


def cmd_poller(args: argparse.Namespace) -> int:
    _start_django()
    from django.conf import settings

    from onestop.monitoring.poller_process import poller_run

    shard, shards = args.shard
    trap_listen = settings.ONESTOP_SNMP_TRAP_LISTEN if args.traps is None else args.traps
    try:
        poller_run(
            shard=shard, shards=shards, concurrency=args.concurrency, trap_listen=trap_listen
        )
    except (OSError, ValueError) as exc:
        raise Failure(f"cannot receive SNMP traps on {trap_listen}: {exc}") from None
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    _start_django()
    with _as_cli():
        _migrate(args.verbose)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    _start_django()
    with _as_cli():
        problems = _problems()
    for problem in problems:
        _warn(problem)
    if problems:
        return 1
    _say("ok")
    return 0


def _problems() -> list[str]:
    """One line per thing that would stop OneStop working: settings, database, queue."""
    from django.core import checks

    from onestop.core import health

    problems = [
        f"settings: {message.id}: {message.msg.splitlines()[0]}"
        for message in checks.run_checks()
        if message.level >= checks.ERROR
    ]
    database = health.check_database()
    if database:
        problems.append(database)
    else:
        pending = _unapplied_migrations()
        if pending:
            problems.append(
                f"database: {len(pending)} migrations not applied; run: onestop migrate"
            )
    queue = health.check_queue()
    if queue:
        problems.append(queue)
    return problems


def cmd_createadmin(args: argparse.Namespace) -> int:
    _start_django()
    username, password = args.username, args.password
    if username is None or password is None:
        if not sys.stdin.isatty():
            raise Failure("createadmin: give --username and --password (no terminal to ask)", 2)
        username = username if username is not None else input("Username: ")
        if password is None:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password (again): ") != password:
                raise Failure("createadmin: the passwords do not match")
    if not username.strip():
        raise Failure("createadmin: the username is empty")
    if not password:
        raise Failure("createadmin: the password is empty")

    from django.core.exceptions import ValidationError

    from onestop.core import services
    from onestop.core.models import Role

    try:
        with _as_cli():
            user = services.user_create(
                actor=None,
                username=username,
                password=password,
                role=Role.ADMIN,
                email=args.email or "",
            )
    except ValidationError as exc:
        errors = getattr(exc, "error_dict", {})
        if any(error.code == "unique" for error in errors.get("username", [])):
            raise Failure(f"createadmin: user {username.strip()!r} already exists") from None
        raise Failure(f"createadmin: {_one_line(exc)}") from None
    _say(f"Created administrator {user.username!r}.")
    return 0


def cmd_generate_key(args: argparse.Namespace) -> int:
    # No configuration needed: this is how a broken ONESTOP_ENCRYPTION_KEY gets fixed.
    from cryptography.fernet import Fernet

    _say(Fernet.generate_key().decode())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.data_dir:
        os.environ["ONESTOP_DATA_DIR"] = args.data_dir
    os.environ.setdefault("ONESTOP_PUBLIC_URL", _url(args.host, args.port))
    config = _start_django()
    _ensure_port_free(args.host, args.port)
    from onestop.core import demo
    from onestop.monitoring.demo import seed_monitoring_demo
    from onestop.servicedesk.demo import seed_service_desk_demo

    with _as_cli():
        _migrate(verbose=False)
        if not args.no_seed:
            if demo.seed_demo(progress=_progress()):
                _say("Demo data seeded.")
            else:
                _say("The database already has customers; demo data not seeded again.")
            if seed_service_desk_demo(progress=_progress()):
                _say("Service-desk demo data seeded: contracts, calendars, SLA policies, tickets.")
            if seed_monitoring_demo(progress=_progress()):
                _say("Monitoring demo data seeded: devices with agents, a day of metrics.")
    _print_logins(_url(args.host, args.port), demo.demo_logins() if demo.demo_is_seeded() else None)
    _say(f"Data folder: {config.data_dir} (delete it to start afresh)")
    return _serve(args.host, args.port, args.workers)


def _print_logins(url: str, logins: Any) -> None:
    _say()
    _say(f"  Open {url}")
    if logins is None:
        _say("  and log in with an administrator (create one with: onestop createadmin).")
        _say()
        return
    from django.utils.translation import override

    from onestop.core.models import Role

    _say(f"  and log in as one of these; the password of all is: {logins.password}")
    _say()
    with override("en"):
        for account in logins.accounts:
            role = str(Role(account.role).label)
            if account.is_customer_admin:
                role = "Customer administrator"
            who = account.display_name
            if account.customer:
                who = f"{who}, {account.customer}"
            _say(f"    {account.username:<14}{role:<24}{who}")
    _say()


def cmd_backup(args: argparse.Namespace) -> int:
    _start_django()
    from onestop.core import backup

    try:
        with _as_cli():
            output = Path(args.output) if args.output else backup.default_backup_path()
            manifest = backup.backup_create(output=output, progress=_progress())
    except backup.BackupError as exc:
        raise Failure(f"backup: {exc}") from None
    _say(f"Backup written to {output} ({manifest.files} stored files).")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    _start_django()
    from onestop.core import backup

    try:
        with _as_cli():
            manifest = backup.backup_restore(
                archive=Path(args.path), replace=args.yes, progress=_progress()
            )
            _migrate(verbose=False)
    except backup.BackupError as exc:
        raise Failure(f"restore: {exc}") from None
    _say(f"Restored the backup made at {manifest.created_at} ({manifest.files} stored files).")
    if manifest.key_fingerprint != backup.key_fingerprint():
        _warn(
            "warning: the backup was made with another ONESTOP_ENCRYPTION_KEY; "
            "stored secrets will not decrypt until that key is set"
        )
    return 0


# Arguments ------------------------------------------------------------------------------------


def _port(value: str) -> int:
    port = int(value)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError("must be between 1 and 65535")
    return port


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_port, default=8000, help="port to listen on")
    parser.add_argument(
        "--workers", type=_positive, default=1, help="web server processes (default 1)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="OneStop: operations platform for IT service providers."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="web server, worker, scheduler and poller, supervised together"
    )
    _listen_options(serve)
    serve.set_defaults(handler=cmd_serve)

    web = sub.add_parser("web", help="only the web server (scale-out replica)")
    _listen_options(web)
    web.set_defaults(handler=cmd_web)

    worker = sub.add_parser("worker", help="only the job worker (scale-out replica)")
    worker.add_argument("--workers", type=_positive, help="worker threads (default 2)")
    worker.add_argument(
        "--scheduler",
        action="store_true",
        help="also run periodic jobs (exactly one worker of a deployment)",
    )
    worker.set_defaults(handler=cmd_worker)

    poller = sub.add_parser("poller", help="only the agentless poller (scale-out replica)")
    poller.add_argument(
        "--shard",
        type=_shard,
        default=(0, 1),
        metavar="i/N",
        help="poll the i-th of N hash ranges of the checks (default 1/1: all)",
    )
    poller.add_argument(
        "--concurrency", type=_positive, default=256, help="probes at a time (default 256)"
    )
    poller.add_argument(
        "--traps",
        metavar="HOST:PORT",
        help="receive SNMP traps there (default ONESTOP_SNMP_TRAP_LISTEN; '' for none)",
    )
    poller.set_defaults(handler=cmd_poller)

    migrate = sub.add_parser("migrate", help="create or upgrade the database tables")
    migrate.add_argument("-v", "--verbose", action="store_true", help="list each migration")
    migrate.set_defaults(handler=cmd_migrate)

    check = sub.add_parser("check", help="check settings, database and job queue")
    check.set_defaults(handler=cmd_check)

    admin = sub.add_parser("createadmin", help="create an administrator account")
    admin.add_argument("--username")
    admin.add_argument("--password", help="asked for on a terminal when left out")
    admin.add_argument("--email")
    admin.set_defaults(handler=cmd_createadmin)

    key = sub.add_parser("generate-key", help="print a new key for ONESTOP_ENCRYPTION_KEY")
    key.set_defaults(handler=cmd_generate_key)

    demo = sub.add_parser("demo", help="migrate, seed demo data and serve")
    _listen_options(demo)
    demo.add_argument("--data-dir", help="data folder (default: ONESTOP_DATA_DIR or ./var)")
    demo.add_argument("--no-seed", action="store_true", help="do not add the demo data")
    demo.set_defaults(handler=cmd_demo)

    backup = sub.add_parser("backup", help="write the database and stored files to a .tar.gz")
    backup.add_argument("--output", "-o", help="archive path (default: DATA_DIR/backups/...)")
    backup.set_defaults(handler=cmd_backup)

    restore = sub.add_parser("restore", help="replace the database and files with a backup")
    restore.add_argument("path", help="a .tar.gz written by onestop backup")
    restore.add_argument(
        "--yes", action="store_true", help="replace a database that already holds data"
    )
    restore.set_defaults(handler=cmd_restore)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `onestop` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except Failure as exc:
        _warn(str(exc))
        return exc.code
    except KeyboardInterrupt:
        return 130
