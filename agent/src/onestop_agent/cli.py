"""The `onestop-agent` command: enroll, run, install-service."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from onestop_agent import __version__, state, system
from onestop_agent.runner import Agent, Stop, clean_config
from onestop_agent.transport import Client, TransportError

LOCK_FILE = "agent.lock"

log = logging.getLogger("onestop_agent")


def fail(message: str) -> SystemExit:
    """A one-line error on stderr and exit status 1."""
    return SystemExit(f"onestop-agent: {message}")


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be above zero")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onestop-agent", description="Reports this machine's health and inventory to OneStop."
    )
    parser.add_argument("--version", action="version", version=f"onestop-agent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    state_help = "state folder (default /etc/onestop-agent as root, else ~/.config/onestop-agent)"

    enroll = commands.add_parser("enroll", help="register this machine with a OneStop server")
    enroll.add_argument("--server", required=True, help="server URL, e.g. https://onestop.example")
    enroll.add_argument("--token", required=True, help="the site's enrolment token")
    enroll.add_argument("--state-dir", type=Path, help=state_help)
    enroll.add_argument("--ca-bundle", type=Path, help="PEM file of CAs to trust for the server")
    enroll.add_argument("--proxy", help="HTTP(S) proxy URL (default: the *_proxy variables)")

    run = commands.add_parser("run", help="report every interval until stopped")
    run.add_argument("--state-dir", type=Path, help=state_help)
    run.add_argument("--once", action="store_true", help="send one report (and the buffer), exit")
    # Only for bench/agent_cost.py: a short interval instead of the server's.
    run.add_argument("--interval-override", type=positive_float, help=argparse.SUPPRESS)

    service = commands.add_parser("install-service", help="install and start the systemd service")
    service.add_argument("--state-dir", type=Path, help=state_help)
    service.add_argument("--dry-run", action="store_true", help="print the unit, change nothing")
    return parser


def enroll(args: argparse.Namespace, platform: system.Platform) -> None:
    parts = urlsplit(args.server)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise fail(f"--server must be an http:// or https:// URL, not {args.server!r}")
    state_dir: Path = args.state_dir or state.default_state_dir()
    state.ensure_dir(state_dir)
    try:
        bundle = str(args.ca_bundle) if args.ca_bundle else None
        client = Client(args.server, ca_bundle=bundle, proxy=args.proxy)
    except OSError as exc:
        raise fail(f"--ca-bundle {args.ca_bundle} is not a readable PEM file: {exc}") from None
    with platform.exclusive_lock(state_dir / LOCK_FILE):
        os_info = platform.os_info()
        body = {
            "token": args.token,
            "hostname": socket.gethostname(),
            "machine_id": platform.machine_id(),
            "os": os_info["pretty"],
            "agent_version": __version__,
        }
        try:
            resp = client.post("/enroll", body)
        except TransportError as exc:
            hint = " (is the server's CA in --ca-bundle?)" if exc.tls else ""
            raise fail(f"enrolment failed: {exc}{hint}") from None
        if resp.status == 401 or resp.code == "token_invalid":
            raise fail("enrolment failed: the token is invalid or expired (create a new one)")
        if (
            resp.status not in (200, 201)
            or "agent_id" not in resp.body
            or "secret" not in resp.body
        ):
            detail = f": {resp.detail}" if resp.detail else ""
            raise fail(f"enrolment failed: server answered {resp.status}{detail}")
        previous_seq = 0
        with contextlib.suppress(state.StateError):
            previous_seq = state.load(state_dir).seq
        ca_bundle = None
        if args.ca_bundle:
            # A copy in the state folder outlives the file the operator passed.
            ca_bundle = str((state_dir / state.CA_BUNDLE_FILE).resolve())
            state.write_atomic(Path(ca_bundle), args.ca_bundle.read_bytes(), mode=0o644)
        enrolled = state.State(
            server=client.server,
            agent_id=int(resp.body["agent_id"]),
            secret=str(resp.body["secret"]),
            # Reports still in the spool keep their numbers; new ones must come after them.
            seq=previous_seq,
            ca_bundle=ca_bundle,
            proxy=args.proxy,
            config=clean_config(resp.body.get("config") or {}),
        )
        state.save(state_dir, enrolled)
    device = resp.body.get("device_id")
    print(f"enrolled as agent {enrolled.agent_id} (device {device}); state in {state_dir}")


def run(args: argparse.Namespace, platform: system.Platform) -> int:
    state_dir: Path = args.state_dir or state.default_state_dir()
    try:
        agent_state = state.load(state_dir)
    except state.StateError as exc:
        raise fail(str(exc)) from None
    with platform.exclusive_lock(state_dir / LOCK_FILE):
        try:
            agent = Agent(
                state_dir, agent_state, platform, interval_override=args.interval_override
            )
        except OSError as exc:
            raise fail(f"cannot start: {exc}") from None
        log.info(
            "onestop-agent %s reporting to %s as agent %s",
            __version__,
            agent_state.server,
            agent_state.agent_id,
        )
        try:
            if args.once:
                if agent.run_once():
                    return 0
                log.error("%d report(s) kept in the buffer for the next run", len(agent.spool))
                return 1
            agent.run_forever()
        except Stop as exc:
            log.error("stopped: %s", exc)
            return system.STOP_EXIT_STATUS
    return 0


def self_command() -> list[str]:
    """How a service manager starts this same agent: the frozen binary, script, or module."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    script = Path(sys.argv[0])
    if script.name == "onestop-agent" and script.is_file():
        return [str(script.resolve())]
    return [sys.executable, "-m", "onestop_agent"]


def install_service(args: argparse.Namespace, platform: system.Platform) -> None:
    state_dir: Path = (args.state_dir or state.default_state_dir()).resolve()
    path, text = platform.service_unit(self_command(), state_dir)
    if args.dry_run:
        print(f"# {path}")
        print(text, end="")
        return
    if os.geteuid() != 0:
        raise fail("install-service must run as root (or pass --dry-run)")
    try:
        state.load(state_dir)
    except state.StateError as exc:
        raise fail(str(exc)) from None
    try:
        platform.install_service(path, text)
    except OSError as exc:
        raise fail(f"installing {path} failed: {exc}") from None
    print(f"installed {path}; onestop-agent is running and starts at boot")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    platform = system.current()
    try:
        if args.command == "enroll":
            enroll(args, platform)
        elif args.command == "run":
            sys.exit(run(args, platform))
        else:
            install_service(args, platform)
    except system.AlreadyRunning as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        sys.exit(130)
