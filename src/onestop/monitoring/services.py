"""Every write of the agent side: enrolment tokens, enrolment, reports, inventory, config.

Agents are authenticated by `agent_authenticate`; a report is acknowledged only after the
transaction that stored it committed (the API returns after these services return).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import logging
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from onestop.assets import services as asset_services
from onestop.assets.models import Device
from onestop.core import audit, crypto
from onestop.core.errors import ConflictError
from onestop.core.models import Customer, DomainEvent, EventCursor, Site, User
from onestop.core.services import hash_token, object_delete
from onestop.metrics import selectors as metric_selectors
from onestop.metrics import services as metric_services
from onestop.monitoring import discovery, evaluation, selectors
from onestop.monitoring.models import (
    DEFINITION_FIELDS,
    RESULT_FIELDS,
    Agent,
    AgentReport,
    Check,
    CheckDefinition,
    CheckStateChange,
    CheckTemplate,
    DiscoveryJob,
    EnrollmentToken,
    MaintenanceWindow,
    SnmpCredential,
    SnmpTrap,
)
from onestop.monitoring.poller import Outcome
from onestop.monitoring.probes.base import Note, note
from onestop.monitoring.traps import ReceivedTrap

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
        agent = Agent.objects.get(pk=int(agent_id))
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
    rows, rejected = _clean_samples(agent, samples, now)
    updates: dict[str, Any] = {
        "last_seq": seq,
        "last_seen_at": now,
        "dropped_reports": F("dropped_reports") + max(int(dropped), 0),
        "rejected_samples": F("rejected_samples") + rejected,
    }
    version = _short((heartbeat or {}).get("agent_version"), 20)
    if version:
        updates["agent_version"] = version
    try:
        with transaction.atomic():
            # One statement locks the agent's row, checks that the sequence moves forward and
            # records the heartbeat (a report costs few round trips: 10,000 agents send 170 a
            # second). A report stored before, retried, matches no row, and neither does a
            # new report whose sequence is not ahead: that one comes from a clone.
            if not Agent.objects.filter(pk=agent.pk, last_seq__lt=seq).update(**updates):
                seen = AgentReport.objects.filter(agent=agent, report_id=report_id).first()
                if seen is None:
                    raise ConflictError("reenroll")
                return ReportResult(
                    seen.accepted, seen.rejected, agent.config_version, duplicate=True
                )
            accepted = metric_services.samples_write(samples=rows) if rows else 0
            AgentReport.objects.create(
                agent=agent, report_id=report_id, seq=seq, accepted=accepted, rejected=rejected
            )
    except IntegrityError:
        # The same report raced in twice on two connections: the other one stored it.
        seen = AgentReport.objects.get(agent=agent, report_id=report_id)
        return ReportResult(seen.accepted, seen.rejected, agent.config_version, duplicate=True)
    # The version as authentication read it: a change made since reaches the agent with its
    # next report.
    return ReportResult(accepted, rejected, agent.config_version)


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


# Checks ---------------------------------------------------------------------------------------

INTERVAL_MIN, INTERVAL_MAX = 10, 86_400
TIMEOUT_MAX = 60
RETRIES_MAX = 5
CONSECUTIVE_MAX = 100
HOST_RE = re.compile(r"^[A-Za-z0-9_.:\-\[\]%]{1,255}$")
OID_RE = re.compile(r"^\.?\d+(\.\d+)+$")
# What each probe accepts in `params` (the keyword arguments of onestop.monitoring.probes);
# credentials are not among them: they belong in encrypted storage, never in plain JSON.
PROBE_PARAMS: dict[str, dict[str, str]] = {
    "ping": {"host": "host", "count": "count", "payload_size": "payload_size"},
    "tcp": {"host": "host", "port": "port", "send": "text", "expect": "text"},
    "http": {
        "url": "url",
        "method": "method",
        "expected_status": "statuses",
        "body_match": "text",
        "body_regex": "bool",
        "headers": "headers",
        "verify_tls": "bool",
        "check_cert": "bool",
    },
    "dns": {
        "server": "host",
        "name": "host",
        "record_type": "record_type",
        "port": "port",
        "expected": "texts",
    },
    "snmp_uptime": {"host": "host", "port": "port"},
    "snmp_interfaces": {"host": "host", "port": "port"},
    "snmp_cpu_memory": {"host": "host", "port": "port"},
    "snmp_oid": {"host": "host", "port": "port", "oid": "oid"},
}
PROBE_REQUIRED = {"tcp": ("port",), "http": ("url",), "dns": ("name",), "snmp_oid": ("oid",)}
# The parameter naming the target; when it is left out the poller uses the device's address.
PROBE_TARGET = {"http": None, "dns": "server"}
RECORD_TYPES = frozenset({"A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT"})
# Changing one of these changes what results mean: the running count starts over.
RULE_FIELDS = frozenset(
    {"metric", "labels", "probe", "params", "mode", "direction"}
    | {"warning", "critical", "recovery", "hysteresis", "consecutive"}
)


def _param_problem(kind: str, value: Any) -> str | None:
    """Why a probe parameter is unusable, or None."""
    if kind == "host":
        ok = isinstance(value, str) and HOST_RE.match(value) is not None
        return None if ok else _("A host name or IP address.")
    if kind == "port":
        ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535
        return None if ok else _("A port from 1 to 65535.")
    if kind in ("count", "payload_size"):
        high = 20 if kind == "count" else 1472
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value <= high
        return None if ok else _("A whole number from 1 to %(max)s.") % {"max": high}
    if kind == "url":
        ok = isinstance(value, str) and re.match(r"^https?://[^\s/]+", value) is not None
        return None if ok else _("An http:// or https:// address.")
    if kind == "method":
        return None if value in ("GET", "HEAD", "POST") else _("GET, HEAD or POST.")
    if kind == "statuses":
        ok = isinstance(value, list) and all(
            isinstance(code, int) and 100 <= code <= 599 for code in value
        )
        return None if ok and value else _("A list of HTTP status codes.")
    if kind == "bool":
        return None if isinstance(value, bool) else _("True or false.")
    if kind == "headers":
        ok = isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
        return None if ok else _("Header names with text values.")
    if kind == "record_type":
        return None if value in RECORD_TYPES else _("A DNS record type such as A or MX.")
    if kind == "texts":
        ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        return None if ok else _("A list of texts.")
    if kind == "oid":
        ok = isinstance(value, str) and OID_RE.match(value) is not None
        return None if ok else _("A numeric OID such as 1.3.6.1.2.1.1.3.0.")
    return None if isinstance(value, str) and 0 < len(value) <= 500 else _("A short text.")


def _credential_errors(obj: CheckDefinition, device: Device | None) -> dict[str, str]:
    """SNMP probes need credentials that may be used for the device (or template's customer);
    other probes take none."""
    credential = obj.snmp_credential
    if not obj.probe.startswith("snmp_"):
        return (
            {"snmp_credential": _("Only SNMP probes use SNMP credentials.")} if credential else {}
        )
    if credential is None:
        return {"snmp_credential": _("Choose the SNMP credentials for this probe.")}
    customer_id = device.customer_id if device is not None else getattr(obj, "customer_id", None)
    if credential.customer_id is not None and credential.customer_id != customer_id:
        return {"snmp_credential": _("These SNMP credentials belong to another customer.")}
    return {}


def _probe_errors(obj: CheckDefinition, device: Device | None) -> dict[str, str]:
    """What is wrong with the agent metric or probe of a check or template."""
    errors: dict[str, str] = {}
    if obj.kind == CheckDefinition.Kind.AGENT:
        if obj.probe or obj.params:
            errors["probe"] = _("Only poller checks have a probe.")
        if obj.metric not in AGENT_METRICS:
            errors["metric"] = _("Not a metric agents report.")
    elif not obj.probe:
        errors["probe"] = _("Choose the probe the poller runs.")
    else:
        accepted = PROBE_PARAMS[obj.probe]
        params = obj.params if isinstance(obj.params, dict) else None
        if params is None:
            return {"params": _("Probe parameters are names with values.")}
        problems = [
            f"{key}: " + _("not a parameter of this probe.")
            for key in params
            if key not in accepted
        ]
        problems += [
            f"{key}: {problem}"
            for key, value in params.items()
            if key in accepted and (problem := _param_problem(accepted[key], value))
        ]
        problems += [
            f"{key}: " + _("required.")
            for key in PROBE_REQUIRED.get(obj.probe, ())
            if key not in params
        ]
        target = PROBE_TARGET.get(obj.probe, "host")
        addressless = device is not None and not (device.ip_address or device.hostname)
        if target and target not in params and addressless:
            problems.append(
                f"{target}: " + _("required: the device has no IP address or host name to probe.")
            )
        if problems:
            errors["params"] = " ".join(problems)
        errors.update(_credential_errors(obj, device))
        if obj.metric and not re.match(r"^[a-z0-9_.]{1,100}$", obj.metric):
            errors["metric"] = _("Metric names are lower-case letters, digits, dots and _.")
    if not isinstance(obj.labels, dict) or not all(
        LABEL_RE.match(str(k)) and isinstance(v, str) and len(v) <= 200
        for k, v in obj.labels.items()
    ):
        errors["labels"] = _("Labels are short names (a–z and _) with text values.")
    return errors


def _rule_errors(obj: CheckDefinition) -> dict[str, str]:
    """Nonsense thresholds, in words that say which way they must go."""
    higher = obj.direction == CheckDefinition.Direction.HIGHER_IS_WORSE
    messages = {
        "not_finite": _("Enter a finite number."),
        "no_levels": _("Set a warning level, a critical level or both."),
        "warning_beyond_critical": (
            _("For a “higher is worse” metric the warning level must be below the critical level.")
            if higher
            else _(
                "For a “lower is worse” metric the warning level must be above the critical level."
            )
        ),
        "recovery_wrong_side": (
            _("The recovery level must be below the warning (or critical) level.")
            if higher
            else _("The recovery level must be above the warning (or critical) level.")
        ),
        "negative_hysteresis": _("Hysteresis cannot be negative."),
        "consecutive_too_small": _("At least one result."),
    }
    errors = {field: messages[code] for field, code in evaluation.problems(obj.rule).items()}
    if obj.consecutive > CONSECUTIVE_MAX:
        errors["consecutive"] = _("At most %(max)s results.") % {"max": CONSECUTIVE_MAX}
    if not INTERVAL_MIN <= obj.interval <= INTERVAL_MAX:
        errors["interval"] = _("Between 10 seconds and one day.")
    elif not 1 <= obj.timeout <= min(TIMEOUT_MAX, obj.interval):
        errors["timeout"] = _("Between 1 second and the interval (at most 60 seconds).")
    if obj.retries > RETRIES_MAX:
        errors["retries"] = _("At most %(max)s retries.") % {"max": RETRIES_MAX}
    return errors


def _check_definition(
    obj: CheckDefinition, *, exclude: list[str], device: Device | None = None
) -> None:
    """Validates a check or template: field types first, then what the values mean together."""
    if isinstance(obj.name, str):
        obj.name = obj.name.strip()
    if isinstance(obj.metric, str):
        obj.metric = obj.metric.strip()
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from None
    errors = _probe_errors(obj, device) | _rule_errors(obj)
    if errors:
        raise ValidationError(errors)


def _definition_fields(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(DEFINITION_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a check")
    return fields


def _reset_run(check: Check) -> None:
    check.candidate, check.candidate_count = "", 0


@transaction.atomic
def check_create(*, actor: User | None, device: Device, name: str, **fields: Any) -> Check:
    """A check on one device, made by hand (template checks come from check_templates_apply)."""
    check = Check(device=device, name=name, **_definition_fields(fields))
    _check_definition(check, exclude=["device", "template"], device=device)
    check.save()
    audit.record_created(actor=actor, obj=check)
    return check


@transaction.atomic
def check_update(*, actor: User | None, check: Check, **fields: Any) -> Check:
    """Changes a check. On a template's check, a field set to something other than the
    template's value becomes the device's own (overridden); set back to it, it follows the
    template again."""
    _definition_fields(fields)
    before = audit.snapshot(check)
    for field, value in fields.items():
        setattr(check, field, value)
    _check_definition(check, exclude=["device", "template"], device=check.device)
    if check.template_id is not None:
        overridden = set(check.overridden_fields)
        for field in fields:
            if getattr(check, field) == getattr(check.template, field):
                overridden.discard(field)
            else:
                overridden.add(field)
        check.overridden_fields = sorted(overridden)
    after = audit.snapshot(check)
    if any(before.get(field) != after.get(field) for field in RULE_FIELDS):
        _reset_run(check)
    check.save()
    audit.record_updated(actor=actor, obj=check, before=before)
    return check


@transaction.atomic
def check_override_clear(
    *, actor: User | None, check: Check, fields: list[str] | None = None
) -> Check:
    """Makes fields of a template's check (all overridden ones by default) follow the
    template again."""
    if check.template_id is None:
        raise ConflictError(_("This check was not made from a template."))
    names = check.overridden_fields if fields is None else fields
    return check_update(
        actor=actor, check=check, **{field: getattr(check.template, field) for field in names}
    )


@transaction.atomic
def check_delete(*, actor: User | None, check: Check) -> None:
    """Deletes a hand-made check and its history. A template's check would come back with the
    template, so it is disabled instead (an override that sticks)."""
    if check.template_id is not None:
        raise ConflictError(
            _("This check comes from the template “%(template)s”: disable it instead.")
            % {"template": check.template.name},
            field="template",
        )
    object_delete(actor=actor, obj=check)


# Check templates ------------------------------------------------------------------------------

TEMPLATE_SCOPE_FIELDS = ("customer", "site", "device_kind", "description")


def _check_template(template: CheckTemplate) -> None:
    if template.site_id is not None:
        if template.customer_id is None:
            template.customer_id = template.site.customer_id
        elif template.site.customer_id != template.customer_id:
            raise ValidationError({"site": _("The site belongs to another customer.")})
    _check_definition(template, exclude=["customer", "site"])


def _template_devices(template: CheckTemplate) -> QuerySet[Device]:
    devices = Device.objects.all()
    if template.customer_id is not None:
        devices = devices.filter(customer_id=template.customer_id)
    if template.site_id is not None:
        devices = devices.filter(site_id=template.site_id)
    if template.device_kind:
        devices = devices.filter(kind=template.device_kind)
    return devices


def _template_check_sync(
    *, actor: User | None, template: CheckTemplate, device: Device, check: Check | None
) -> str | None:
    """Gives the device the template's check, or brings it in step with the template (fields
    the device overrides are kept). Returns "created", "updated" or None."""
    if check is None:
        check = Check(
            device=device,
            template=template,
            **{field: getattr(template, field) for field in DEFINITION_FIELDS},
        )
        check.save()
        audit.record_created(actor=actor, obj=check)
        return "created"
    before = audit.snapshot(check)
    for field in DEFINITION_FIELDS:
        if field not in check.overridden_fields:
            setattr(check, field, getattr(template, field))
    after = audit.snapshot(check)
    if before == after:
        return None
    if any(before.get(field) != after.get(field) for field in RULE_FIELDS):
        _reset_run(check)
    check.save()
    audit.record_updated(actor=actor, obj=check, before=before)
    return "updated"


def _template_sync(*, actor: User | None, template: CheckTemplate) -> dict[str, int]:
    """Brings every device in the template's scope in step with it and removes its checks
    from devices that left the scope."""
    counts = {"created": 0, "updated": 0, "removed": 0}
    existing = {check.device_id: check for check in template.checks.select_related("device")}
    for device in _template_devices(template).select_for_update().order_by("pk"):
        done = _template_check_sync(
            actor=actor, template=template, device=device, check=existing.pop(device.pk, None)
        )
        if done:
            counts[done] += 1
    for check in existing.values():
        object_delete(actor=actor, obj=check)
        counts["removed"] += 1
    return counts


@transaction.atomic
def check_template_create(
    *, actor: User | None, name: str, customer: Customer | None = None, **fields: Any
) -> CheckTemplate:
    """A template (policy) whose check every device in its scope gets at once."""
    scope = {key: fields.pop(key) for key in TEMPLATE_SCOPE_FIELDS if key in fields}
    template = CheckTemplate(name=name, customer=customer, **scope, **_definition_fields(fields))
    _check_template(template)
    template.save()
    audit.record_created(actor=actor, obj=template)
    _template_sync(actor=actor, template=template)
    return template


@transaction.atomic
def check_template_update(
    *, actor: User | None, template: CheckTemplate, **fields: Any
) -> CheckTemplate:
    """Changes a template; its checks follow (except the fields a device overrides), devices
    that enter its scope get the check and those that leave it lose it."""
    scope = {key: fields.pop(key) for key in TEMPLATE_SCOPE_FIELDS if key in fields}
    _definition_fields(fields)
    before = audit.snapshot(template)
    for field, value in (scope | fields).items():
        setattr(template, field, value)
    _check_template(template)
    template.save()
    audit.record_updated(actor=actor, obj=template, before=before)
    _template_sync(actor=actor, template=template)
    return template


@transaction.atomic
def check_template_delete(*, actor: User | None, template: CheckTemplate) -> None:
    """Deletes a template and the checks it gave devices (as a removed policy would)."""
    for check in template.checks.select_related("device"):
        object_delete(actor=actor, obj=check)
    object_delete(actor=actor, obj=template)


@transaction.atomic
def check_templates_apply(*, device: Device, actor: User | None = None) -> dict[str, int]:
    """Gives a device the checks of every template whose scope matches it and removes those
    of templates that no longer match (after a move to another site or kind). Idempotent:
    applied again it changes nothing. Call it when a device is created or changes scope."""
    Device.objects.select_for_update().filter(pk=device.pk).first()
    counts = {"created": 0, "updated": 0, "removed": 0}
    existing = {check.template_id: check for check in device.checks.filter(template__isnull=False)}
    for template in CheckTemplate.objects.order_by("pk"):
        check = existing.pop(template.pk, None)
        if template.matches(device):
            done = _template_check_sync(actor=actor, template=template, device=device, check=check)
            if done:
                counts[done] += 1
        elif check is not None:
            object_delete(actor=actor, obj=check)
            counts["removed"] += 1
    return counts


# Maintenance windows --------------------------------------------------------------------------

WINDOW_FIELDS = (
    "name",
    "reason",
    "site",
    "device",
    "starts_at",
    "ends_at",
    "rrule",
    "duration_minutes",
    "time_zone",
)
WINDOW_FREQUENCIES = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
WINDOW_MINUTES_MAX = 31 * 24 * 60


def _check_window(window: MaintenanceWindow) -> None:
    errors: dict[str, str] = {}
    window.name = (window.name or "").strip()
    window.rrule = (window.rrule or "").strip().upper()
    if window.rrule.startswith("RRULE:"):
        window.rrule = window.rrule[6:]
    if window.site_id and window.site.customer_id != window.customer_id:
        errors["site"] = _("The site belongs to another customer.")
    if window.device_id:
        if window.device.customer_id != window.customer_id:
            errors["device"] = _("The device belongs to another customer.")
        elif window.site_id and window.device.site_id != window.site_id:
            errors["device"] = _("The device is not at this site.")
    try:
        window.full_clean(exclude=["customer", "site", "device", "created_by"])
    except ValidationError as exc:
        raise ValidationError(exc.message_dict | errors) from None
    if timezone.is_naive(window.starts_at) or (
        window.ends_at is not None and timezone.is_naive(window.ends_at)
    ):
        errors["starts_at"] = _("Give the time with its time zone.")
    elif not window.rrule:
        if window.ends_at is None or window.ends_at <= window.starts_at:
            errors["ends_at"] = _("The end must come after the start.")
        if window.duration_minutes is not None:
            errors["duration_minutes"] = _("Only a repeating window has a duration.")
    else:
        if window.ends_at is not None:
            errors["ends_at"] = _("A repeating window ends with UNTIL or COUNT in its rule.")
        if window.duration_minutes is None or not (
            1 <= window.duration_minutes <= WINDOW_MINUTES_MAX
        ):
            errors["duration_minutes"] = _("Between one minute and 31 days.")
        errors.update(_rrule_errors(window))
    if errors:
        raise ValidationError(errors)


def _rrule_errors(window: MaintenanceWindow) -> dict[str, str]:
    parts = dict(part.partition("=")[::2] for part in window.rrule.split(";") if part)
    if "DTSTART" in window.rrule or "\n" in window.rrule:
        return {"rrule": _("Only the RRULE part: the start is the window's start.")}
    if parts.get("FREQ") not in WINDOW_FREQUENCIES:
        return {"rrule": _("Repeat daily, weekly, monthly or yearly (FREQ=…).")}
    try:
        first = window.recurrence().after(
            window.starts_at.astimezone(ZoneInfo(window.time_zone)), inc=True
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return {"rrule": _("Not a valid RRULE: %(error)s") % {"error": exc}}
    if first is None:
        return {"rrule": _("This rule never repeats after the start.")}
    return {}


@transaction.atomic
def maintenance_window_create(
    *, actor: User | None, customer: Customer, name: str, starts_at: dt.datetime, **fields: Any
) -> MaintenanceWindow:
    """A one-off (start and end) or repeating (RRULE and duration in minutes, in a time zone)
    window for a customer, one of its sites or one device."""
    unknown = set(fields) - set(WINDOW_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a maintenance window")
    window = MaintenanceWindow(
        customer=customer,
        name=name,
        starts_at=starts_at,
        created_by=actor if actor is not None and actor.pk else None,
        **fields,
    )
    _check_window(window)
    window.save()
    audit.record_created(actor=actor, obj=window)
    return window


@transaction.atomic
def maintenance_window_update(
    *, actor: User | None, window: MaintenanceWindow, **fields: Any
) -> MaintenanceWindow:
    unknown = set(fields) - set(WINDOW_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a maintenance window")
    before = audit.snapshot(window)
    for field, value in fields.items():
        setattr(window, field, value)
    _check_window(window)
    window.save()
    audit.record_updated(actor=actor, obj=window, before=before)
    return window


@transaction.atomic
def maintenance_window_delete(*, actor: User | None, window: MaintenanceWindow) -> None:
    """Deletes a window; state changes it marked keep their mark."""
    object_delete(actor=actor, obj=window)


# Results --------------------------------------------------------------------------------------

STATE_CHANGED_EVENT = "check.state_changed"
PROBE_STATUSES = frozenset(evaluation.ProbeStatus)


def _result_note(
    check: Check, value: float | None, status: str | None, message: Note | None
) -> Note:
    if message is not None and message.template:
        return message
    if value is not None:
        return Note("{metric} = {value:g}", {"metric": check.metric or check.probe, "value": value})
    if status:
        return Note("{metric}: {status}", {"metric": check.metric or check.probe, "status": status})
    return note("{metric}: no data", metric=check.metric or check.probe)


@dataclass(frozen=True)
class CheckResult:
    """One result for a check's state engine: a value, a probe status, or neither (no data)."""

    check_id: int
    at: dt.datetime
    value: float | None = None
    status: str | None = None
    message: Note | None = None


def check_results_record(*, results: Sequence[CheckResult]) -> list[CheckStateChange]:
    """Feeds results to their checks' state engines and stores what they decided, in one
    transaction: one locking read of the checks, one update of them all, and the state
    changes with their events written together.

    A change of state is written as a CheckStateChange, marked in maintenance when a window
    covers the device at that instant, and published as the domain event
    `check.state_changed` (what alerting consumes). Returns the changes. Results for a check
    that is gone or disabled, and results older than the check's last one (out of order),
    change nothing. Several results for one check are taken in time order.
    """
    for result in results:
        if result.status is not None and result.status not in PROBE_STATUSES:
            raise ValidationError({"status": _("Not a probe status.")})
    if not results:
        return []
    with transaction.atomic():
        # Locked in id order, so two writers sharing checks wait for each other, never deadlock.
        locked = {
            check.pk: check
            for check in Check.objects.select_for_update(of=("self",))
            .select_related("device")
            .filter(pk__in={result.check_id for result in results})
            .order_by("pk")
        }
        touched: dict[int, Check] = {}
        changes: list[CheckStateChange] = []
        for result in sorted(results, key=lambda result: result.at):
            check = locked.get(result.check_id)
            if check is None or not check.enabled:
                continue
            if check.last_checked_at and result.at < check.last_checked_at:
                continue
            change = _result_apply(check, result)
            touched[check.pk] = check
            if change is not None:
                changes.append(change)
        if touched:
            _results_save(list(touched.values()))
        if changes:
            CheckStateChange.objects.bulk_create(changes)
            DomainEvent.objects.bulk_create(_state_changed_event(change) for change in changes)
    return changes


def _results_save(checks: list[Check]) -> None:
    """Writes the checks' result fields: one UPDATE per check, sent together. Not
    bulk_update, whose CASE over every field and row costs the poller's database thread more
    Python time (holding the interpreter lock the probes wait for) than the database saves."""
    fields = [Check._meta.get_field(name) for name in RESULT_FIELDS]
    assignments = ", ".join(f"{connection.ops.quote_name(field.column)} = %s" for field in fields)
    rows = [
        [field.get_db_prep_save(getattr(check, field.attname), connection) for field in fields]
        + [check.pk]
        for check in checks
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {Check._meta.db_table} SET {assignments} WHERE id = %s",  # noqa: S608 - names from the model
            rows,
        )


def _result_apply(check: Check, result: CheckResult) -> CheckStateChange | None:
    """Runs one result through the check's state engine, in memory; the unsaved change, if
    the state changed."""
    value = result.value if result.value is None or math.isfinite(result.value) else None
    outcome = evaluation.evaluate(check.rule, check.memory, value, result.status)
    memory = outcome.memory
    text = _result_note(check, value, result.status, result.message).as_data()
    check.state = memory.state.value
    check.candidate = memory.candidate.value if memory.candidate else ""
    check.candidate_count = memory.count
    check.last_value = value
    check.last_note = text
    check.last_checked_at = result.at
    if not outcome.changed:
        return None
    check.state_since = result.at
    window = selectors.maintenance_window_covering(device=check.device, at=result.at)
    return CheckStateChange(
        check_obj=check,
        from_state=outcome.previous.value,
        to_state=memory.state.value,
        value=value,
        at=result.at,
        in_maintenance=window is not None,
        maintenance_window=window,
        note=text,
    )


def _state_changed_event(change: CheckStateChange) -> DomainEvent:
    check = change.check_obj
    return DomainEvent(
        name=STATE_CHANGED_EVENT,
        object_type=Check._meta.label_lower,
        object_id=str(check.pk),
        customer_id=check.device.customer_id,
        payload={
            "state_change_id": change.pk,
            "check_id": check.pk,
            "check_name": check.name,
            "device_id": check.device_id,
            "template_id": check.template_id,
            "metric": check.metric,
            "probe": check.probe,
            "from": change.from_state,
            "to": change.to_state,
            "value": change.value,
            "at": change.at.isoformat(),
            "in_maintenance": change.in_maintenance,
            "maintenance_window_id": change.maintenance_window_id,
            # In English, and as data to show in each reader's language.
            "message": str(Note.from_data(change.note)),
            "note": change.note,
        },
    )


# SNMP credentials -----------------------------------------------------------------------------

CREDENTIAL_FIELDS = (
    "trap_engine_ids",
    "customer",
    "name",
    "version",
    "user",
    "auth_protocol",
    "priv_protocol",
    "context",
)
CREDENTIAL_SECRETS = {
    "community": "community_encrypted",
    "auth_key": "auth_key_encrypted",
    "priv_key": "priv_key_encrypted",
}


def _check_credential(credential: SnmpCredential, secrets_given: dict[str, str]) -> None:
    credential.name = (credential.name or "").strip()
    credential.user = (credential.user or "").strip()
    try:
        credential.full_clean(exclude=[*CREDENTIAL_SECRETS.values()])
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from None
    lines = (credential.trap_engine_ids or "").split()
    for line in lines:
        if not re.fullmatch(r"(0x)?[0-9a-fA-F]{10,64}", line) or len(line.removeprefix("0x")) % 2:
            raise ValidationError(
                {
                    "trap_engine_ids": _("“%(value)s” is not an engine ID (10 to 64 hex digits).")
                    % {"value": line[:70]}
                }
            )
    if lines and credential.version != SnmpCredential.Version.V3:
        raise ValidationError({"trap_engine_ids": _("Only SNMPv3 traps name engine IDs.")})
    credential.trap_engine_ids = "\n".join(line.removeprefix("0x").lower() for line in lines)
    probe_view = selectors.snmp_credentials_for_probe(credential)
    probe_view = dataclasses.replace(probe_view, **secrets_given)
    problem = probe_view.problem()
    if problem:
        raise ValidationError(
            {
                "__all__": _("These SNMP credentials cannot work: %(why)s")
                % {"why": problem.render(_)}
            }
        )


@transaction.atomic
def snmp_credential_create(
    *, actor: User | None, name: str, version: str = "2c", **fields: Any
) -> SnmpCredential:
    """Credentials for the poller's SNMP checks; the community and keys are stored encrypted."""
    secrets_given = {
        key: str(fields.pop(key) or "") for key in list(fields) if key in CREDENTIAL_SECRETS
    }
    unknown = set(fields) - set(CREDENTIAL_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on SNMP credentials")
    credential = SnmpCredential(name=name, version=version, **fields)
    _check_credential(credential, secrets_given)
    for key, column in CREDENTIAL_SECRETS.items():
        setattr(credential, column, crypto.encrypt(secrets_given.get(key, "")))
    credential.save()
    audit.record_created(actor=actor, obj=credential)
    return credential


@transaction.atomic
def snmp_credential_update(
    *, actor: User | None, credential: SnmpCredential, **fields: Any
) -> SnmpCredential:
    """Changes credentials; a secret left out or blank keeps the stored one."""
    secrets_given = {
        key: str(value)
        for key in list(fields)
        if key in CREDENTIAL_SECRETS and (value := fields.pop(key))
    }
    unknown = set(fields) - set(CREDENTIAL_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on SNMP credentials")
    before = audit.snapshot(credential)
    for field, value in fields.items():
        setattr(credential, field, value)
    _check_credential(credential, secrets_given)
    for key, value in secrets_given.items():
        setattr(credential, CREDENTIAL_SECRETS[key], crypto.encrypt(value))
    credential.save()
    audit.record_updated(actor=actor, obj=credential, before=before)
    return credential


@transaction.atomic
def snmp_credential_delete(*, actor: User | None, credential: SnmpCredential) -> None:
    """Removes credentials no check or template uses (those refuse with a conflict)."""
    in_use = (
        Check.objects.filter(snmp_credential=credential).exists()
        or CheckTemplate.objects.filter(snmp_credential=credential).exists()
    )
    if in_use:
        raise ConflictError(_("Checks or templates use these SNMP credentials: change them first."))
    object_delete(actor=actor, obj=credential)


# The poller's results ---------------------------------------------------------------------------


def _check_value(check: Check, outcome: Outcome) -> float | None:
    """The reading a check judges: its metric among the probe's readings, or among the labelled
    samples (one interface of a switch) the first whose labels include the check's."""
    result = outcome.result
    if not check.metric:
        return None
    if not check.labels:
        return result.readings.get(check.metric)
    for sample in getattr(result, "samples", ()):
        if sample.name == check.metric and check.labels.items() <= dict(sample.labels).items():
            return sample.value
    return None


RESULTS_PER_TRANSACTION = 200


def poller_outcomes_store(*, outcomes: list[Outcome]) -> int:
    """Stores a batch of the poller's results: every reading into the metric store in one
    write, then each result through its check's state engine. Returns the state changes.

    A check deleted or disabled since the poller loaded it is skipped; its readings are still
    kept, like an agent's samples.
    """
    samples = []
    for outcome in outcomes:
        source, at = outcome.target.source_id, outcome.at
        samples += [
            (source, name, {}, at, value) for name, value in outcome.result.readings.items()
        ]
        samples += [
            (source, sample.name, dict(sample.labels), at, sample.value)
            for sample in getattr(outcome.result, "samples", ())
        ]
    # A reading that is not a finite number would make the store refuse the whole batch.
    samples = [sample for sample in samples if math.isfinite(sample[4])]
    if samples:
        metric_services.samples_write(samples=samples)
    checks = Check.objects.only("id", "metric", "labels").in_bulk(
        [outcome.target.check_id for outcome in outcomes]
    )
    results = [
        CheckResult(
            check_id=check.pk,
            at=dt.datetime.fromtimestamp(outcome.at, tz=dt.UTC),
            value=_check_value(check, outcome),
            status=outcome.result.status.value,
            message=outcome.result.note,
        )
        for outcome in outcomes
        if (check := checks.get(outcome.target.check_id)) is not None
    ]
    return _results_record_in_batches(results)


def _results_record_in_batches(results: list[CheckResult]) -> int:
    # A few hundred results per transaction: one commit (one flush to disk) for all of them
    # instead of one each, while SQLite's write lock is still held only briefly.
    changes = 0
    for start in range(0, len(results), RESULTS_PER_TRANSACTION):
        batch = results[start : start + RESULTS_PER_TRANSACTION]
        changes += len(check_results_record(results=batch))
    return changes


# New and changed devices get their templates' checks ------------------------------------------

TEMPLATES_CONSUMER = "monitoring.templates"
# A change of these moves a device into or out of a template's scope.
DEVICE_EVENTS = frozenset({"device.created", "device.updated"})


@transaction.atomic
def device_events_apply_templates(*, limit: int = 1000) -> int:
    """Applies the check templates to the devices created or changed since this consumer's
    cursor (however they were made: by hand, by the API, by import or by an agent enrolling),
    so a new device gets its checks without hand work. Returns the devices looked at.

    The cursor moves in the same transaction as the checks it produced: a crash repeats the
    batch, and applying templates twice changes nothing.
    """
    cursor, _new = EventCursor.objects.select_for_update().get_or_create(
        consumer=TEMPLATES_CONSUMER
    )
    events = list(DomainEvent.objects.filter(id__gt=cursor.last_event_id).order_by("id")[:limit])
    device_ids = {
        int(event.object_id)
        for event in events
        if event.name in DEVICE_EVENTS and event.object_type == "assets.device"
    }
    for device in Device.objects.filter(pk__in=device_ids).order_by("pk"):
        check_templates_apply(device=device)
    if events:
        cursor.last_event_id = events[-1].pk
        cursor.save(update_fields=["last_event_id", "updated_at"])
    return len(device_ids)


# SNMP traps ------------------------------------------------------------------------------------


def _trap_device(trap: ReceivedTrap, customers: dict[int, int | None]) -> Device | None:
    """The one device at the trap's address among the customers its community belongs to
    (any customer for provider-wide credentials); none when that is not exactly one."""
    owners = {customers[cid] for cid in trap.credential_ids if cid in customers}
    devices = Device.objects.filter(ip_address=trap.source)
    if None not in owners:
        devices = devices.filter(customer_id__in=owners)
    found = list(devices[:2])
    return found[0] if len(found) == 1 else None


@transaction.atomic
def snmp_traps_record(*, traps: list[ReceivedTrap]) -> list[SnmpTrap]:
    """Stores received notifications on the devices they came from, each published as the
    domain event `snmp.trap` (what alerting consumes). A trap from an address that matches no
    single device is kept without one, so nothing received is lost."""
    ids = {cid for trap in traps for cid in trap.credential_ids}
    customers = dict(SnmpCredential.objects.filter(pk__in=ids).values_list("id", "customer_id"))
    stored = []
    for trap in traps:
        device = _trap_device(trap, customers)
        row = SnmpTrap.objects.create(
            device=device,
            source=trap.source,
            version=trap.version,
            sender=trap.sender[:100],
            trap_oid=trap.trap_oid[:200],
            uptime_s=trap.uptime_s,
            variables=trap.variables,
            received_at=dt.datetime.fromtimestamp(trap.received_at, tz=dt.UTC),
        )
        DomainEvent.objects.create(
            name="snmp.trap",
            object_type="monitoring.snmptrap",
            object_id=str(row.pk),
            customer_id=device.customer_id if device else None,
            payload={
                "device_id": device.pk if device else None,
                "source": trap.source,
                "trap_oid": row.trap_oid,
            },
        )
        stored.append(row)
    return stored


# SNMP discovery --------------------------------------------------------------------------------

discovery_log = logging.getLogger("onestop.monitoring.discovery")

# The largest range one discovery sweeps: an IPv4 /20. A bigger one is refused with advice to
# split it, never left to a worker for hours.
DISCOVERY_MAX_ADDRESSES = 4096
DISCOVERY_TIMEOUT_S = 1.0  # per GET, no retries: a sweep asks each address once
DISCOVERY_CONCURRENCY = 64
# A job still running after this was cut off (the worker stopped); a queued one older than the
# requeue delay lost its wake-up. The every-few-minutes recovery handles both.
DISCOVERY_STALE_AFTER = dt.timedelta(minutes=30)
DISCOVERY_REQUEUE_AFTER = dt.timedelta(minutes=5)


def _discovery_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The network to sweep, or ValidationError on the `network` field."""
    text = (text or "").strip()
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValidationError(
            {
                "network": _(
                    "“%(value)s” is not a network: write it in CIDR notation, e.g. "
                    "10.1.20.0/24, or as a single address."
                )
                % {"value": text[:60]}
            }
        ) from None
    if network.num_addresses > DISCOVERY_MAX_ADDRESSES:
        raise ValidationError(
            {
                "network": _(
                    "%(network)s has %(count)s addresses; one discovery sweeps at most "
                    "%(max)s (an IPv4 /20). Split the range into smaller networks, e.g. /24s, "
                    "and start a discovery for each."
                )
                % {
                    "network": str(network),
                    "count": f"{network.num_addresses:,}",
                    "max": f"{DISCOVERY_MAX_ADDRESSES:,}",
                }
            }
        )
    if network.is_multicast or network.network_address.is_unspecified:
        raise ValidationError(
            {"network": _("%(network)s is not a network of devices.") % {"network": str(network)}}
        )
    return network


def _discovery_addresses(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    """The addresses a sweep asks: the hosts of the network (an IPv4 network larger than a
    /31 without its network and broadcast addresses)."""
    return [str(address) for address in network.hosts()]


def _discovery_enqueue(job_id: int) -> None:
    # Imported here: the tasks module imports this one. A lost wake-up loses nothing: the job
    # stays queued and the recovery task enqueues it again.
    from onestop.monitoring import tasks

    tasks.discovery_job_run(job_id)


@transaction.atomic
def discovery_job_create(
    *,
    actor: User | None,
    customer: Customer,
    site: Site | None = None,
    network: str,
    snmp_credential: SnmpCredential,
    port: int = 161,
) -> DiscoveryJob:
    """A discovery of a customer's network with SNMP, run by a worker once this commits.

    The network is CIDR (or one address) of at most DISCOVERY_MAX_ADDRESSES addresses; the
    site must be the customer's and the credentials usable for the customer.
    """
    errors: dict[str, str] = {}
    parsed = None
    try:
        parsed = _discovery_network(network)
    except ValidationError as exc:
        errors.update({key: " ".join(value) for key, value in exc.message_dict.items()})
    if site is not None and site.customer_id != customer.pk:
        errors["site"] = _("The site belongs to another customer.")
    if snmp_credential.customer_id not in (None, customer.pk):
        errors["snmp_credential"] = _("These SNMP credentials belong to another customer.")
    if not isinstance(port, int) or not 1 <= port <= 65535:
        errors["port"] = _("A port between 1 and 65535.")
    if errors or parsed is None:
        raise ValidationError(errors)
    job = DiscoveryJob(
        customer=customer,
        site=site,
        network=str(parsed),
        snmp_credential=snmp_credential,
        port=port,
        hosts_total=len(_discovery_addresses(parsed)),
        created_by=actor if actor and actor.pk else None,
    )
    try:
        job.full_clean(exclude=["customer", "site", "snmp_credential", "created_by"])
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from None
    job.save()
    audit.record_created(actor=actor, obj=job)
    job_id = job.pk
    transaction.on_commit(lambda: _discovery_enqueue(job_id))
    return job


def _discovery_owned(device: Device) -> bool:
    """Whether discovery may overwrite what it reads (it created the device); on others it
    only fills in what is blank."""
    return device.source == Device.Source.DISCOVERY


def _discovery_inventory(found: discovery.Found, device: Device) -> dict[str, Any]:
    """The inventory of a discovered device, in the keys device_inventory_apply reads
    (hostname, vendor, model, serial, os, nics) plus what SNMP said about itself."""
    previous = device.inventory if isinstance(device.inventory, dict) else {}
    inventory: dict[str, Any] = {
        "source": "snmp",
        "snmp": {
            "sys_object_id": found.sys_object_id,
            "sys_descr": found.sys_descr[:1000],
            "sys_name": found.sys_name[:255],
            "location": found.sys_location[:255],
            "contact": found.sys_contact[:255],
        },
    }
    if found.interfaces or not found.interfaces_error:
        inventory["nics"] = [interface.as_inventory() for interface in found.interfaces]
    elif "nics" in previous:
        inventory["nics"] = previous["nics"]  # not readable this time: nothing was removed
    owned = _discovery_owned(device)
    for key, value in (
        ("hostname", found.sys_name),
        ("vendor", found.vendor),
        ("model", found.model),
        ("serial", found.serial),
    ):
        if value and (owned or not getattr(device, key)):
            inventory[key] = value
    identity = found.identity
    if identity.os_name and (owned or not device.os_name):
        inventory["os"] = {"name": identity.os_name, "version": identity.os_version}
    return inventory


def _discovered_device_store(job: DiscoveryJob, found: discovery.Found) -> dict[str, Any]:
    """Adds or refreshes the device that answered at one address; returns the job's result row.

    The device is the customer's one at that address (else the one with the serial number
    read), never another customer's. An agent's device keeps its agent inventory.
    """
    actor = job.created_by
    kind = found.kind if found.kind in Device.Kind.values else Device.Kind.OTHER
    with transaction.atomic():
        # One writer per customer at a time, so two sweeps cannot both add the same device.
        Customer.objects.select_for_update().filter(pk=job.customer_id).first()
        devices = Device.objects.filter(customer_id=job.customer_id).order_by("id")
        device = devices.filter(ip_address=found.address).first()
        if device is None and found.serial:
            device = devices.filter(serial=found.serial).first()
        if device is None:
            identity = found.identity
            device = asset_services.device_create(
                actor=actor,
                customer=job.customer,
                name=(found.sys_name or found.address)[:200],
                source=Device.Source.DISCOVERY,
                kind=kind,
                site=job.site,
                ip_address=found.address,
                hostname=found.sys_name[:255],
                vendor=found.vendor,
                model=found.model,
                serial=found.serial,
                os_name=identity.os_name,
                os_version=identity.os_version,
            )
            action = "created"
        else:
            fields: dict[str, Any] = {}
            current = device.ip_address and ipaddress.ip_address(device.ip_address)
            if current != ipaddress.ip_address(found.address):
                fields["ip_address"] = found.address  # found by serial at a new address
            if job.site_id and device.site_id is None:
                fields["site"] = job.site
            vague = device.kind == Device.Kind.OTHER
            if _discovery_owned(device) and vague and kind != Device.Kind.OTHER:
                fields["kind"] = kind  # a device not identified before is now
            if fields:
                asset_services.device_update(actor=actor, device=device, **fields)
            action = "updated" if fields else "unchanged"
        has_agent = (
            device.source == Device.Source.AGENT or Agent.objects.filter(device=device).exists()
        )
        if not has_agent:
            asset_services.device_inventory_apply(
                device=device, inventory=_discovery_inventory(found, device), at=timezone.now()
            )
            if action == "unchanged":
                action = "updated"
    return {
        "address": found.address,
        "device_id": device.pk,
        "name": device.name,
        "sys_name": found.sys_name[:255],
        "vendor": found.vendor,
        "model": found.model,
        "kind": kind,
        "interfaces": len(found.interfaces),
        "action": action,
        "error": found.interfaces_error[:300],
    }


def _discovery_finish(job: DiscoveryJob, *, status: str, message: Note, **counts: Any) -> None:
    job.status = status
    # A note, shown in each reader's language (the worker's is nobody's in particular).
    job.note = message.as_data()
    job.finished_at = timezone.now()
    for name, value in counts.items():
        setattr(job, name, value)
    job.save(update_fields=["status", "note", "finished_at", *counts])


def _discovery_sweep_and_store(job: DiscoveryJob) -> None:
    addresses = _discovery_addresses(_discovery_network(job.network))
    credentials = selectors.snmp_credentials_for_probe(job.snmp_credential)
    problem = credentials.problem()
    if problem:
        _discovery_finish(
            job,
            status=DiscoveryJob.Status.FAILED,
            message=note("These SNMP credentials cannot work: {why}", why=problem),
            hosts_total=len(addresses),
        )
        return
    found = discovery.sweep_blocking(
        addresses=addresses,
        credentials=credentials,
        port=job.port,
        timeout=DISCOVERY_TIMEOUT_S,
        concurrency=DISCOVERY_CONCURRENCY,
    )
    results = []
    for item in found:
        try:
            results.append(_discovered_device_store(job, item))
        except (ValidationError, DatabaseError) as exc:
            # One device the register refuses (or a write that failed) does not lose the
            # others; the row says why.
            why = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            results.append(
                {
                    "address": item.address,
                    "device_id": None,
                    "name": item.sys_name[:255],
                    "sys_name": item.sys_name[:255],
                    "vendor": item.vendor,
                    "model": item.model,
                    "kind": item.kind,
                    "interfaces": len(item.interfaces),
                    "action": "error",
                    "error": why[:300],
                }
            )
    created = sum(row["action"] == "created" for row in results)
    updated = sum(row["action"] == "updated" for row in results)
    failed = sum(row["action"] == "error" for row in results)
    counts = {
        "answered": len(found),
        "total": len(addresses),
        "created": created,
        "updated": updated,
    }
    message = note(
        "{answered} of {total} addresses answered: {created} devices added, {updated} updated.",
        **counts,
    )
    if failed:
        message = note(
            "{answered} of {total} addresses answered: {created} devices added, {updated} "
            "updated, {failed} could not be stored.",
            **counts,
            failed=failed,
        )
    _discovery_finish(
        job,
        status=DiscoveryJob.Status.DONE,
        message=message,
        hosts_total=len(addresses),
        hosts_answered=len(found),
        devices_created=created,
        devices_updated=updated,
        results=results,
    )


def discovery_job_run(*, job_id: int) -> DiscoveryJob | None:
    """Runs a queued discovery: sweeps its network, then adds or refreshes a device per
    address that answered, each in its own short transaction. Returns the job, or None when
    it was not queued (already run, running in another worker, deleted).

    The job always ends done or failed: anything unexpected is recorded on it, not raised.
    """
    claimed = DiscoveryJob.objects.filter(pk=job_id, status=DiscoveryJob.Status.QUEUED).update(
        status=DiscoveryJob.Status.RUNNING, started_at=timezone.now(), note={}
    )
    if not claimed:
        return None
    job = DiscoveryJob.objects.select_related(
        "customer", "site", "snmp_credential", "created_by"
    ).get(pk=job_id)
    try:
        _discovery_sweep_and_store(job)
    except Exception as exc:
        discovery_log.exception("discovery job %s failed", job_id)
        _discovery_finish(
            job,
            status=DiscoveryJob.Status.FAILED,
            message=note(
                "The discovery stopped on an unexpected error: {error}",
                error=(str(exc) or type(exc).__name__)[:300],
            ),
        )
    return job


def discovery_jobs_recover(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Ends the jobs a stopped worker left running (failed, with a message saying so) and
    wakes up the queued ones whose wake-up was lost. Returns the counts."""
    now = now or timezone.now()
    interrupted = DiscoveryJob.objects.filter(
        status=DiscoveryJob.Status.RUNNING, started_at__lt=now - DISCOVERY_STALE_AFTER
    ).update(
        status=DiscoveryJob.Status.FAILED,
        finished_at=now,
        note=note("The discovery was interrupted (its worker stopped); start it again.").as_data(),
    )
    waiting = list(
        DiscoveryJob.objects.filter(
            status=DiscoveryJob.Status.QUEUED, created_at__lt=now - DISCOVERY_REQUEUE_AFTER
        )
        .order_by("id")
        .values_list("pk", flat=True)[:20]
    )
    for job_id in waiting:
        _discovery_enqueue(job_id)
    return {"interrupted": interrupted, "requeued": len(waiting)}


# Agent metric checks ------------------------------------------------------------------------------

AGENT_CHECKS_CHUNK = 2000
# An agent check with no new sample for this many intervals has lost its data: UNKNOWN.
AGENT_CHECK_STALE_INTERVALS = 3


def agent_checks_evaluate(*, now: dt.datetime | None = None) -> int:
    """Feeds each enabled agent-metric check the newest sample of its series (the one whose
    labels include the check's), if it is newer than the check's last result; a check whose
    data stopped coming for three intervals gets "no data" (UNKNOWN for thresholds). Runs
    every minute, apart from the agents' reports, so a report costs no check work. Returns
    the state changes."""
    now = now or timezone.now()
    changes = 0
    checks = Check.objects.filter(enabled=True, kind=Check.Kind.AGENT).order_by("id")
    last_id = 0
    while True:
        chunk = list(
            checks.filter(id__gt=last_id).only(
                "id", "device_id", "metric", "labels", "interval", "last_checked_at", "created_at"
            )[:AGENT_CHECKS_CHUNK]
        )
        if not chunk:
            return changes
        last_id = chunk[-1].id
        latest = metric_selectors.latest_values(
            source_ids={check.device_id for check in chunk},
            names={check.metric for check in chunk},
        )
        by_series: dict[tuple[int, str], list[Any]] = {}
        for value in latest:
            by_series.setdefault((value.source_id, value.name), []).append(value)
        results = []
        for check in chunk:
            candidates = [
                value
                for value in by_series.get((check.device_id, check.metric), [])
                if check.labels.items() <= value.labels.items()
            ]
            newest = max(candidates, key=lambda value: value.ts, default=None)
            at = dt.datetime.fromtimestamp(newest.ts, tz=dt.UTC) if newest else None
            if at is not None and (check.last_checked_at is None or at > check.last_checked_at):
                results.append(CheckResult(check.pk, at, newest.value))
            elif now - (check.last_checked_at or check.created_at) > dt.timedelta(
                seconds=check.interval * AGENT_CHECK_STALE_INTERVALS
            ):
                results.append(CheckResult(check.pk, now, message=note("No data from the agent.")))
        changes += _results_record_in_batches(results)
