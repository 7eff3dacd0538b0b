"""The agent side of monitoring: enrolment tokens for a site, the agents enrolled with them,
and the reports they sent (kept for exactly-once storage of retried reports)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from onestop.assets.models import Device
from onestop.core.models import Site, User

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
