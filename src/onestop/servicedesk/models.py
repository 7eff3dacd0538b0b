"""Tickets, their timeline, and the SLA figures stored for reporting."""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from onestop.assets.models import Device
from onestop.contracts.models import BusinessCalendar, Contract, Priority, SlaPolicy
from onestop.core.models import Contact, Customer, Role, Site, Team, User


class TicketType(models.TextChoices):
    INCIDENT = "incident", _("Incident")
    SERVICE_REQUEST = "service_request", _("Service request")
    PROBLEM = "problem", _("Problem")
    CHANGE = "change", _("Change")


class Channel(models.TextChoices):
    PORTAL = "portal", _("Portal")
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    API = "api", _("API")
    ALERT = "alert", _("Alert")
    WEB = "web", _("Entered by staff")
    SCHEDULE = "schedule", _("Schedule")


class Status(models.TextChoices):
    NEW = "new", _("New")
    ASSIGNED = "assigned", _("Assigned")
    IN_PROGRESS = "in_progress", _("In progress")
    WAITING_CUSTOMER = "waiting_customer", _("Waiting for customer")
    WAITING_VENDOR = "waiting_vendor", _("Waiting for vendor")
    VISIT_SCHEDULED = "visit_scheduled", _("Visit scheduled")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")


PAUSING_STATUSES = frozenset(
    {Status.WAITING_CUSTOMER, Status.WAITING_VENDOR, Status.VISIT_SCHEDULED}
)
OPEN_STATUSES = frozenset(
    {
        Status.NEW,
        Status.ASSIGNED,
        Status.IN_PROGRESS,
        Status.WAITING_CUSTOMER,
        Status.WAITING_VENDOR,
        Status.VISIT_SCHEDULED,
    }
)
_WORKING = {
    Status.ASSIGNED,
    Status.IN_PROGRESS,
    Status.WAITING_CUSTOMER,
    Status.WAITING_VENDOR,
    Status.VISIT_SCHEDULED,
    Status.RESOLVED,
}
# The workflow: which status may follow which. Reopening is resolved → in progress.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.NEW: frozenset(_WORKING),
    Status.ASSIGNED: frozenset(_WORKING - {Status.ASSIGNED}),
    Status.IN_PROGRESS: frozenset(_WORKING - {Status.IN_PROGRESS}),
    Status.WAITING_CUSTOMER: frozenset(_WORKING - {Status.WAITING_CUSTOMER}),
    Status.WAITING_VENDOR: frozenset(_WORKING - {Status.WAITING_VENDOR}),
    Status.VISIT_SCHEDULED: frozenset(_WORKING - {Status.VISIT_SCHEDULED}),
    Status.RESOLVED: frozenset({Status.CLOSED, Status.IN_PROGRESS}),
    Status.CLOSED: frozenset(),
}

# Impact × urgency → priority (ITIL matrix; 1 = high).
PRIORITY_MATRIX = {
    (1, 1): Priority.P1,
    (1, 2): Priority.P2,
    (2, 1): Priority.P2,
    (1, 3): Priority.P3,
    (2, 2): Priority.P3,
    (3, 1): Priority.P3,
    (2, 3): Priority.P4,
    (3, 2): Priority.P4,
    (3, 3): Priority.P4,
}


class Level(models.IntegerChoices):
    HIGH = 1, _("High")
    MEDIUM = 2, _("Medium")
    LOW = 3, _("Low")


class Ticket(models.Model):
    """A request or incident of a customer, with its SLA clock."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="tickets"
    )
    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), null=True, blank=True, on_delete=models.PROTECT
    )
    site = models.ForeignKey(
        Site, verbose_name=_("site"), null=True, blank=True, on_delete=models.SET_NULL
    )
    device = models.ForeignKey(
        Device,
        verbose_name=_("device"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tickets",
    )
    requester = models.ForeignKey(
        Contact,
        verbose_name=_("requester"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tickets",
    )
    requester_user = models.ForeignKey(
        User,
        verbose_name=_("requested by (portal)"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="requested_tickets",
    )
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    type = models.CharField(
        _("type"), max_length=16, choices=TicketType.choices, default=TicketType.INCIDENT
    )
    category = models.CharField(_("category"), max_length=100, blank=True)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.NEW
    )
    impact = models.PositiveSmallIntegerField(_("impact"), choices=Level.choices, default=2)
    urgency = models.PositiveSmallIntegerField(_("urgency"), choices=Level.choices, default=2)
    priority = models.CharField(_("priority"), max_length=2, choices=Priority.choices)
    team = models.ForeignKey(
        Team, verbose_name=_("team"), null=True, blank=True, on_delete=models.SET_NULL
    )
    assignee = models.ForeignKey(
        User,
        verbose_name=_("assignee"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    opened_at = models.DateTimeField(_("opened"))
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    imported = models.BooleanField(_("imported"), default=False)
    mailbox = models.ForeignKey(
        "servicedesk.Mailbox",
        verbose_name=_("mailbox"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tickets",
        help_text=_("Replies by email go out from this address."),
    )

    # SLA clock (see servicedesk.sla)
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
    first_response_due_at = models.DateTimeField(_("first response due"), null=True, blank=True)
    resolution_due_at = models.DateTimeField(_("resolution due"), null=True, blank=True)
    sla_provisional = models.BooleanField(_("due times provisional"), default=False)
    sla_paused_since = models.DateTimeField(null=True, blank=True)
    sla_paused_seconds = models.PositiveIntegerField(default=0)
    sla_warned_percent = models.PositiveSmallIntegerField(default=0)

    # Stored for reporting
    first_response_minutes = models.PositiveIntegerField(null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField(null=True, blank=True)
    first_response_breached = models.BooleanField(default=False)
    resolution_breached = models.BooleanField(default=False)

    watchers = models.ManyToManyField(
        User, verbose_name=_("watchers"), blank=True, related_name="watched_tickets"
    )
    cc_contacts = models.ManyToManyField(
        Contact, verbose_name=_("in copy"), blank=True, related_name="copied_tickets"
    )
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent ticket"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
    )
    related = models.ManyToManyField("self", verbose_name=_("related tickets"), blank=True)
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merged",
    )

    # Satisfaction survey, answered by the customer once the ticket is resolved
    csat_score = models.PositiveSmallIntegerField(
        _("satisfaction"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
    )
    csat_comment = models.TextField(_("satisfaction comment"), blank=True)
    csat_at = models.DateTimeField(_("rated"), null=True, blank=True)

    search_text = models.TextField(editable=False, default="")

    audit_exclude = ("search_text", "updated_at")
    scope_customer_field = "customer_id"

    class Meta:
        ordering = ["-id"]
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        indexes = [
            models.Index(fields=["customer", "status", "-id"], name="ticket_customer_status"),
            models.Index(fields=["status", "resolution_due_at"], name="ticket_status_due"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_status"),
            models.Index(fields=["team", "status"], name="ticket_team_status"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @staticmethod
    def scope_own_records(user: User) -> models.Q:
        """A plain customer user's own tickets: opened by them or naming them as requester."""
        own = models.Q(requester_user=user)
        if user.email:
            own |= models.Q(requester__email__iexact=user.email)
        return own

    @property
    def sla_paused_minutes(self) -> int:
        return self.sla_paused_seconds // 60

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class EmailState(models.TextChoices):
    PENDING = "pending", _("Email pending")
    SENT = "sent", _("Emailed")
    FAILED = "failed", _("Email failed")


class TicketEntry(models.Model):
    """One line of a ticket's timeline: a reply, an internal note, a call, a status change."""

    class Kind(models.TextChoices):
        REPLY = "reply", _("Reply")
        NOTE = "note", _("Internal note")
        CALL = "call", _("Phone call")
        EVENT = "event", _("Change")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    is_public = models.BooleanField(_("visible to the customer"), default=True)
    author = models.ForeignKey(
        User, verbose_name=_("author"), null=True, blank=True, on_delete=models.SET_NULL
    )
    author_contact = models.ForeignKey(
        Contact, verbose_name=_("author"), null=True, blank=True, on_delete=models.SET_NULL
    )
    body = models.TextField(_("text"))
    created_at = models.DateTimeField(_("time"))
    # The Message-ID of the mail this entry came in as, or went out as: replies thread on it.
    message_id = models.CharField(_("Message-ID"), max_length=995, blank=True, db_index=True)
    # A public reply by staff is emailed to the requester; "" when no email goes out.
    email_state = models.CharField(
        _("email"), max_length=8, choices=EmailState.choices, blank=True, default=""
    )
    email_attempts = models.JSONField(_("email attempts"), default=list, blank=True)
    email_error = models.TextField(_("email error"), blank=True)
    email_next_at = models.DateTimeField(_("next email attempt"), null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("ticket entry")
        verbose_name_plural = _("ticket entries")

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind} {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def customer_id(self) -> int:
        return self.ticket.customer_id


class TimeEntry(models.Model):
    """Work time on a ticket; billable time under a block-of-hours contract draws it down."""

    class Kind(models.TextChoices):
        REMOTE = "remote", _("Remote")
        ONSITE = "onsite", _("On site")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="time_entries")
    user = models.ForeignKey(User, verbose_name=_("engineer"), on_delete=models.PROTECT)
    date = models.DateField(_("date"))
    minutes = models.PositiveIntegerField(_("minutes"))
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.REMOTE)
    billable = models.BooleanField(_("billable"), default=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    contract = models.ForeignKey(
        Contract,
        verbose_name=_("charged to contract"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="time_entries",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    scope_customer_field = "ticket__customer_id"

    class Meta:
        ordering = ["-date", "-id"]
        verbose_name = _("time entry")
        verbose_name_plural = _("time entries")

    def __str__(self) -> str:
        return f"{self.date} {self.minutes} min"

    @property
    def customer_id(self) -> int:
        return self.ticket.customer_id


class KnowledgeArticle(models.Model):
    """A how-to or known fix, internal to the provider or published to customers."""

    class Visibility(models.TextChoices):
        INTERNAL = "internal", _("Staff only")
        ALL_CUSTOMERS = "all_customers", _("All customers")
        SELECTED = "selected", _("Selected customers")

    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"))
    category = models.CharField(_("category"), max_length=100, blank=True)
    visibility = models.CharField(
        _("visible to"), max_length=16, choices=Visibility.choices, default=Visibility.INTERNAL
    )
    customers = models.ManyToManyField(
        Customer, verbose_name=_("customers"), blank=True, related_name="knowledge_articles"
    )
    is_published = models.BooleanField(_("published"), default=False)
    author = models.ForeignKey(
        User, verbose_name=_("author"), null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    search_text = models.TextField(editable=False, default="")

    audit_exclude = ("search_text", "updated_at")

    class Meta:
        ordering = ["title"]
        verbose_name = _("knowledge-base article")
        verbose_name_plural = _("knowledge-base articles")

    def __str__(self) -> str:
        return self.title

    @staticmethod
    def scope_filter(user: User, customer_ids: set[int] | None) -> models.Q | None:
        """Staff read every article; customer users the published ones meant for them."""
        if user.is_provider_staff:
            return None
        meant_for_them = models.Q(visibility="all_customers") | models.Q(
            visibility="selected", customers__in=customer_ids or ()
        )
        return models.Q(is_published=True) & meant_for_them


class RecurringTicket(models.Model):
    """A ticket opened on a schedule, e.g. the monthly backup check (每月备份检查)."""

    class Frequency(models.TextChoices):
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly")
        MONTHLY = "monthly", _("Monthly")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="+"
    )
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    type = models.CharField(
        _("type"), max_length=16, choices=TicketType.choices, default=TicketType.SERVICE_REQUEST
    )
    priority = models.CharField(_("priority"), max_length=2, choices=Priority.choices)
    team = models.ForeignKey(
        Team, verbose_name=_("team"), null=True, blank=True, on_delete=models.SET_NULL
    )
    assignee = models.ForeignKey(
        User,
        verbose_name=_("assignee"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    frequency = models.CharField(_("frequency"), max_length=8, choices=Frequency.choices)
    weekday = models.PositiveSmallIntegerField(_("weekday (0 = Monday)"), null=True, blank=True)
    day_of_month = models.PositiveSmallIntegerField(_("day of month"), null=True, blank=True)
    time_of_day = models.TimeField(_("time of day"))
    next_run_at = models.DateTimeField(_("next ticket"))
    is_active = models.BooleanField(_("active"), default=True)
    last_ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    scope_customer_field = "customer_id"

    class Meta:
        ordering = ["next_run_at"]
        verbose_name = _("recurring ticket")
        verbose_name_plural = _("recurring tickets")

    def __str__(self) -> str:
        return self.title


def attachment_path(attachment: TicketAttachment, filename: str) -> str:
    """Stored under a random name: the original name is kept in the row, never on disk."""
    return f"tickets/{attachment.ticket_id}/{uuid.uuid4().hex}"


class TicketAttachment(models.Model):
    """A file on a ticket, optionally on one of its timeline entries."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    entry = models.ForeignKey(
        TicketEntry, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    file = models.FileField(upload_to=attachment_path, max_length=200)
    name = models.CharField(_("file name"), max_length=255)
    size = models.PositiveBigIntegerField(_("size"))
    content_type = models.CharField(_("type"), max_length=100)
    is_public = models.BooleanField(_("visible to the customer"), default=True)
    uploaded_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    scope_customer_field = "ticket__customer_id"

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.name

    @property
    def customer_id(self) -> int:
        return self.ticket.customer_id


class CannedReply(models.Model):
    """A ready-made reply text that staff insert into a ticket reply (常用回复): global, or
    shared with one team."""

    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"))
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="canned_replies",
        help_text=_("Empty: every staff member may use it."),
    )
    created_by = models.ForeignKey(
        User, verbose_name=_("created by"), null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    audit_exclude = ("updated_at",)

    class Meta:
        ordering = ["title", "id"]
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")

    def __str__(self) -> str:
        return self.title

    @staticmethod
    def scope_filter(user: User, customer_ids: set[int] | None) -> models.Q | None:
        """Admins and managers see every reply; other staff the global ones and their teams';
        customer users none."""
        if not user.is_provider_staff:
            return models.Q(pk__in=())
        if customer_ids is None:
            return None
        return models.Q(team__isnull=True) | models.Q(team__members=user)


class SavedTicketView(models.Model):
    """A named set of queue filters (the queue's query string), for its owner and, when
    shared, for the owner's team-mates."""

    user = models.ForeignKey(
        User, verbose_name=_("owner"), on_delete=models.CASCADE, related_name="saved_ticket_views"
    )
    name = models.CharField(_("name"), max_length=100)
    query = models.CharField(_("filters"), max_length=1000, blank=True)
    is_shared = models.BooleanField(
        _("shared with my teams"), default=False, help_text=_("Team-mates see it too.")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("saved ticket view")
        verbose_name_plural = _("saved ticket views")

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def scope_filter(user: User, customer_ids: set[int] | None) -> models.Q | None:
        """Staff see their own views and those their team-mates share; customer users none."""
        if not user.is_provider_staff:
            return models.Q(pk__in=())
        return models.Q(user=user) | models.Q(is_shared=True, user__teams__members=user)


class TeamRouting(models.Model):
    """How new tickets of a team without an assignee are assigned: by hand, round robin over
    the team's engineers, or to the engineer with the fewest open tickets."""

    class Mode(models.TextChoices):
        MANUAL = "manual", _("Manual")
        ROUND_ROBIN = "round_robin", _("Round robin")
        LEAST_LOADED = "least_loaded", _("Least loaded")

    team = models.OneToOneField(
        Team, verbose_name=_("team"), on_delete=models.CASCADE, related_name="routing"
    )
    mode = models.CharField(
        _("assignment"), max_length=16, choices=Mode.choices, default=Mode.MANUAL
    )
    last_assigned = models.ForeignKey(
        User,
        verbose_name=_("last assigned"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    # The round-robin cursor moves with every ticket; the ticket's own audit shows the choice.
    audit_exclude = ("last_assigned",)
    scope_provider_wide = True

    class Meta:
        ordering = ["team__name"]
        verbose_name = _("team routing")
        verbose_name_plural = _("team routings")

    def __str__(self) -> str:
        return str(self.team)


# A signature is drawn on a canvas of this size (CSS pixels scaled to it) on the engineer's phone.
SIGNATURE_WIDTH, SIGNATURE_HEIGHT = 600, 240


class Visit(models.Model):
    """An on-site visit and its work order (派工单), signed off by the customer on site.

    The signature is kept as the strokes the signer drew (lists of points on a fixed canvas),
    not as an uploaded image: it is small, cannot carry anything but lines, and is drawn back
    as SVG on the work order.
    """

    class State(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        ON_SITE = "on_site", _("Engineer on site")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="visits")
    engineer = models.ForeignKey(
        User, verbose_name=_("engineer"), on_delete=models.PROTECT, related_name="visits"
    )
    scheduled_at = models.DateTimeField(_("scheduled for"))
    planned_minutes = models.PositiveIntegerField(
        _("planned minutes"),
        default=120,
        validators=[MinValueValidator(15), MaxValueValidator(24 * 60)],
    )
    instructions = models.TextField(_("instructions"), blank=True)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.SCHEDULED
    )
    arrived_at = models.DateTimeField(_("arrived"), null=True, blank=True)
    departed_at = models.DateTimeField(_("departed"), null=True, blank=True)
    work_done = models.TextField(_("work done"), blank=True)
    signer_name = models.CharField(_("signed by"), max_length=100, blank=True)
    signer_comment = models.CharField(_("customer's comment"), max_length=500, blank=True)
    signature = models.JSONField(_("signature"), null=True, blank=True)
    signed_at = models.DateTimeField(_("signed"), null=True, blank=True)
    cancel_reason = models.CharField(_("reason for cancelling"), max_length=300, blank=True)
    time_entry = models.OneToOneField(
        TimeEntry,
        verbose_name=_("time entry"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="visit",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    scope_customer_field = "ticket__customer_id"
    # The strokes are long and say nothing in an audit diff; "signed_at" records the signing.
    audit_exclude = ("signature",)

    class Meta:
        ordering = ["scheduled_at", "id"]
        verbose_name = _("on-site visit")
        verbose_name_plural = _("on-site visits")
        indexes = [
            models.Index(fields=["engineer", "state", "scheduled_at"], name="visit_engineer_day"),
        ]

    def __str__(self) -> str:
        return f"{self.number} #{self.ticket_id}"

    @staticmethod
    def scope_own_records(user: User) -> models.Q:
        """A plain customer user sees the visits of their own tickets."""
        return models.Q(ticket__in=Ticket.objects.filter(Ticket.scope_own_records(user)))

    @property
    def number(self) -> str:
        """The work-order number printed on the form: PG plus the visit id."""
        return f"PG{self.pk:06d}" if self.pk else "PG"

    @property
    def customer_id(self) -> int:
        return self.ticket.customer_id

    @property
    def signature_path(self) -> str:
        """The strokes as an SVG path ("M x y L x y …"); the points were validated as numbers."""
        parts = []
        for stroke in self.signature or []:
            points = [f"{x:g} {y:g}" for x, y in stroke]
            parts.append("M " + " L ".join(points))
        return " ".join(parts)


class MailSecurity(models.TextChoices):
    SSL = "ssl", _("TLS (IMAPS, port 993)")
    STARTTLS = "starttls", _("STARTTLS (port 143)")
    NONE = "none", _("None (only on a trusted network)")


class Mailbox(models.Model):
    """A support address whose IMAP folder is polled: new mail becomes tickets, replies thread
    onto theirs. Its address is also the sender of the replies to its tickets."""

    name = models.CharField(_("name"), max_length=100)
    address = models.EmailField(
        _("support address"),
        unique=True,
        help_text=_("Replies go out from it; its domain names our Message-IDs."),
    )
    imap_host = models.CharField(_("IMAP server"), max_length=200)
    imap_port = models.PositiveIntegerField(
        _("IMAP port"), default=993, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    imap_security = models.CharField(
        _("connection security"), max_length=8, choices=MailSecurity.choices, default="ssl"
    )
    imap_username = models.CharField(_("IMAP user name"), max_length=200)
    # Both encrypted with onestop.core.crypto; exactly one is set.
    password = models.TextField(_("password"), blank=True)
    oauth2_token = models.TextField(
        _("OAuth 2.0 access token"),
        blank=True,
        help_text=_("Instead of a password, for Microsoft 365 and Gmail (XOAUTH2)."),
    )
    folder = models.CharField(_("folder"), max_length=200, default="INBOX")
    processed_folder = models.CharField(
        _("processed folder"),
        max_length=200,
        blank=True,
        help_text=_("Processed mail is moved here; empty: it stays in the folder, marked read."),
    )
    team = models.ForeignKey(
        Team, verbose_name=_("team"), null=True, blank=True, on_delete=models.SET_NULL
    )
    default_priority = models.CharField(
        _("priority of new tickets"), max_length=2, choices=Priority.choices, default="P3"
    )
    is_active = models.BooleanField(_("active"), default=True)
    is_default_outgoing = models.BooleanField(
        _("default sender"),
        default=False,
        help_text=_("Replies to tickets that came in by other channels go out from it."),
    )
    last_polled_at = models.DateTimeField(_("last polled"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    audit_secret = ("password", "oauth2_token")
    # The poller's bookkeeping changes every minute; its errors are logged instead.
    audit_exclude = ("last_polled_at", "last_error", "updated_at")
    scope_provider_wide = True

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("mailbox")
        verbose_name_plural = _("mailboxes")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default_outgoing"],
                condition=models.Q(is_default_outgoing=True),
                name="mailbox_one_default_sender",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>"

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


def inbound_path(message: InboundMessage, filename: str) -> str:
    """A random name: nothing of the sender's choosing reaches the file system."""
    return f"mail/{uuid.uuid4().hex}.eml"


class InboundMessage(models.Model):
    """One received mail and what became of it; the raw message is kept, so nothing accepted
    is lost and a triaged mail can still become a ticket."""

    class Outcome(models.TextChoices):
        TICKET = "ticket", _("Ticket created")
        REPLY = "reply", _("Reply added")
        TRIAGE = "triage", _("Awaiting triage")
        IGNORED = "ignored", _("Ignored (automatic)")
        BOUNCE = "bounce", _("Bounce")
        REJECTED = "rejected", _("Rejected")
        DISCARDED = "discarded", _("Discarded")

    mailbox = models.ForeignKey(
        Mailbox,
        verbose_name=_("mailbox"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
    )
    # The idempotency key: the Message-ID, or "sha256:…" of the raw bytes when there is none.
    message_id = models.CharField(_("Message-ID"), max_length=995, unique=True)
    from_address = models.CharField(_("from"), max_length=320, blank=True)
    from_name = models.CharField(_("sender name"), max_length=200, blank=True)
    subject = models.CharField(_("subject"), max_length=500, blank=True)
    preview = models.TextField(_("text"), blank=True)
    received_at = models.DateTimeField(_("received"), db_index=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), null=True, blank=True, on_delete=models.SET_NULL
    )
    ticket = models.ForeignKey(
        Ticket,
        verbose_name=_("ticket"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_messages",
    )
    entry = models.ForeignKey(
        TicketEntry, verbose_name=_("entry"), null=True, blank=True, on_delete=models.SET_NULL
    )
    detail = models.TextField(_("detail"), blank=True)
    raw = models.FileField(_("raw message"), upload_to=inbound_path, max_length=200)
    decided_by = models.ForeignKey(
        User,
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    audit_exclude = ("preview",)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("inbound message")
        verbose_name_plural = _("inbound messages")
        indexes = [models.Index(fields=["outcome", "-received_at"], name="inbound_outcome")]

    def __str__(self) -> str:
        return f"{self.from_address}: {self.subject}"[:200]

    @staticmethod
    def scope_filter(user: User, customer_ids: set[int] | None) -> models.Q | None:
        """Staff only: admins and managers all; others those of the customers they serve, and
        dispatchers also the mail of no customer yet (the triage queue)."""
        if not user.is_provider_staff:
            return models.Q(pk__in=())
        if customer_ids is None:
            return None
        mine = models.Q(customer_id__in=customer_ids)
        if user.role == Role.DISPATCHER:
            mine |= models.Q(customer__isnull=True)
        return mine
