"""The run loop: collect each interval into the spool, send oldest first, back off on outages."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from onestop_agent import __version__, state
from onestop_agent import inventory as inventory_mod
from onestop_agent.collectors import Collector
from onestop_agent.spool import Spool
from onestop_agent.system import Platform
from onestop_agent.transport import Client, Response, TransportError

log = logging.getLogger("onestop_agent")

SPOOL_DIR = "spool"
MIN_INTERVAL = 10
MIN_INVENTORY_INTERVAL = 300
BACKOFF_BASE = 10.0
BACKOFF_CAP = 300.0
# Answers that will not change on retry: the report is discarded so it cannot block the rest.
REFUSED = frozenset({400, 413, 422})
# cpu.percent and the NIC rates need a baseline; `--once` waits this long after priming it.
MIN_SAMPLE_SPAN = 1.0


class Stop(Exception):
    """The server refuses this agent (revoked credential or cloned machine): stop sending."""


class Retry(Exception):
    """The server is unreachable or busy; keep buffering and try again after a back-off."""


def jitter(seconds: float) -> float:
    """±10 %, so a fleet started together does not report in lockstep."""
    return seconds * random.uniform(0.9, 1.1)  # noqa: S311 - spreading load, not a secret


class Backoff:
    """Exponential delay between attempts after failures: 10 s, 20 s, 40 s … at most 5 minutes."""

    def __init__(self, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def failure(self) -> float:
        self.failures += 1
        return min(self.cap, jitter(self.base * 2 ** min(self.failures - 1, 16)))

    def success(self) -> None:
        self.failures = 0


def clean_config(raw: dict[str, Any]) -> dict[str, Any]:
    """The server's configuration with types checked and floors applied to the intervals."""
    config = dict(state.DEFAULT_CONFIG)
    config["version"] = str(raw.get("version", ""))
    for key, floor in (("interval", MIN_INTERVAL), ("inventory_interval", MIN_INVENTORY_INTERVAL)):
        try:
            config[key] = max(floor, int(raw.get(key, config[key])))
        except (TypeError, ValueError):
            log.warning("ignoring invalid %s in server config: %r", key, raw.get(key))
    for key in ("watch_services", "watch_processes"):
        value = raw.get(key, [])
        if isinstance(value, list):
            config[key] = [str(item) for item in value if str(item)]
    return config


class Agent:
    """One enrolled agent: its state, spool, collector and connection to the server."""

    def __init__(
        self,
        state_dir: Path,
        agent_state: state.State,
        platform: Platform,
        *,
        interval_override: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        spool: Spool | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.state = agent_state
        self.platform = platform
        self.interval_override = interval_override
        self.clock = clock
        self.spool = spool if spool is not None else Spool(state_dir / SPOOL_DIR)
        # A kept spool (e.g. across a re-enrolment) must replay before any new report.
        self.state.seq = max(self.state.seq, self.spool.max_seq())
        self.client = Client(
            agent_state.server,
            ca_bundle=agent_state.ca_bundle,
            proxy=agent_state.proxy,
            authorization=agent_state.authorization,
        )
        self.collector = Collector(platform)
        self.started = clock()
        self.backoff = Backoff()
        self.next_attempt = 0.0
        self.config_due = True
        self.inventory_at = 0.0

    @property
    def interval(self) -> float:
        if self.interval_override:
            return self.interval_override
        return float(self.state.config["interval"])

    def new_report(self) -> dict[str, Any]:
        """Collects samples into a new report; its seq is saved before the report is spooled."""
        self.state.seq += 1
        state.save(self.state_dir, self.state)
        config = self.state.config
        return {
            "report_id": uuid.uuid4().hex,
            "seq": self.state.seq,
            "heartbeat": {
                "uptime": int(time.time() - psutil.boot_time()),
                "agent_version": __version__,
            },
            "samples": self.collector.collect(
                watch_services=config["watch_services"],
                watch_processes=config["watch_processes"],
            ),
        }

    def cycle(self, *, force: bool = False) -> bool:
        """One interval: spool a new report, then talk to the server unless backing off."""
        self.spool.add(self.new_report())
        return self.exchange(force=force)

    def exchange(self, *, force: bool = False) -> bool:
        """Config, inventory and buffered reports; True when everything due got through.

        Raises Stop when the server refuses this agent.
        """
        if not force and self.clock() < self.next_attempt:
            return False
        try:
            if self.config_due:
                self.pull_config()
            if self.clock() >= self.inventory_at:
                self.send_inventory()
            self.flush()
            if self.config_due:
                self.pull_config()
        except Retry as exc:
            delay = self.backoff.failure()
            self.next_attempt = self.clock() + delay
            log.warning(
                "%s; %d report(s) buffered, next try in %.0f s", exc, len(self.spool), delay
            )
            return False
        if self.backoff.failures:
            log.info("server reachable again; buffer sent")
        self.backoff.success()
        return True

    def next_exchange(self) -> float:
        """When talking to the server is both useful and allowed by the back-off."""
        due = self.clock() if len(self.spool) or self.config_due else self.inventory_at
        return max(self.next_attempt, due)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Response:
        """One request, with the answers every endpoint shares turned into Stop or Retry."""
        try:
            resp = self.client.request(method, path, body)
        except TransportError as exc:
            raise Retry(str(exc)) from None
        if resp.status == 401:
            raise Stop(
                f"the server rejected this agent's credential (agent {self.state.agent_id}): "
                "it is invalid or revoked; enroll the machine again with a new token"
            )
        if resp.status == 409 and resp.code == "reenroll":
            raise Stop(
                "the server saw this agent's report numbers from another machine: this machine "
                "looks like a clone of an enrolled one and must be enrolled again with a new "
                f"token (reports are kept in {self.spool.path})"
            )
        if resp.status == 429 or resp.status >= 500:
            raise Retry(f"server answered {resp.status} to {method} {path}")
        return resp

    def pull_config(self) -> None:
        resp = self.call("GET", "/config")
        self.config_due = False
        if resp.status != 200:
            log.error(
                "config pull refused (%s %s); keeping the current one", resp.status, resp.detail
            )
            return
        config = clean_config(resp.body)
        if config != self.state.config:
            log.info("configuration %s applied", config["version"] or "(unversioned)")
            self.state.config = config
            state.save(self.state_dir, self.state)

    def send_inventory(self) -> None:
        resp = self.call("POST", "/inventory", inventory_mod.collect(self.platform))
        # A refused inventory would be refused again at once; wait for the next period either way.
        self.inventory_at = self.clock() + float(self.state.config["inventory_interval"])
        if resp.status != 200:
            log.error("inventory refused (%s %s)", resp.status, resp.detail)

    def flush(self) -> None:
        """Sends the spool oldest first; each report is deleted only after its 200."""
        while (report := self.spool.oldest()) is not None:
            dropped = self.spool.dropped
            report["dropped"] = dropped
            report["sent_at"] = round(time.time(), 3)
            resp = self.call("POST", "/report", report)
            if resp.status in REFUSED:
                log.error(
                    "server refused report %s (%s %s); discarded",
                    report["seq"],
                    resp.status,
                    resp.detail,
                )
                self.spool.ack(report["seq"])
                self.spool.add_dropped(1)
                continue
            if resp.status != 200:
                raise Retry(f"server answered {resp.status} to report {report['seq']}")
            self.spool.ack(report["seq"])
            if dropped:
                self.spool.clear_dropped(dropped)
            version = resp.body.get("config_version")
            if version is not None and str(version) != self.state.config["version"]:
                self.config_due = True

    def run_once(self) -> bool:
        """Start-up exchange, one report, and everything buffered; True if all got through."""
        self.exchange(force=True)
        wait = MIN_SAMPLE_SPAN - (self.clock() - self.started)
        if wait > 0:
            time.sleep(wait)
        return self.cycle(force=True)

    def run_forever(self) -> None:
        """Collects every interval whatever the server does; sends whenever back-off allows."""
        self.exchange()
        next_collect = self.clock() + jitter(self.interval)
        while True:
            now = self.clock()
            if now >= next_collect:
                self.cycle()
                next_collect = self.clock() + jitter(self.interval)
            elif now >= self.next_exchange():
                self.exchange()
            time.sleep(max(0.0, min(next_collect, self.next_exchange()) - self.clock()))
