"""Contracts with customers, the SLA policies they promise, and the business calendars that
SLA clocks run on."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from onestop.core.models import TIME_ZONE_CHOICES, Customer, Site, Team, TimestampedModel, User


class Priority(models.TextChoices):
    P1 = "P1", _("P1 – critical")
    P2 = "P2", _("P2 – high")
    P3 = "P3", _("P3 – normal")
    P4 = "P4", _("P4 – low")


class BusinessCalendar(TimestampedModel):
    """Working hours in a time zone, with holidays and make-up workdays (调休) by date.

    `weekly_hours` holds seven lists (Monday first) of [start, end] minutes after local
    midnight, e.g. [[540, 720], [780, 1080]] for 09:00–12:00 and 13:00–18:00.
    """

    class Preset(models.TextChoices):
        FIVE_BY_EIGHT = "5x8", _("5×8 (Mon–Fri 09:00–18:00, lunch 12:00–13:00)")
        FIVE_BY_TWELVE = "5x12", _("5×12 (Mon–Fri 08:00–20:00)")
        SEVEN_BY_TWENTY_FOUR = "7x24", _("7×24")
        CUSTOM = "custom", _("Custom")

    name = models.CharField(_("name"), max_length=100, unique=True)
    preset = models.CharField(
        _("preset"), max_length=8, choices=Preset.choices, default=Preset.FIVE_BY_EIGHT
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, choices=TIME_ZONE_CHOICES, default="Asia/Shanghai"
    )
    weekly_hours = models.JSONField(_("weekly hours"), default=list)
    uses_holidays = models.BooleanField(
        _("holidays apply"),
        default=True,
        help_text=_("Off for round-the-clock service: holidays and make-up days are ignored."),
    )
    is_default = models.BooleanField(_("default calendar"), default=False)

    scope_provider_wide = True

    class Meta:
        ordering = ["name"]
        verbose_name = _("business calendar")
        verbose_name_plural = _("business calendars")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="calendar_single_default",
            )
        ]

    def __str__(self) -> str:
        return self.name


class CalendarDay(models.Model):
    """One date that differs from the weekly hours: a holiday or an extra working day."""

    class Kind(models.TextChoices):
        HOLIDAY = "holiday", _("Holiday")
        WORKDAY = "workday", _("Working day (make-up workday)")

    class Source(models.TextChoices):
        MANUAL = "manual", _("Entered by hand")
        CHINESE_CALENDAR = "chinesecalendar", _("Chinese statutory calendar")
        ICAL = "ical", _("iCal feed")

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="days")
    date = models.DateField(_("date"))
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=100, blank=True)
    hours = models.JSONField(
        _("working hours"),
        default=list,
        blank=True,
        help_text=_("For a working day: its hours; empty means a normal weekday's hours."),
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)

    class Meta:
        ordering = ["date"]
        verbose_name = _("calendar day")
        verbose_name_plural = _("calendar days")
        constraints = [
            models.UniqueConstraint(fields=["calendar", "date"], name="calendar_day_unique")
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.get_kind_display()}"


class CalendarYear(models.Model):
    """A year whose holidays are known for a calendar; other years give provisional due times."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="years")
    year = models.PositiveSmallIntegerField(_("year"))
    source = models.CharField(_("source"), max_length=16, choices=CalendarDay.Source.choices)
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["year"]
        constraints = [
            models.UniqueConstraint(fields=["calendar", "year"], name="calendar_year_unique")
        ]

    def __str__(self) -> str:
        return str(self.year)


class SlaPolicy(TimestampedModel):
    """Response and resolution promises per priority, in business minutes."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    is_default = models.BooleanField(_("global default"), default=False)

    scope_provider_wide = True

    class Meta:
        ordering = ["name"]
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="sla_policy_single_default",
            )
        ]

    def __str__(self) -> str:
        return self.name


class SlaTarget(models.Model):
    """The targets of one priority within a policy."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="targets")
    priority = models.CharField(_("priority"), max_length=2, choices=Priority.choices)
    first_response_minutes = models.PositiveIntegerField(
        _("first response (business minutes)"), validators=[MinValueValidator(1)]
    )
    resolution_minutes = models.PositiveIntegerField(
        _("resolution (business minutes)"), validators=[MinValueValidator(1)]
    )
    next_update_minutes = models.PositiveIntegerField(
        _("next update (business minutes)"), null=True, blank=True
    )

    class Meta:
        ordering = ["priority"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "priority"], name="sla_target_unique")
        ]

    def __str__(self) -> str:
        return f"{self.policy} {self.priority}"


class SlaEscalation(models.Model):
    """What happens when a ticket has used a share of its resolution target (100 % = breach)."""

    class Action(models.TextChoices):
        NOTIFY = "notify", _("Notify")
        REASSIGN = "reassign", _("Reassign")
        RAISE_PRIORITY = "raise_priority", _("Raise priority")

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="escalations")
    percent = models.PositiveSmallIntegerField(
        _("share of the resolution target, in percent"),
        validators=[MinValueValidator(1), MaxValueValidator(300)],
    )
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    team = models.ForeignKey(
        Team, verbose_name=_("reassign to team"), null=True, blank=True, on_delete=models.PROTECT
    )
    assignee = models.ForeignKey(
        User,
        verbose_name=_("reassign to"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        ordering = ["percent", "id"]
        verbose_name = _("escalation level")
        verbose_name_plural = _("escalation levels")

    def __str__(self) -> str:
        return f"{self.percent}% {self.action}"


class Contract(TimestampedModel):
    """What a customer buys: service lines, period, pricing, covered sites, SLA and hours."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        EXPIRED = "expired", _("Expired")
        TERMINATED = "terminated", _("Terminated")

    class Pricing(models.TextChoices):
        PER_SEAT = "per_seat", _("Per seat")
        PER_DEVICE = "per_device", _("Per device")
        FIXED_MONTHLY = "fixed_monthly", _("Fixed monthly fee")
        BLOCK_HOURS = "block_hours", _("Prepaid block of hours")
        PER_INCIDENT = "per_incident", _("Per incident")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="contracts"
    )
    number = models.CharField(_("contract number"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    service_lines = models.JSONField(_("service lines"), default=list, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    start_date = models.DateField(_("start"))
    end_date = models.DateField(_("end"), null=True, blank=True)
    pricing = models.CharField(
        _("pricing model"), max_length=16, choices=Pricing.choices, default=Pricing.FIXED_MONTHLY
    )
    unit_price = models.DecimalField(
        _("price (CNY)"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    quantity = models.PositiveIntegerField(_("seats / devices"), null=True, blank=True)
    block_minutes = models.PositiveIntegerField(
        _("prepaid minutes"), null=True, blank=True, help_text=_("For a block of hours.")
    )
    sites = models.ManyToManyField(Site, verbose_name=_("covered sites"), blank=True)
    sla_policy = models.ForeignKey(
        SlaPolicy, verbose_name=_("SLA policy"), null=True, blank=True, on_delete=models.PROTECT
    )
    calendar = models.ForeignKey(
        BusinessCalendar,
        verbose_name=_("service hours"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
    )
    onsite_response_hours = models.PositiveIntegerField(
        _("on-site response (hours)"), null=True, blank=True
    )
    renewal_reminder_days = models.PositiveIntegerField(_("renewal reminder (days)"), default=60)
    is_customer_default = models.BooleanField(
        _("customer's default contract"),
        default=False,
        help_text=_("Used for tickets that name no contract."),
    )
    notes = models.TextField(_("notes"), blank=True)

    scope_customer_field = "customer_id"

    class Meta:
        ordering = ["customer__name", "-start_date"]
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(is_customer_default=True),
                name="contract_single_customer_default",
            ),
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True)
                | models.Q(end_date__gte=models.F("start_date")),
                name="contract_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"
