"""Notifications: in the app (what each user was told, read or not), and outside it through
channels (email, webhooks, DingTalk, WeCom, Feishu) chosen by rules, each delivery recorded."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from onestop.core.models import Customer, DomainEvent, Team, User


class Notification(models.Model):
    """One event told to one user; unique per (user, event), so dispatching twice adds nothing."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    event = models.ForeignKey(DomainEvent, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=64)
    subject = models.CharField(_("subject"), max_length=300)
    url = models.CharField(max_length=300, blank=True)
    customer_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            models.UniqueConstraint(fields=["user", "event"], name="notification_once_per_user")
        ]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_inbox")]

    def __str__(self) -> str:
        return self.subject

    @staticmethod
    def scope_filter(user: User, customer_ids: set[int] | None) -> models.Q:
        """Everyone sees only their own notifications."""
        return models.Q(user=user)


class Channel(models.Model):
    """Where notifications go outside the app: an email list, a webhook or a group robot.

    The URL (robots carry their access token in it) and the signing secret are stored
    encrypted and never shown again after saving.
    """

    class Kind(models.TextChoices):
        EMAIL = "email", _("Email")
        WEBHOOK = "webhook", _("Webhook")
        DINGTALK = "dingtalk", _("DingTalk group robot")
        WECOM = "wecom", _("WeCom group robot")
        FEISHU = "feishu", _("Feishu bot")

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    url_encrypted = models.TextField(blank=True)
    secret_encrypted = models.TextField(blank=True)
    email_to = models.TextField(_("email addresses"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    scope_provider_wide = True
    audit_secret = ("url_encrypted", "secret_encrypted")

    class Meta:
        ordering = ["name"]
        verbose_name = _("notification channel")
        verbose_name_plural = _("notification channels")

    def __str__(self) -> str:
        return self.name

    @property
    def is_robot(self) -> bool:
        return self.kind in (self.Kind.DINGTALK, self.Kind.WECOM, self.Kind.FEISHU)

    @property
    def recipients(self) -> list[str]:
        """The email channel's addresses, one per line or separated by commas."""
        return [a.strip() for a in self.email_to.replace(",", "\n").splitlines() if a.strip()]


class Rule(models.Model):
    """Which events go to which channel, optionally only for a customer, a team or priorities."""

    name = models.CharField(_("name"), max_length=100)
    channel = models.ForeignKey(
        Channel, verbose_name=_("channel"), on_delete=models.CASCADE, related_name="rules"
    )
    events = models.JSONField(_("events"), default=list)
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), null=True, blank=True, on_delete=models.CASCADE
    )
    team = models.ForeignKey(
        Team, verbose_name=_("team"), null=True, blank=True, on_delete=models.CASCADE
    )
    priorities = models.JSONField(_("priorities"), default=list, blank=True)
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, default="zh-hans"
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    scope_provider_wide = True

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("notification rule")
        verbose_name_plural = _("notification rules")

    def __str__(self) -> str:
        return self.name


class Delivery(models.Model):
    """One message to one channel, with every attempt and the final result.

    Unique per (rule, event): planning an event twice adds nothing. Messages beyond a robot's
    rate are folded into a digest delivery and marked "in digest", never dropped.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        DIGESTED = "digested", _("Sent in a digest")

    # A rule's delivery goes to its channel; a personal email (a user's preference) to one address.
    channel = models.ForeignKey(
        Channel,
        verbose_name=_("channel"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    recipient = models.CharField(_("recipient"), max_length=254, blank=True)
    rule = models.ForeignKey(
        Rule, verbose_name=_("rule"), null=True, blank=True, on_delete=models.SET_NULL
    )
    event = models.ForeignKey(
        DomainEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    event_name = models.CharField(_("event"), max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    customer_id = models.BigIntegerField(null=True, blank=True)
    title = models.CharField(_("title"), max_length=300)
    text = models.TextField(_("text"), blank=True)
    url = models.CharField(max_length=500, blank=True)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.PENDING
    )
    attempts = models.JSONField(_("attempts"), default=list)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    digest = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="folded"
    )
    created_at = models.DateTimeField(_("time"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    scope_customer_field = "customer_id"

    class Meta:
        ordering = ["-id"]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "event"],
                condition=models.Q(rule__isnull=False, event__isnull=False),
                name="delivery_once_per_rule_event",
            ),
            models.UniqueConstraint(
                fields=["recipient", "event"],
                condition=models.Q(channel__isnull=True, event__isnull=False),
                name="delivery_once_per_person_event",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["channel", "finished_at"], name="delivery_channel_rate"),
            models.Index(fields=["object_type", "object_id"], name="delivery_object"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def attempt_rows(self) -> list[dict]:
        """The attempts with their times as datetimes, for showing in the reader's zone."""
        return [
            {**attempt, "at": datetime.fromisoformat(attempt["at"])}
            for attempt in self.attempts
            if attempt.get("at")
        ]

    @staticmethod
    def scope_filter(user: User, customer_ids: set[int] | None) -> models.Q | None:
        """Staff see deliveries about the customers they serve (admins and managers all, and
        those about nobody's customer); customers none."""
        if not user.is_provider_staff:
            return models.Q(pk__in=())
        if customer_ids is None:
            return None
        return models.Q(customer_id__in=customer_ids)


class Preference(models.Model):
    """A user's choice for one event: told in the app, by email, both or not at all, and
    quiet hours during which emails wait (the in-app inbox is always written)."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="notify_preference")
    muted_events = models.JSONField(_("events I am not told of"), default=list, blank=True)
    email_events = models.JSONField(_("events also sent to me by email"), default=list, blank=True)
    quiet_from = models.TimeField(_("quiet hours from"), null=True, blank=True)
    quiet_until = models.TimeField(_("quiet hours until"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")

    def __str__(self) -> str:
        return str(self.user)

    @staticmethod
    def scope_filter(user: User, customer_ids: set[int] | None) -> models.Q:
        return models.Q(user=user)
