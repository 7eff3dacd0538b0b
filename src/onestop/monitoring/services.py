"""Every write of the agent side: enrolment tokens, enrolment, reports, inventory, config.

Agents are authenticated by `agent_authenticate`; a report is acknowledged only after the
transaction that stored it committed (the API returns after these services return).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from onestop.assets import services as asset_services
from onestop.assets.models import Device
from onestop.core import audit
from onestop.core.errors import ConflictError
from onestop.core.models import Site, User
from onestop.core.services import hash_token
from onestop.metrics import services as metric_services
from onestop.monitoring.models import Agent, AgentReport, EnrollmentToken

TOKEN_PREFIX = "et_"  # noqa: S105 - the visible start of a token, not a secret
TOKEN_DAYS_DEFAULT = 7
TOKEN_DAYS_MAX = 90
# What agents may report (docs/agent-protocol.md); anything else is refused and counted.
AGENT_METRICS = frozenset(
    {
        "cpu.percent",
        "load.1",
        "load.5",
        "load.15",
        "mem.used_percent",
        "mem.available_bytes",
        "swap.used_percent",
        "disk.used_percent",
        "disk.free_bytes",
        "disk.inodes_used_percent",
        "net.rx_bps",
        "net.tx_bps",
        "net.rx_errors",
        "net.tx_errors",
        "uptime.seconds",
        "proc.count",
        "service.up",
        "process.up",
    }
)
FUTURE_LIMIT = dt.timedelta(minutes=10)
PAST_LIMIT = dt.timedelta(days=7)
MAX_SAMPLES = 20_000
LABEL_RE = re.compile(r"^[a-z_]{1,32}$")
NAME_LIST_MAX = 50


# Enrolment tokens -----------------------------------------------------------------------------


@transaction.atomic
def enrollment_token_create(
    *, actor: User, site: Site, name: str = "", days: int = TOKEN_DAYS_DEFAULT
) -> tuple[EnrollmentToken, str]:
    """A token for enrolling agents at a site; returns it with the plain token (shown once)."""
    if not 1 <= days <= TOKEN_DAYS_MAX:
        raise ValidationError({"days": _("Between 1 and %(max)s days.") % {"max": TOKEN_DAYS_MAX}})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(24)
    token = EnrollmentToken(
        site=site,
        name=name.strip(),
        prefix=raw[:10],
        token_hash=hash_token(raw),
        expires_at=timezone.now() + dt.timedelta(days=days),
        created_by=actor if actor and actor.pk else None,
    )
    token.full_clean(exclude=["site", "created_by"])
    token.save()
    audit.record_created(actor=actor, obj=token)
    return token, raw


@transaction.atomic
def enrollment_token_revoke(*, actor: User, token: EnrollmentToken) -> EnrollmentToken:
    """Stops a token from enrolling more agents (those enrolled keep working)."""
    if token.revoked_at is None:
        before = audit.snapshot(token)
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record_updated(actor=actor, obj=token, before=before)
    return token


# Enrolment and credentials ---------------------------------------------------------------------


def _short(value: Any, limit: int) -> str:
    return str(value or "").strip()[:limit]


@transaction.atomic
def agent_enroll(
    *,
    token: str,
    hostname: str,
    machine_id: str = "",
    os: str = "",
    agent_version: str = "",
) -> tuple[Agent, str]:
    """Enrols an agent with a site's token: a new device at that site and the agent's secret
    (returned once; only its hash is kept). Each enrolment is a new device, so a cloned machine
    that enrols again is never merged into the original."""
    found = (
        EnrollmentToken.objects.select_for_update()
        .select_related("site__customer")
        .filter(token_hash=hash_token(token or ""))
        .first()
    )
    if found is None or not found.is_usable():
        raise PermissionDenied("token_invalid")
    name = _short(hostname, 200) or _("Unnamed device")
    device = asset_services.device_for_site(site=found.site, name=name)
    if os:
        asset_services.device_update(actor=None, device=device, os_name=_short(os, 100))
    secret = secrets.token_urlsafe(32)
    agent = Agent.objects.create(
        device=device,
        secret_hash=hash_token(secret),
        machine_id=_short(machine_id, 64),
        hostname=_short(hostname, 255),
        agent_version=_short(agent_version, 20),
        enrolled_with=found,
    )
    EnrollmentToken.objects.filter(pk=found.pk).update(uses=F("uses") + 1)
    audit.record_created(actor=None, obj=agent)
    return agent, secret


def agent_authenticate(*, agent_id: Any, secret: str) -> Agent | None:
    """The enrolled, unrevoked agent with that secret, else None."""
    try:
        agent = Agent.objects.select_related("device").get(pk=int(agent_id))
    except (Agent.DoesNotExist, TypeError, ValueError):
        return None
    if agent.revoked_at is not None:
        return None
    if not secrets.compare_digest(agent.secret_hash, hash_token(secret or "")):
        return None
    return agent


@transaction.atomic
def agent_rotate(*, agent: Agent) -> str:
    """A new secret for the agent; the old one stops working at once."""
    secret = secrets.token_urlsafe(32)
    Agent.objects.filter(pk=agent.pk).update(secret_hash=hash_token(secret))
    audit.record(actor=None, action="update", obj=agent, changes={"secret": ["••••••", "••••••"]})
    return secret


@transaction.atomic
def agent_revoke(*, actor: User, agent: Agent) -> Agent:
    """Refuses everything the agent sends from now on (e.g. a stolen laptop)."""
    if agent.revoked_at is None:
        before = audit.snapshot(agent)
        agent.revoked_at = timezone.now()
        agent.save(update_fields=["revoked_at"])
        audit.record_updated(actor=actor, obj=agent, before=before)
    return agent


@transaction.atomic
def agent_config_set(
    *,
    actor: User,
    agent: Agent,
    interval: int | None = None,
    watch_services: list[str] | None = None,
    watch_processes: list[str] | None = None,
) -> Agent:
    """What the agent must report and watch; it pulls the change with its next report."""
    before = audit.snapshot(agent)
    errors = {}
    if interval is not None:
        if not 15 <= interval <= 3600:
            errors["interval"] = _("Between 15 seconds and one hour.")
        agent.interval = interval
    for field, names in (("watch_services", watch_services), ("watch_processes", watch_processes)):
        if names is None:
            continue
        cleaned = sorted({_short(name, 100) for name in names if _short(name, 100)})
        if len(cleaned) > NAME_LIST_MAX:
            errors[field] = _("At most %(max)s names.") % {"max": NAME_LIST_MAX}
        setattr(agent, field, cleaned)
    if errors:
        raise ValidationError(errors)
    agent.save()
    audit.record_updated(actor=actor, obj=agent, before=before)
    return agent


# Reports ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportResult:
    accepted: int
    rejected: int
    config_version: str  # the agent's config as of this report, so it knows when to pull
    duplicate: bool = False


def _clean_samples(
    agent: Agent, samples: Any, now: dt.datetime
) -> tuple[list[tuple[int, str, dict[str, str], float, float]], int]:
    """The samples fit to store, and how many were refused (unknown metric, time far off,
    not a finite number, malformed)."""
    rows: list[tuple[int, str, dict[str, str], float, float]] = []
    rejected = 0
    earliest, latest = (now - PAST_LIMIT).timestamp(), (now + FUTURE_LIMIT).timestamp()
    for sample in samples:
        try:
            at, name, labels, value = sample
            at, value = float(at), float(value)
        except (TypeError, ValueError):
            rejected += 1
            continue
        if (
            name not in AGENT_METRICS
            or not isinstance(labels, dict)
            or not all(LABEL_RE.match(str(k)) and isinstance(v, str) for k, v in labels.items())
            or not math.isfinite(value)
            or not earliest <= at <= latest
        ):
            rejected += 1
            continue
        rows.append((agent.device_id, name, {k: v[:200] for k, v in labels.items()}, at, value))
    return rows, rejected


def agent_report(
    *,
    agent: Agent,
    report_id: str,
    seq: int,
    samples: list[Any],
    dropped: int = 0,
    heartbeat: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> ReportResult:
    """Stores one report exactly once. A report seen before (same id) is acknowledged again
    without storing anything; a new report whose sequence does not move forward comes from a
    copy of this agent (a cloned machine) and is refused, so that copy enrols on its own."""
    now = now or timezone.now()
    if len(samples) > MAX_SAMPLES:
        raise ValidationError(
            {"samples": _("At most %(max)s samples per report.") % {"max": MAX_SAMPLES}}
        )
    try:
        with transaction.atomic():
            locked = Agent.objects.select_for_update().get(pk=agent.pk)
            seen = AgentReport.objects.filter(agent=locked, report_id=report_id).first()
            if seen is not None:
                return ReportResult(
                    seen.accepted, seen.rejected, locked.config_version, duplicate=True
                )
            if seq <= locked.last_seq:
                raise ConflictError("reenroll")
            rows, rejected = _clean_samples(locked, samples, now)
            accepted = metric_services.samples_write(samples=rows) if rows else 0
            AgentReport.objects.create(
                agent=locked, report_id=report_id, seq=seq, accepted=accepted, rejected=rejected
            )
            updates: dict[str, Any] = {
                "last_seq": seq,
                "last_seen_at": now,
                "dropped_reports": F("dropped_reports") + max(int(dropped), 0),
                "rejected_samples": F("rejected_samples") + rejected,
            }
            version = _short((heartbeat or {}).get("agent_version"), 20)
            if version:
                updates["agent_version"] = version
            Agent.objects.filter(pk=locked.pk).update(**updates)
            return ReportResult(accepted, rejected, locked.config_version)
    except IntegrityError:
        # The same report raced in twice on two connections: the other one stored it.
        seen = AgentReport.objects.get(agent=agent, report_id=report_id)
        return ReportResult(seen.accepted, seen.rejected, agent.config_version, duplicate=True)


@transaction.atomic
def agent_inventory(
    *, agent: Agent, inventory: dict[str, Any], now: dt.datetime | None = None
) -> int:
    """Stores the agent's inventory on its device and records what changed."""
    now = now or timezone.now()
    device = Device.objects.select_for_update().get(pk=agent.device_id)
    changes = asset_services.device_inventory_apply(device=device, inventory=inventory, at=now)
    Agent.objects.filter(pk=agent.pk).update(
        last_seen_at=now, hostname=_short(inventory.get("hostname"), 255) or agent.hostname
    )
    return changes
