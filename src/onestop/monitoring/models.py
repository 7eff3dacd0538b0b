"""The agent side of monitoring: enrolment tokens for a site, the agents enrolled with them,
and the reports they sent (kept for exactly-once storage of retried reports)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import rrule as dateutil_rrule
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from onestop.assets.models import Device
from onestop.core.models import TIME_ZONE_CHOICES, Customer, Site, User
from onestop.monitoring import evaluation
from onestop.monitoring.probes.base import Note

DEFAULT_INTERVAL = 60
DEFAULT_INVENTORY_INTERVAL = 6 * 3600
# An agent is offline after this many missed heartbeats.
MISSED_HEARTBEATS = 3


class EnrollmentToken(models.Model):
    """Lets agents enrol devices at one site until it expires or is revoked.

    Only a hash is stored; the token is shown once, inside the enrol command.
    """

    site = models.ForeignKey(
        Site, verbose_name=_("site"), on_delete=models.CASCADE, related_name="enrollment_tokens"
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    prefix = models.CharField(max_length=12, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField(_("expires"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    uses = models.PositiveIntegerField(_("devices enrolled"), default=0)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    scope_customer_field = "site__customer_id"
    audit_exclude = ("token_hash", "uses")

    class Meta:
        ordering = ["-id"]
        verbose_name = _("enrolment token")
        verbose_name_plural = _("enrolment tokens")

    def __str__(self) -> str:
        return self.name or f"{self.prefix}…"

    @property
    def customer_id(self) -> int:
        return self.site.customer_id

    def is_usable(self, now: dt.datetime | None = None) -> bool:
        return self.revoked_at is None and self.expires_at > (now or timezone.now())


class Agent(models.Model):
    """The OneStop agent on one device, with its hashed secret and what it last said."""

    device = models.OneToOneField(
        Device, verbose_name=_("device"), on_delete=models.CASCADE, related_name="agent"
    )
    secret_hash = models.CharField(max_length=64, editable=False)
    machine_id = models.CharField(_("machine ID"), max_length=64, blank=True)
    hostname = models.CharField(_("host name"), max_length=255, blank=True)
    agent_version = models.CharField(_("agent version"), max_length=20, blank=True)
    enrolled_with = models.ForeignKey(
        EnrollmentToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="agents"
    )
    enrolled_at = models.DateTimeField(_("enrolled"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    last_seq = models.BigIntegerField(default=0)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    interval = models.PositiveIntegerField(_("report interval (s)"), default=DEFAULT_INTERVAL)
    watch_services = models.JSONField(_("watched services"), default=list, blank=True)
    watch_processes = models.JSONField(_("watched processes"), default=list, blank=True)
    # Counters the agent cannot see itself: what the server refused or the buffer lost.
    dropped_reports = models.BigIntegerField(_("reports dropped by the agent"), default=0)
    rejected_samples = models.BigIntegerField(_("samples refused"), default=0)

    scope_customer_field = "device__customer_id"
    audit_exclude = (
        "secret_hash",
        "last_seen_at",
        "last_seq",
        "dropped_reports",
        "rejected_samples",
        "hostname",
        "agent_version",
    )

    class Meta:
        ordering = ["-id"]
        verbose_name = _("agent")
        verbose_name_plural = _("agents")

    def __str__(self) -> str:
        return f"{self.device} ({self.pk})"

    @property
    def customer_id(self) -> int:
        return self.device.customer_id

    @property
    def config(self) -> dict[str, Any]:
        """What the agent must do: its intervals and what to watch."""
        return {
            "interval": self.interval,
            "inventory_interval": DEFAULT_INVENTORY_INTERVAL,
            "watch_services": list(self.watch_services),
            "watch_processes": list(self.watch_processes),
        }

    @property
    def config_version(self) -> str:
        """Changes whenever the config changes, so the agent knows to pull it again."""
        text = json.dumps(self.config, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def is_online(self, now: dt.datetime | None = None) -> bool:
        if self.last_seen_at is None or self.revoked_at is not None:
            return False
        silence = (now or timezone.now()) - self.last_seen_at
        return silence <= dt.timedelta(seconds=self.interval * MISSED_HEARTBEATS)


class AgentReport(models.Model):
    """A report stored once: a retried report (its acknowledgement was lost) is recognised by
    its id and acknowledged again without storing anything twice."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="reports")
    report_id = models.CharField(max_length=32)
    seq = models.BigIntegerField()
    received_at = models.DateTimeField(auto_now_add=True)
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "report_id"], name="agent_report_once")
        ]
        indexes = [models.Index(fields=["received_at"], name="agent_report_age")]

    def __str__(self) -> str:
        return f"{self.agent_id}/{self.report_id}"


# Checks -------------------------------------------------------------------------------------------


def note_text(data: Any) -> str:
    """A stored Note (its `as_data()`) in the active language; "" when there is none."""
    if not isinstance(data, dict) or not data.get("template"):
        return ""
    try:
        return Note.from_data(data).render(gettext)
    except (KeyError, TypeError, ValueError, AttributeError):
        return str(data.get("template"))  # a damaged row still shows something


class CheckState(models.TextChoices):
    """The states of a check (the values of monitoring.evaluation.State)."""

    OK = evaluation.State.OK.value, _("OK")
    WARNING = evaluation.State.WARNING.value, _("Warning")
    CRITICAL = evaluation.State.CRITICAL.value, _("Critical")
    UNKNOWN = evaluation.State.UNKNOWN.value, _("Unknown")


def _provider_configuration_scope(user: User, customer_ids: set[int] | None) -> models.Q | None:
    """What staff see of the provider's configuration: the provider-wide rows (no customer) and
    those of the customers they serve; customer users see none."""
    if not user.is_provider_staff:
        return models.Q(pk__in=())
    if customer_ids is None:
        return None
    return models.Q(customer__isnull=True) | models.Q(customer_id__in=customer_ids)


class SnmpCredential(models.Model):
    """How the poller talks SNMP to a customer's devices (or, without a customer, to any
    device): v2c with a community, or v3 with a user and its keys.

    The community and the keys are stored encrypted and never shown again after saving.
    """

    class Version(models.TextChoices):
        V2C = "2c", "SNMP v2c"
        V3 = "3", "SNMP v3"

    class Auth(models.TextChoices):
        NONE = "", _("None")
        MD5 = "MD5", "MD5"
        SHA = "SHA", "SHA-1"
        SHA224 = "SHA224", "SHA-224"
        SHA256 = "SHA256", "SHA-256"
        SHA384 = "SHA384", "SHA-384"
        SHA512 = "SHA512", "SHA-512"

    class Privacy(models.TextChoices):
        NONE = "", _("None")
        DES = "DES", "DES"
        TRIPLE_DES = "3DES", "3DES"
        AES128 = "AES128", "AES-128"
        AES192 = "AES192", "AES-192"
        AES256 = "AES256", "AES-256"
        AES192C = "AES192C", "AES-192 (Cisco)"
        AES256C = "AES256C", "AES-256 (Cisco)"

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="snmp_credentials",
        help_text=_("Leave empty to use it for any customer's devices."),
    )
    name = models.CharField(_("name"), max_length=100)
    version = models.CharField(
        _("version"), max_length=2, choices=Version.choices, default=Version.V2C
    )
    community_encrypted = models.TextField(blank=True)
    user = models.CharField(_("v3 user"), max_length=100, blank=True)
    auth_protocol = models.CharField(
        _("v3 authentication"), max_length=8, choices=Auth.choices, blank=True
    )
    auth_key_encrypted = models.TextField(blank=True)
    priv_protocol = models.CharField(
        _("v3 privacy"), max_length=8, choices=Privacy.choices, blank=True
    )
    priv_key_encrypted = models.TextField(blank=True)
    context = models.CharField(_("v3 context"), max_length=100, blank=True)
    # A v3 trap is authenticated with the sender's own engine id (as snmptrapd's createUser
    # -e): the devices that send traps with these credentials are named by it.
    trap_engine_ids = models.TextField(
        _("v3 trap senders' engine IDs"),
        blank=True,
        help_text=_("Hex, one per line, e.g. 80000009030000c1b1d0e001."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    scope_customer_field = "customer_id"
    audit_secret = ("community_encrypted", "auth_key_encrypted", "priv_key_encrypted")

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("SNMP credentials")
        verbose_name_plural = _("SNMP credentials")

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def scope_filter(user: User, customer_ids: set[int] | None) -> models.Q | None:
        """Staff see the provider-wide credentials and those of their customers; customers
        none (they are the provider's means of access)."""
        return _provider_configuration_scope(user, customer_ids)

    def engine_ids(self) -> list[bytes]:
        """The trap senders' engine ids as bytes (validated when saved)."""
        return [bytes.fromhex(line) for line in self.trap_engine_ids.split()]

    def usable(self, device: Device) -> bool:
        """Whether a check of this device may use these credentials."""
        return self.customer_id is None or self.customer_id == device.customer_id


class CheckDefinition(models.Model):
    """What a check watches and how it judges: shared by a device's check and a template."""

    class Kind(models.TextChoices):
        AGENT = "agent", _("Agent metric")
        POLLER = "poller", _("Poller probe")

    class Probe(models.TextChoices):
        PING = "ping", _("Ping")
        TCP = "tcp", _("TCP port")
        HTTP = "http", _("HTTP(S)")
        DNS = "dns", _("DNS")
        SNMP_UPTIME = "snmp_uptime", _("SNMP uptime")
        SNMP_INTERFACES = "snmp_interfaces", _("SNMP interfaces")
        SNMP_CPU_MEMORY = "snmp_cpu_memory", _("SNMP CPU and memory")
        SNMP_OID = "snmp_oid", _("SNMP OID")

    class Direction(models.TextChoices):
        HIGHER_IS_WORSE = evaluation.Direction.HIGHER_IS_WORSE.value, _("Higher is worse")
        LOWER_IS_WORSE = evaluation.Direction.LOWER_IS_WORSE.value, _("Lower is worse")

    class Mode(models.TextChoices):
        THRESHOLD = evaluation.Mode.THRESHOLD.value, _("Thresholds (no data is unknown)")
        AVAILABILITY = evaluation.Mode.AVAILABILITY.value, _("Availability (no answer is critical)")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.AGENT)
    metric = models.CharField(_("metric"), max_length=100, blank=True)
    # Labels that pick one series of the metric, e.g. {"mount": "/"} for disk.used_percent.
    labels = models.JSONField(_("labels"), default=dict, blank=True)
    probe = models.CharField(_("probe"), max_length=16, choices=Probe.choices, blank=True)
    # What the probe needs: host, port, url, expected text or status, record, OID …
    params = models.JSONField(_("probe parameters"), default=dict, blank=True)
    interval = models.PositiveIntegerField(_("interval (s)"), default=60)
    timeout = models.PositiveIntegerField(_("timeout (s)"), default=5)
    retries = models.PositiveSmallIntegerField(_("retries"), default=1)
    mode = models.CharField(
        _("evaluation"), max_length=12, choices=Mode.choices, default=Mode.THRESHOLD
    )
    direction = models.CharField(
        _("direction"), max_length=8, choices=Direction.choices, default=Direction.HIGHER_IS_WORSE
    )
    warning = models.FloatField(_("warning level"), null=True, blank=True)
    critical = models.FloatField(_("critical level"), null=True, blank=True)
    recovery = models.FloatField(_("recovery level"), null=True, blank=True)
    hysteresis = models.FloatField(_("hysteresis"), default=0)
    consecutive = models.PositiveSmallIntegerField(_("consecutive results"), default=1)
    enabled = models.BooleanField(_("enabled"), default=True)
    snmp_credential = models.ForeignKey(
        SnmpCredential,
        verbose_name=_("SNMP credentials"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    @property
    def rule(self) -> evaluation.Rule:
        return evaluation.Rule(
            direction=evaluation.Direction(self.direction),
            warning=self.warning,
            critical=self.critical,
            recovery=self.recovery,
            hysteresis=self.hysteresis or 0.0,
            consecutive=self.consecutive,
            mode=evaluation.Mode(self.mode),
        )


# The fields a template hands down to its checks (and a device's check may override).
DEFINITION_FIELDS = (
    "name",
    "kind",
    "metric",
    "labels",
    "probe",
    "params",
    "interval",
    "timeout",
    "retries",
    "mode",
    "direction",
    "warning",
    "critical",
    "recovery",
    "hysteresis",
    "consecutive",
    "enabled",
    "snmp_credential",
)


class CheckTemplate(CheckDefinition):
    """A policy: a check every device in its scope gets (customer, site and device kind, each
    empty for "any"), kept in step with the template unless a device overrides a field."""

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="check_templates",
    )
    site = models.ForeignKey(
        Site,
        verbose_name=_("site"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="check_templates",
    )
    device_kind = models.CharField(
        _("device kind"), max_length=16, choices=Device.Kind.choices, blank=True
    )
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    scope_customer_field = "customer_id"

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("check template")
        verbose_name_plural = _("check templates")

    @staticmethod
    def scope_filter(user: User, customer_ids: set[int] | None) -> models.Q | None:
        """Staff see the provider-wide templates and those of their customers; customers
        none (templates are the provider's configuration)."""
        return _provider_configuration_scope(user, customer_ids)

    def matches(self, device: Device) -> bool:
        """Whether the device is in this template's scope."""
        return (
            (self.customer_id is None or self.customer_id == device.customer_id)
            and (self.site_id is None or self.site_id == device.site_id)
            and (not self.device_kind or self.device_kind == device.kind)
        )


# What a check's results change (never audited: CheckStateChange is their record).
RESULT_FIELDS = (
    "state",
    "state_since",
    "candidate",
    "candidate_count",
    "last_value",
    "last_note",
    "last_checked_at",
)


class Check(CheckDefinition):
    """One metric or probe of one device, judged against thresholds into a state, with the
    running memory of the state engine (monitoring.evaluation)."""

    device = models.ForeignKey(
        Device, verbose_name=_("device"), on_delete=models.CASCADE, related_name="checks"
    )
    template = models.ForeignKey(
        CheckTemplate,
        verbose_name=_("template"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="checks",
    )
    # Definition fields this device sets itself; a template change leaves them alone.
    overridden_fields = models.JSONField(_("overridden fields"), default=list, blank=True)
    state = models.CharField(
        _("state"), max_length=8, choices=CheckState.choices, default=CheckState.UNKNOWN
    )
    state_since = models.DateTimeField(_("state since"), default=timezone.now)
    candidate = models.CharField(max_length=8, choices=CheckState.choices, blank=True)
    candidate_count = models.PositiveSmallIntegerField(default=0)
    last_value = models.FloatField(_("last value"), null=True, blank=True)
    # A probes.base.Note as data: shown in the reader's language (see `last_message`).
    last_note = models.JSONField(_("last message"), default=dict, blank=True)
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    scope_customer_field = "device__customer_id"
    # Results change these all the time; their story is told by CheckStateChange.
    audit_exclude = RESULT_FIELDS

    class Meta:
        ordering = ["device_id", "name", "id"]
        verbose_name = _("check")
        verbose_name_plural = _("checks")
        constraints = [
            # One check per template and device: applying templates again creates nothing.
            models.UniqueConstraint(
                fields=["device", "template"],
                condition=models.Q(template__isnull=False),
                name="check_once_per_template",
            )
        ]
        indexes = [models.Index(fields=["state", "enabled"], name="check_state")]

    @property
    def customer_id(self) -> int:
        return self.device.customer_id

    @property
    def overridden(self) -> bool:
        return bool(self.overridden_fields)

    @property
    def last_message(self) -> str:
        return note_text(self.last_note)

    @property
    def memory(self) -> evaluation.Memory:
        return evaluation.Memory(
            state=evaluation.State(self.state),
            candidate=evaluation.State(self.candidate) if self.candidate else None,
            count=self.candidate_count,
        )


class CheckStateChange(models.Model):
    """One change of a check's state: its history, and what alerting consumes (each row is
    also published as the domain event `check.state_changed` in the same transaction)."""

    check_obj = models.ForeignKey(
        Check,
        verbose_name=_("check"),
        on_delete=models.CASCADE,
        related_name="state_changes",
        db_column="check_id",
    )
    from_state = models.CharField(_("from"), max_length=8, choices=CheckState.choices)
    to_state = models.CharField(_("to"), max_length=8, choices=CheckState.choices)
    value = models.FloatField(_("value"), null=True, blank=True)
    at = models.DateTimeField(_("time"))
    in_maintenance = models.BooleanField(_("in maintenance"), default=False)
    maintenance_window = models.ForeignKey(
        "MaintenanceWindow",
        verbose_name=_("maintenance window"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.JSONField(_("message"), default=dict, blank=True)  # a probes.base.Note

    scope_customer_field = "check_obj__device__customer_id"

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("check state change")
        verbose_name_plural = _("check state changes")
        indexes = [models.Index(fields=["check_obj", "-at"], name="check_change_check")]

    def __str__(self) -> str:
        return f"{self.check_obj_id}: {self.from_state} → {self.to_state}"

    @property
    def message(self) -> str:
        return note_text(self.note)


# Maintenance windows ------------------------------------------------------------------------------


class MaintenanceWindow(models.Model):
    """A time when a customer's devices (or one site, or one device) are worked on: checks keep
    recording, but their state changes are marked as in maintenance.

    One-off: `starts_at` to `ends_at`. Recurring: an RFC 5545 RRULE (e.g. FREQ=WEEKLY;BYDAY=SU)
    whose first occurrence starts at `starts_at`, read as wall-clock time in `time_zone`, each
    occurrence lasting `duration_minutes`.
    """

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="maintenance_windows",
    )
    site = models.ForeignKey(
        Site,
        verbose_name=_("site"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="maintenance_windows",
    )
    device = models.ForeignKey(
        Device,
        verbose_name=_("device"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="maintenance_windows",
    )
    name = models.CharField(_("name"), max_length=200)
    reason = models.TextField(_("reason"), blank=True)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True)
    rrule = models.CharField(_("repeats (RRULE)"), max_length=500, blank=True)
    duration_minutes = models.PositiveIntegerField(_("duration (minutes)"), null=True, blank=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, choices=TIME_ZONE_CHOICES, default="Asia/Shanghai"
    )
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    scope_customer_field = "customer_id"

    class Meta:
        ordering = ["-starts_at", "-id"]
        verbose_name = _("maintenance window")
        verbose_name_plural = _("maintenance windows")
        indexes = [models.Index(fields=["customer", "starts_at"], name="maintenance_customer")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_recurring(self) -> bool:
        return bool(self.rrule)

    @property
    def duration(self) -> dt.timedelta | None:
        """How long each occurrence of a repeating window lasts."""
        if self.duration_minutes is None:
            return None
        return dt.timedelta(minutes=self.duration_minutes)

    def recurrence(self) -> dateutil_rrule.rrule:
        """The RRULE with its first start in the window's zone, so occurrences keep their
        wall-clock time across DST changes."""
        dtstart = self.starts_at.astimezone(ZoneInfo(self.time_zone))
        text = self.rrule.strip()
        if text.upper().startswith("RRULE:"):
            text = text[6:]
        return dateutil_rrule.rrulestr(text, dtstart=dtstart)

    def occurrence_at(self, at: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
        """The (start, end) of the occurrence that covers the instant, or None."""
        if not self.is_recurring:
            if self.ends_at is not None and self.starts_at <= at < self.ends_at:
                return self.starts_at, self.ends_at
            return None
        if self.duration is None or at < self.starts_at:
            return None
        local = at.astimezone(ZoneInfo(self.time_zone))
        # Only occurrences that started within one duration before the instant can cover it.
        for start in self.recurrence().between(local - self.duration, local, inc=True):
            end = start + self.duration
            if start <= at < end:
                return start, end
        return None

    def covers(self, at: dt.datetime) -> bool:
        return self.occurrence_at(at) is not None


class DiscoveryJob(models.Model):
    """A sweep of a network with SNMP that adds the devices that answer to the asset register
    (vendor and model from sysObjectID and sysDescr, interfaces from IF-MIB)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="+"
    )
    site = models.ForeignKey(
        Site, verbose_name=_("site"), null=True, blank=True, on_delete=models.SET_NULL
    )
    network = models.CharField(_("network"), max_length=50, help_text=_("e.g. 10.1.20.0/24"))
    snmp_credential = models.ForeignKey(
        SnmpCredential,
        verbose_name=_("SNMP credentials"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    port = models.PositiveIntegerField(_("SNMP port"), default=161)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.QUEUED
    )
    hosts_total = models.PositiveIntegerField(_("addresses"), default=0)
    hosts_answered = models.PositiveIntegerField(_("answered"), default=0)
    devices_created = models.PositiveIntegerField(_("devices added"), default=0)
    devices_updated = models.PositiveIntegerField(_("devices updated"), default=0)
    # One row per device that answered: address, name, vendor, model, device id, what was done.
    results = models.JSONField(default=list, blank=True, editable=False)
    note = models.JSONField(_("message"), default=dict, blank=True)  # a probes.base.Note
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    scope_customer_field = "customer_id"
    audit_exclude = ("results", "hosts_answered", "devices_created", "devices_updated")

    class Meta:
        ordering = ["-id"]
        verbose_name = _("discovery job")
        verbose_name_plural = _("discovery jobs")

    def __str__(self) -> str:
        return f"{self.network} ({self.get_status_display()})"

    @property
    def message(self) -> str:
        return note_text(self.note)


class SnmpTrap(models.Model):
    """An SNMP notification received by the poller, on the device it came from (matched by
    address; kept without a device when none matches), for alerting to use."""

    device = models.ForeignKey(
        Device,
        verbose_name=_("device"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="snmp_traps",
    )
    source = models.GenericIPAddressField(_("sent from"))
    version = models.CharField(_("version"), max_length=2)
    # The v3 user it was sent as; a v2c community is a secret and is not kept.
    sender = models.CharField(_("v3 user"), max_length=100, blank=True)
    trap_oid = models.CharField(_("notification"), max_length=200)
    uptime_s = models.FloatField(_("sender uptime (s)"), null=True, blank=True)
    variables = models.JSONField(_("variables"), default=dict, blank=True)
    received_at = models.DateTimeField(_("received"), default=timezone.now, db_index=True)

    scope_customer_field = "device__customer_id"

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("SNMP trap")
        verbose_name_plural = _("SNMP traps")

    def __str__(self) -> str:
        return f"{self.trap_oid} from {self.source}"
