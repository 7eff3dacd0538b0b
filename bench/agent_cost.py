"""Cost of the agent's run loop: resident memory and CPU time of `onestop-agent run`.

Goal (issue: agent): < 40 MB RSS and < 1 % of one core at the default 60 s interval. Starts a
minimal protocol receiver on 127.0.0.1, enrols a throwaway agent with it, runs
`onestop-agent run --interval-override S` and, after its first report, samples the process
tree's RSS every second and its CPU seconds for a bounded time. The CPU per report, scaled to
one report a minute, gives the share of a core at the default interval.

Run: .venv/bin/python bench/agent_cost.py [--seconds 60] [--interval 5] [--agent PATH]
(--agent dist binary: agent/dist/onestop-agent, after `make agent-binary`)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

GOAL_RSS_MB = 40.0
GOAL_CORE_PERCENT = 1.0
DEFAULT_INTERVAL = 60.0
CONFIG = {
    "version": "bench",
    "interval": 60,
    "inventory_interval": 21600,
    "watch_services": ["ssh"],
    "watch_processes": ["sshd"],
}


class Receiver(BaseHTTPRequestHandler):
    """Answers the agent API minimally: enrol, config, inventory, report."""

    reports = 0

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the figures are the output."""

    def answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.answer(200, CONFIG)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.endswith("/enroll"):
            self.answer(201, {"agent_id": 1, "secret": "bench", "device_id": 1, "config": CONFIG})
        elif self.path.endswith("/report"):
            Receiver.reports += 1
            self.answer(200, {"accepted": 1, "rejected": 0, "config_version": "bench"})
        else:
            self.answer(200, {"changes": 0})


def tree(proc: psutil.Process) -> list[psutil.Process]:
    """The agent and its children (a PyInstaller one-file binary runs as two processes)."""
    return [proc, *proc.children(recursive=True)]


def cpu_seconds(proc: psutil.Process) -> float:
    total = 0.0
    for p in tree(proc):
        times = p.cpu_times()
        total += times.user + times.system
    return total


def rss_bytes(proc: psutil.Process) -> int:
    return sum(p.memory_info().rss for p in tree(proc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time")
    parser.add_argument("--interval", type=float, default=5.0, help="report interval for the run")
    parser.add_argument(
        "--agent", default=str(Path(sys.executable).parent / "onestop-agent"), help="agent command"
    )
    args = parser.parse_args()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    server = f"http://127.0.0.1:{httpd.server_address[1]}"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}

    with tempfile.TemporaryDirectory() as state_dir:
        enroll = ["enroll", "--server", server, "--token", "bench", "--state-dir", state_dir]
        run = ["run", "--state-dir", state_dir, "--interval-override", str(args.interval)]
        subprocess.run([args.agent, *enroll], check=True, env=env, stdout=subprocess.DEVNULL)
        started = time.monotonic()
        agent = subprocess.Popen([args.agent, *run], env=env, stderr=subprocess.DEVNULL)
        try:
            proc = psutil.Process(agent.pid)
            while Receiver.reports == 0:
                if agent.poll() is not None:
                    sys.exit(f"the agent exited with status {agent.returncode}")
                time.sleep(0.05)
            startup_cpu = cpu_seconds(proc)
            startup_wall = time.monotonic() - started
            reports_before = Receiver.reports
            cpu_before = cpu_seconds(proc)
            peak_rss = rss_bytes(proc)
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                time.sleep(1.0)
                peak_rss = max(peak_rss, rss_bytes(proc))
            cpu = cpu_seconds(proc) - cpu_before
            reports = Receiver.reports - reports_before
        finally:
            agent.terminate()
            agent.wait(timeout=10)
    httpd.shutdown()

    per_report = cpu / max(reports, 1)
    core_percent = 100.0 * per_report / DEFAULT_INTERVAL
    rss_mb = peak_rss / 1024 / 1024
    print(f"agent: {args.agent}")
    print(f"start-up to first report: {startup_wall:.2f} s wall, {startup_cpu:.3f} s CPU")
    print(f"measured {args.seconds:.0f} s at a {args.interval:g} s interval: {reports} reports")
    print(f"CPU: {cpu:.3f} s in total, {per_report * 1000:.1f} ms per report")
    print(
        f"share of one core at the default {DEFAULT_INTERVAL:.0f} s interval: "
        f"{core_percent:.3f} % (goal < {GOAL_CORE_PERCENT} %, ratio "
        f"{core_percent / GOAL_CORE_PERCENT:.3f})"
    )
    print(
        f"peak RSS: {rss_mb:.1f} MB (goal < {GOAL_RSS_MB:.0f} MB, ratio {rss_mb / GOAL_RSS_MB:.2f})"
    )


if __name__ == "__main__":
    main()
