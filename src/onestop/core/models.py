"""Customers, their sites and contacts, the provider's staff and teams, and the audit trail."""

from __future__ import annotations

from zoneinfo import available_timezones

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

TIME_ZONE_CHOICES = sorted((tz, tz) for tz in available_timezones() if "/" in tz)


class ServiceLine(models.TextChoices):
    """What the provider sells; contracts and customers refer to these codes."""

    DESKTOP = "desktop", _("Desktop IT outsourcing")
    REMOTE_3A = "remote_3a", _("3A remote service")
    NETWORK_OPS = "network_ops", _("Network & server operations")
    INTEGRATION = "integration", _("System integration")
    WEAK_CURRENT = "weak_current", _("Weak-current engineering")
    PROCUREMENT = "procurement", _("IT procurement")
    CLOUD = "cloud", _("Cloud & SaaS")
    SECURITY = "security", _("Network security")


class Industry(models.TextChoices):
    MANUFACTURING = "manufacturing", _("Manufacturing")
    FINANCE = "finance", _("Finance")
    RETAIL = "retail", _("Retail")
    HEALTHCARE = "healthcare", _("Healthcare")
    EDUCATION = "education", _("Education")
    LOGISTICS = "logistics", _("Logistics")
    PROFESSIONAL = "professional", _("Professional services")
    REAL_ESTATE = "real_estate", _("Real estate")
    GOVERNMENT = "government", _("Public sector")
    TECHNOLOGY = "technology", _("Technology")
    HOSPITALITY = "hospitality", _("Hospitality")
    OTHER = "other", _("Other")


class TimestampedModel(models.Model):
    """Base for business objects: creation and update instants, in UTC."""

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        abstract = True


class Customer(TimestampedModel):
    """A company the provider serves; may belong to a group company (集团) through `parent`."""

    class Status(models.TextChoices):
        PROSPECT = "prospect", _("Prospect")
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        ENDED = "ended", _("Ended")

    name = models.CharField(_("name"), max_length=200)
    short_code = models.CharField(
        _("short code"),
        max_length=16,
        unique=True,
        validators=[
            RegexValidator(
                r"^[A-Z0-9][A-Z0-9-]{1,15}$",
                _("2–16 capital letters, digits or dashes, e.g. SHJD-01."),
            )
        ],
        help_text=_("Used in ticket numbers and reports, e.g. SHJD."),
    )
    industry = models.CharField(
        _("industry"), max_length=32, choices=Industry.choices, default=Industry.OTHER
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    service_lines = models.JSONField(_("service lines"), default=list, blank=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("group company"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="subsidiaries",
    )
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    website = models.URLField(_("website"), blank=True)
    mail_domains = models.JSONField(
        _("mail domains"),
        default=list,
        blank=True,
        help_text=_("Mail from these domains is filed under this customer, e.g. example.cn."),
    )
    notes = models.TextField(_("notes"), blank=True)
    search_text = models.TextField(editable=False, default="")

    audit_exclude = ("search_text",)

    class Meta:
        ordering = ["name"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")

    def __str__(self) -> str:
        return self.name

    @property
    def customer_id(self) -> int:
        """A customer is scoped by itself, like every other customer-owned object."""
        return self.pk


class Site(TimestampedModel):
    """A place where a customer has staff or equipment: an office, a plant, a data room."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="sites"
    )
    name = models.CharField(_("name"), max_length=200)
    address = models.CharField(_("address"), max_length=400, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, choices=TIME_ZONE_CHOICES, default="Asia/Shanghai"
    )
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        ordering = ["customer__name", "name"]
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        constraints = [
            models.UniqueConstraint(fields=["customer", "name"], name="site_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Contact(TimestampedModel):
    """A person at a customer whom the provider's staff deal with."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="contacts"
    )
    site = models.ForeignKey(
        Site,
        verbose_name=_("site"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="contacts",
    )
    name = models.CharField(_("full name"), max_length=100)
    title = models.CharField(_("job title"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    email = models.EmailField(_("email"), blank=True)
    # Set when mail to `email` bounced; no more mail goes there until the address is changed.
    email_bounced_at = models.DateTimeField(_("email bounced"), null=True, blank=True)
    is_vip = models.BooleanField(_("VIP"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    notes = models.TextField(_("notes"), blank=True)
    search_text = models.TextField(editable=False, default="")

    audit_exclude = ("search_text",)

    class Meta:
        ordering = ["name"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    MANAGER = "manager", _("Manager")
    DISPATCHER = "dispatcher", _("Dispatcher")
    ENGINEER = "engineer", _("Engineer")
    SALES = "sales", _("Sales")
    CUSTOMER = "customer", _("Customer user")


STAFF_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.DISPATCHER, Role.ENGINEER, Role.SALES})
ALL_SEEING_ROLES = frozenset({Role.ADMIN, Role.MANAGER})


class User(AbstractUser):
    """Anyone who logs in: the provider's staff (by role) or a customer's portal user."""

    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.ENGINEER)
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="portal_users",
        help_text=_("Only for customer users: the company they belong to."),
    )
    is_customer_admin = models.BooleanField(
        _("customer administrator"),
        default=False,
        help_text=_("A customer user who sees all of their company's records."),
    )
    customers = models.ManyToManyField(
        Customer,
        verbose_name=_("customers served"),
        blank=True,
        related_name="engineers",
        help_text=_("Staff only: the customers this person serves directly."),
    )
    display_name = models.CharField(_("display name"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    language = models.CharField(
        _("language"),
        max_length=8,
        blank=True,
        choices=[("zh-hans", "简体中文"), ("en", "English")],
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, choices=TIME_ZONE_CHOICES, default="Asia/Shanghai"
    )
    totp_secret = models.TextField(blank=True, editable=False)  # encrypted; see core.crypto
    totp_enabled = models.BooleanField(_("two-factor authentication"), default=False)
    search_text = models.TextField(editable=False, default="")

    objects = UserManager()

    audit_exclude = ("search_text", "last_login")
    audit_secret = ("password", "totp_secret")

    class Meta:
        ordering = ["username"]
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.CheckConstraint(
                condition=Q(role="customer", customer__isnull=False) | ~Q(role="customer"),
                name="user_customer_role_has_customer",
            ),
            models.CheckConstraint(
                condition=Q(role="customer") | Q(customer__isnull=True),
                name="user_staff_has_no_customer",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def is_provider_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_customer_user(self) -> bool:
        return self.role == Role.CUSTOMER


class Team(TimestampedModel):
    """A group of the provider's staff (e.g. 桌面运维一组) serving a set of customers."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    lead = models.ForeignKey(
        User,
        verbose_name=_("team lead"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="led_teams",
    )
    members = models.ManyToManyField(
        User, verbose_name=_("members"), blank=True, related_name="teams"
    )
    customers = models.ManyToManyField(
        Customer, verbose_name=_("customers served"), blank=True, related_name="teams"
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self) -> str:
        return self.name


class ApiToken(models.Model):
    """A personal API token; only its SHA-256 hash is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100, blank=True)
    prefix = models.CharField(max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    audit_exclude = ("last_used_at",)
    audit_secret = ("key_hash",)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})" if self.name else f"{self.prefix}…"


class AppendOnlyQuerySet(models.QuerySet):
    """Refuses bulk updates and deletes: audit and domain events are history."""

    def update(self, **kwargs):
        raise PermissionError("append-only: rows cannot be updated")

    def delete(self):
        raise PermissionError("append-only: rows cannot be deleted")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError(f"{type(self).__name__} is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(f"{type(self).__name__} is append-only")


class AuditEvent(AppendOnlyModel):
    """One change to a business object: who, when, from where, and the fields before/after."""

    class Source(models.TextChoices):
        UI = "ui", _("Web UI")
        API = "api", _("API")
        CLI = "cli", _("Command line")
        SYSTEM = "system", _("System")

    class Action(models.TextChoices):
        CREATE = "create", _("Created")
        UPDATE = "update", _("Updated")
        DELETE = "delete", _("Deleted")
        LOGIN = "login", _("Logged in")
        LOGIN_FAILED = "login_failed", _("Login failed")
        LOGOUT = "logout", _("Logged out")

    occurred_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        User,
        verbose_name=_("who"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    actor_name = models.CharField(_("who"), max_length=150, blank=True)
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    object_type = models.CharField(_("object type"), max_length=64, db_index=True)
    object_id = models.CharField(_("object"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    customer_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=36, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return (
            f"{self.occurred_at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.object_repr}"
        )


class DomainEvent(AppendOnlyModel):
    """A fact other apps react to, written in the same transaction as the change it reports.

    Consumers read forward from their own cursor (`EventCursor`), so nothing is lost or repeated.
    """

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    name = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    customer_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name} {self.object_type}:{self.object_id}"


class EventCursor(models.Model):
    """How far a consumer has read the domain event table."""

    consumer = models.CharField(max_length=64, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.consumer} @ {self.last_event_id}"
