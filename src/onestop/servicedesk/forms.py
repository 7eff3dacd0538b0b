"""Forms of the service-desk pages. As in core, they check the input's shape and `save()` hands
it to the services, whose errors land on the form, so a rejected change shows where it went
wrong and changes nothing."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import QueryDict
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from onestop.assets import selectors as asset_selectors
from onestop.assets.models import Device
from onestop.contracts.models import Priority
from onestop.core import selectors as core_selectors
from onestop.core.errors import ConflictError
from onestop.core.forms import (
    BLANK,
    ChoiceField,
    CustomerChoiceField,
    CustomerMultipleChoiceField,
    SearchForm,
    ServiceForm,
)
from onestop.core.models import Contact, Customer, Site, Team, User
from onestop.servicedesk import selectors, services
from onestop.servicedesk.models import (
    PRIORITY_MATRIX,
    TRANSITIONS,
    CannedReply,
    Channel,
    InboundMessage,
    KnowledgeArticle,
    Level,
    Mailbox,
    MailSecurity,
    RecurringTicket,
    SavedTicketView,
    Status,
    TeamRouting,
    Ticket,
    TicketEntry,
    TicketType,
    TimeEntry,
    Visit,
)

OPEN, ALL = "open", "all"
ME, NOBODY = "me", "none"
KEEP = [("", _("— keep —"))]

# The button on a ticket for each status it can move to: what the person does, not the state.
STATUS_ACTIONS = {
    Status.ASSIGNED: _("Mark assigned"),
    Status.IN_PROGRESS: _("Start work"),
    Status.WAITING_CUSTOMER: _("Wait for customer"),
    Status.WAITING_VENDOR: _("Wait for vendor"),
    Status.VISIT_SCHEDULED: _("Visit scheduled"),
    Status.RESOLVED: _("Resolve"),
    Status.CLOSED: _("Close"),
}
# From a waiting status "in progress" resumes the work; from resolved it reopens the ticket.
RESUME_ACTIONS = {
    Status.WAITING_CUSTOMER: _("Resume"),
    Status.WAITING_VENDOR: _("Resume"),
    Status.VISIT_SCHEDULED: _("Resume"),
    Status.RESOLVED: _("Reopen"),
}

# The portal asks in the customer's words; the desk's impact × urgency matrix does the rest.
IMPACT_WORDS = [
    (Level.LOW, _("Only me")),
    (Level.MEDIUM, _("My team or department")),
    (Level.HIGH, _("The whole company")),
]
URGENCY_WORDS = [
    (Level.LOW, _("It can wait")),
    (Level.MEDIUM, _("Soon: it slows my work")),
    (Level.HIGH, _("Urgent: work has stopped")),
]


def person_label(person: User) -> str:
    return f"{person} ({person.username})" if person.display_name else person.username


def status_actions(ticket: Ticket) -> list[tuple[str, str]]:
    """(status, button label) for each status the workflow allows next, in workflow order."""
    allowed = TRANSITIONS.get(ticket.status, frozenset())
    actions = []
    for status in Status.values:
        if status in allowed:
            label = STATUS_ACTIONS[status]
            if status == Status.IN_PROGRESS:
                label = RESUME_ACTIONS.get(ticket.status, label)
            actions.append((status, label))
    return actions


def _int_choice(**kwargs: Any) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(coerce=int, **kwargs)


def _numeric(value: Any) -> int | None:
    return int(value) if str(value or "").isdigit() else None


class ContactChoiceField(ChoiceField):
    def label_from_instance(self, obj: Contact) -> str:
        return f"{obj.name} · {obj.title}" if obj.title else obj.name


class StaffChoiceField(ChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return person_label(obj)


# The queue -----------------------------------------------------------------------------------


class TicketFilterForm(SearchForm):
    """The queue's filters. Status "open" (any status before resolved) is the default."""

    search_hint = _("Title, description or pinyin")
    status = forms.ChoiceField(
        label=_("status"),
        choices=[(OPEN, _("Open")), (ALL, _("All")), *Status.choices],
        required=False,
    )
    priority = forms.ChoiceField(
        label=_("priority"), choices=BLANK + Priority.choices, required=False
    )
    customer = CustomerChoiceField(
        label=_("customer"), queryset=Customer.objects.none(), required=False
    )
    team = forms.ChoiceField(label=_("team"), required=False)
    assignee = forms.ChoiceField(label=_("assignee"), required=False)
    breached = forms.ChoiceField(
        label=_("SLA"),
        choices=[("", "—"), ("yes", _("Breached")), ("no", _("Not breached"))],
        required=False,
    )

    def __init__(
        self, data: Any, *, user: User, teams: list[Team], staff: list[User], **kwargs: Any
    ) -> None:
        data = data.copy()
        data.setdefault("status", OPEN)
        super().__init__(data, **kwargs)
        self.user = user
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)
        self.fields["team"].choices = [("", "—"), *[(str(team.pk), team.name) for team in teams]]
        self.fields["assignee"].choices = [
            ("", "—"),
            (ME, _("Me")),
            (NOBODY, _("Unassigned")),
            *[(str(person.pk), person_label(person)) for person in staff],
        ]

    def narrowed(self) -> bool:
        """True when a filter other than the search box and the default status is set."""
        data = self.cleaned_data
        others = ("priority", "customer", "team", "assignee", "breached")
        return data.get("status", OPEN) != OPEN or any(data.get(name) for name in others)

    def filters(self) -> dict[str, Any]:
        """Arguments of selectors.ticket_list."""
        data = self.cleaned_data
        status, assignee = data.get("status") or OPEN, data.get("assignee")
        customer = data.get("customer")
        return {
            "q": data.get("q"),
            "status": status if status not in (OPEN, ALL) else None,
            "is_open": True if status == OPEN else None,
            "priority": data.get("priority"),
            "customer_id": customer.pk if customer else None,
            "team_id": _numeric(data.get("team")),
            "assignee_id": self.user.pk if assignee == ME else _numeric(assignee),
            "unassigned": assignee == NOBODY or None,
            "breached": {"yes": True, "no": False}.get(data.get("breached", "")),
        }


class BulkForm(ServiceForm):
    """One change applied to each chosen ticket through the services; a ticket the change
    does not fit (e.g. a status its workflow forbids) is reported and left as it was."""

    tickets = forms.ModelMultipleChoiceField(
        label=_("tickets"),
        queryset=Ticket.objects.none(),
        widget=forms.MultipleHiddenInput,
        error_messages={
            "required": _("Select at least one ticket."),
            "invalid_choice": _("Ticket %(value)s is not available."),
            "invalid_pk_value": _("“%(pk)s” is not a ticket number."),
        },
    )
    assignee = forms.ChoiceField(label=_("assign to"), required=False)
    team = forms.ChoiceField(label=_("team"), required=False)
    status = forms.ChoiceField(label=_("status"), choices=KEEP + Status.choices, required=False)

    def __init__(
        self,
        *args: Any,
        user: User,
        teams: list[Team],
        staff: list[User],
        **kwargs: Any,
    ) -> None:
        # No ids: the fields sit in rows that htmx swaps, wrapped in their labels instead.
        kwargs.setdefault("auto_id", False)
        super().__init__(*args, user=user, **kwargs)
        self.fields["tickets"].queryset = selectors.ticket_list(user=user)
        self.fields["assignee"].choices = [
            *KEEP,
            (ME, _("Me")),
            (NOBODY, _("Nobody (unassign)")),
            *[(str(person.pk), person_label(person)) for person in staff],
        ]
        self.fields["team"].choices = [
            *KEEP,
            (NOBODY, _("No team")),
            *[(str(team.pk), team.name) for team in teams],
        ]
        # Choice value → what the service is given; "none" clears the field.
        self._staff = {ME: user, NOBODY: None, **{str(person.pk): person for person in staff}}
        self._teams = {NOBODY: None, **{str(team.pk): team for team in teams}}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not (data.get("assignee") or data.get("team") or data.get("status")):
            raise ValidationError(_("Choose an assignee, a team or a status to apply."))
        return data

    def _changes(self) -> dict[str, Any]:
        data, changes = self.cleaned_data, {}
        assignee, team = data.get("assignee"), data.get("team")
        if assignee:
            changes["assignee"] = (
                self.user
                if assignee == ME
                else self._staff.get(assignee)
                if assignee != NOBODY
                else None
            )
        if team:
            changes["team"] = self._teams.get(team) if team != NOBODY else None
        return changes

    def perform(self) -> tuple[list[Ticket], list[str]]:
        """(tickets changed, one error line per ticket left unchanged)."""
        changes, status = self._changes(), self.cleaned_data.get("status")
        done, errors = [], []
        for ticket in self.cleaned_data["tickets"]:
            try:
                with transaction.atomic():
                    if changes:
                        services.ticket_update(actor=self.user, ticket=ticket, **changes)
                    if status:
                        services.ticket_set_status(actor=self.user, ticket=ticket, status=status)
            except ValidationError as exc:
                errors.append(f"#{ticket.pk}: {' '.join(exc.messages)}")
            except ConflictError as exc:
                errors.append(f"#{ticket.pk}: {exc.message}")
            else:
                done.append(ticket)
        return done, errors


# One ticket ----------------------------------------------------------------------------------


def _customer_contacts(user: User, customer_id: int | None) -> QuerySet[Contact]:
    if not customer_id:
        return Contact.objects.none()
    return core_selectors.contact_list(user=user, customer_id=customer_id).filter(is_active=True)


def _customer_sites(user: User, customer_id: int | None) -> QuerySet[Site]:
    if not customer_id:
        return Site.objects.none()
    return core_selectors.site_list(user=user, customer_id=customer_id)


class TicketCreateForm(ServiceForm):
    """A ticket entered by staff, built for phone intake: customer, caller, what is wrong."""

    customer = CustomerChoiceField(label=_("customer"), queryset=Customer.objects.none())
    requester = ContactChoiceField(
        label=_("caller / requester"), queryset=Contact.objects.none(), required=False
    )
    site = ChoiceField(label=_("site"), queryset=Site.objects.none(), required=False)
    channel = forms.ChoiceField(
        label=_("channel"),
        choices=[(c, Channel(c).label) for c in (Channel.PHONE, Channel.EMAIL, Channel.WEB)],
        initial=Channel.PHONE,
    )
    title = forms.CharField(label=_("title"), max_length=200)
    description = forms.CharField(
        label=_("description"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    impact = _int_choice(label=_("impact"), choices=Level.choices, initial=Level.MEDIUM)
    urgency = _int_choice(label=_("urgency"), choices=Level.choices, initial=Level.MEDIUM)
    call_notes = forms.CharField(
        label=_("call notes"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Phone tickets log the call as their first entry, with these notes or else the "
            "description; the call counts as the first response."
        ),
    )
    type = forms.ChoiceField(
        label=_("type"), choices=TicketType.choices, initial=TicketType.INCIDENT
    )
    category = forms.CharField(label=_("category"), max_length=100, required=False)
    team = ChoiceField(label=_("team"), queryset=Team.objects.none(), required=False)
    assignee = StaffChoiceField(label=_("assignee"), queryset=User.objects.none(), required=False)

    # Shown folded away: a dispatcher taking a call rarely needs them.
    more_fields = ("type", "category", "team", "assignee")

    def __init__(self, *args: Any, user: User, customer: Customer | None = None, **kwargs: Any):
        if customer is not None:
            kwargs.setdefault("initial", {"customer": customer})
        super().__init__(*args, user=user, **kwargs)
        customer_id = _numeric(self.data.get("customer")) if self.is_bound else None
        customer_id = customer_id or (customer.pk if customer else None)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)
        self.fields["requester"].queryset = _customer_contacts(user, customer_id)
        self.fields["site"].queryset = _customer_sites(user, customer_id)
        self.fields["team"].queryset = core_selectors.team_list(user=user).prefetch_related(None)
        self.fields["assignee"].queryset = core_selectors.staff_choices(user=user)
        # Picking a customer reloads the caller and site choices with that customer's only.
        self.fields["customer"].widget.attrs.update(
            {
                "hx-get": reverse("ticket_create"),
                "hx-trigger": "change",
                "hx-target": "#ticket-customer-fields",
                "hx-select": "#ticket-customer-fields",
                "hx-swap": "outerHTML",
            }
        )
        focus = "requester" if customer_id else "customer"
        self.fields[focus].widget.attrs["autofocus"] = True
        if not customer_id:
            self.fields["requester"].help_text = _("Pick the customer first.")

    def visible_more(self) -> list[Any]:
        return [self[name] for name in self.more_fields]

    @transaction.atomic
    def perform(self) -> Ticket:
        data = dict(self.cleaned_data)
        notes = data.pop("call_notes").strip()
        ticket = services.ticket_create(actor=self.user, **data)
        if ticket.channel == Channel.PHONE:
            services.ticket_reply(
                actor=self.user,
                ticket=ticket,
                body=notes or ticket.description.strip() or ticket.title,
                kind=TicketEntry.Kind.CALL,
                author_contact=ticket.requester,
            )
        return ticket


class TicketEditForm(ServiceForm):
    title = forms.CharField(label=_("title"), max_length=200)
    description = forms.CharField(
        label=_("description"), required=False, widget=forms.Textarea(attrs={"rows": 5})
    )
    type = forms.ChoiceField(label=_("type"), choices=TicketType.choices)
    category = forms.CharField(label=_("category"), max_length=100, required=False)
    impact = _int_choice(label=_("impact"), choices=Level.choices)
    urgency = _int_choice(label=_("urgency"), choices=Level.choices)
    priority = forms.ChoiceField(
        label=_("priority"),
        choices=[("", _("From impact × urgency")), *Priority.choices],
        required=False,
        help_text=_("A changed priority recomputes the due times; time already used is kept."),
    )
    site = ChoiceField(label=_("site"), queryset=Site.objects.none(), required=False)
    device = ChoiceField(label=_("device"), queryset=Device.objects.none(), required=False)
    requester = ContactChoiceField(
        label=_("requester"), queryset=Contact.objects.none(), required=False
    )
    team = ChoiceField(label=_("team"), queryset=Team.objects.none(), required=False)
    assignee = StaffChoiceField(label=_("assignee"), queryset=User.objects.none(), required=False)

    def __init__(self, *args: Any, user: User, instance: Ticket, **kwargs: Any):
        names = [name for name in self.base_fields if name != "priority"]
        initial = {name: getattr(instance, name) for name in names}
        matrix = PRIORITY_MATRIX.get((instance.impact, instance.urgency))
        initial["priority"] = "" if instance.priority == matrix else instance.priority
        kwargs.setdefault("initial", initial)
        super().__init__(*args, user=user, instance=instance, **kwargs)
        self.fields["site"].queryset = _customer_sites(user, instance.customer_id)
        self.fields["device"].queryset = asset_selectors.device_list(
            user=user, customer_id=instance.customer_id
        ).select_related(None)
        self.fields["requester"].queryset = core_selectors.contact_list(
            user=user, customer_id=instance.customer_id
        )
        self.fields["team"].queryset = core_selectors.team_list(user=user).prefetch_related(None)
        self.fields["assignee"].queryset = core_selectors.staff_choices(user=user)

    def perform(self) -> Ticket:
        data, ticket = self.cleaned_data, self.instance
        # Only what changed: an untouched field must not re-select the SLA or the status.
        changes = {name: data[name] for name in self.changed_data if name != "priority"}
        priority = data["priority"] or PRIORITY_MATRIX[(data["impact"], data["urgency"])]
        if priority != ticket.priority:
            changes["priority"] = priority
        return services.ticket_update(actor=self.user, ticket=ticket, **changes)


class StatusForm(ServiceForm):
    status = forms.ChoiceField(label=_("status"), choices=Status.choices)

    def perform(self) -> Ticket:
        return services.ticket_set_status(
            actor=self.user, ticket=self.instance, status=self.cleaned_data["status"]
        )


class ReplyForm(ServiceForm):
    """The desk's reply box: a public reply, an internal note or a logged phone call, and
    optionally the ticket's next status in the same step."""

    field_aliases = {"author_contact": "contact"}

    kind = forms.ChoiceField(
        label=_("kind"),
        choices=[
            (TicketEntry.Kind.REPLY, _("Public reply")),
            (TicketEntry.Kind.NOTE, _("Internal note")),
            (TicketEntry.Kind.CALL, _("Phone call")),
        ],
        initial=TicketEntry.Kind.REPLY,
        widget=forms.RadioSelect,
    )
    body = forms.CharField(label=_("text"), widget=forms.Textarea(attrs={"rows": 5}))
    contact = ContactChoiceField(
        label=_("call with"),
        queryset=Contact.objects.none(),
        required=False,
        help_text=_("Phone calls only: who was on the line."),
    )
    status = forms.ChoiceField(label=_("then set the status to"), required=False)

    def __init__(self, *args: Any, user: User, instance: Ticket, **kwargs: Any):
        super().__init__(*args, user=user, instance=instance, **kwargs)
        self.fields["contact"].queryset = _customer_contacts(user, instance.customer_id)
        self.fields["status"].choices = KEEP + [
            (status, Status(status).label) for status, _label in status_actions(instance)
        ]

    @transaction.atomic
    def perform(self) -> TicketEntry:
        data, ticket = self.cleaned_data, self.instance
        kind = data["kind"]
        entry = services.ticket_reply(
            actor=self.user,
            ticket=ticket,
            body=data["body"],
            kind=kind,
            is_public=kind != TicketEntry.Kind.NOTE,
            author_contact=data["contact"] if kind == TicketEntry.Kind.CALL else None,
        )
        if data["status"]:
            services.ticket_set_status(actor=self.user, ticket=ticket, status=data["status"])
        return entry


# The customer portal -------------------------------------------------------------------------


class PortalTicketForm(ServiceForm):
    """A customer's new ticket, in their own words; the desk sets team, engineer and SLA."""

    title = forms.CharField(
        label=_("what is the problem?"),
        max_length=200,
        widget=forms.TextInput(attrs={"autofocus": True}),
        help_text=_("A short summary, e.g. “The printer on the 3rd floor does not print”."),
    )
    description = forms.CharField(
        label=_("details"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("What happened, since when, any error message, your phone number."),
    )
    impact = _int_choice(
        label=_("who is affected?"),
        choices=IMPACT_WORDS,
        initial=Level.LOW,
        widget=forms.RadioSelect,
    )
    urgency = _int_choice(
        label=_("how urgent is it?"),
        choices=URGENCY_WORDS,
        initial=Level.MEDIUM,
        widget=forms.RadioSelect,
    )

    def perform(self) -> Ticket:
        return services.ticket_create(
            actor=self.user,
            customer=self.user.customer,
            channel=Channel.PORTAL,
            requester_user=self.user,
            **self.cleaned_data,
        )


class PortalReplyForm(ServiceForm):
    body = forms.CharField(label=_("your reply"), widget=forms.Textarea(attrs={"rows": 5}))

    def perform(self) -> TicketEntry:
        return services.ticket_reply(
            actor=self.user, ticket=self.instance, body=self.cleaned_data["body"]
        )


class RatingForm(ServiceForm):
    """The satisfaction survey on a resolved ticket: 1 to 5 and an optional comment."""

    score = _int_choice(
        label=_("how satisfied are you with how this was handled?"),
        choices=[
            (1, _("1 · Very poor")),
            (2, _("2 · Poor")),
            (3, _("3 · OK")),
            (4, _("4 · Good")),
            (5, _("5 · Excellent")),
        ],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label=_("comment"),
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def perform(self) -> Ticket:
        return services.ticket_rate(actor=self.user, ticket=self.instance, **self.cleaned_data)


class PortalFilterForm(SearchForm):
    search_hint = _("Title or description")
    status = forms.ChoiceField(
        label=_("status"),
        choices=[("", _("All")), (OPEN, _("Open")), ("done", _("Resolved or closed"))],
        required=False,
    )

    def is_open(self) -> bool | None:
        return {OPEN: True, "done": False}.get(self.cleaned_data.get("status", ""))


# The ticket page's side tools: files, people, links, merge, time --------------------------------

LINK_CHOICES_LIMIT = 200


class TicketChoiceField(ChoiceField):
    def label_from_instance(self, obj: Ticket) -> str:
        return f"#{obj.pk} {obj.title}"


class TicketMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Ticket) -> str:
        return f"#{obj.pk} {obj.title}"


class ContactMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Contact) -> str:
        return f"{obj.name} · {obj.title}" if obj.title else obj.name


class StaffMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return person_label(obj)


def _sibling_tickets(user: User, ticket: Ticket) -> QuerySet[Ticket]:
    """Other tickets of the same customer, newest first, for the link and merge pickers."""
    qs = selectors.ticket_list(user=user, customer_id=ticket.customer_id).exclude(pk=ticket.pk)
    ids = list(qs.order_by("-id").values_list("pk", flat=True)[:LINK_CHOICES_LIMIT])
    return Ticket.objects.filter(pk__in=ids).only("pk", "title").order_by("-id")


class AttachForm(ServiceForm):
    """A file on the ticket; staff choose whether the customer sees it."""

    file = forms.FileField(label=_("file"))
    is_public = forms.BooleanField(label=_("visible to the customer"), required=False, initial=True)

    def __init__(self, *args: Any, user: User, instance: Ticket, **kwargs: Any):
        super().__init__(*args, user=user, instance=instance, **kwargs)
        if user.is_customer_user:
            del self.fields["is_public"]

    def perform(self) -> Any:
        try:
            return services.ticket_attach(
                actor=self.user,
                ticket=self.instance,
                upload=self.cleaned_data["file"],
                is_public=self.cleaned_data.get("is_public", True),
            )
        except ConflictError as exc:
            raise ValidationError(exc.message) from exc


class PeopleForm(ServiceForm):
    """Watchers (staff) and the customer's contacts in copy, parent and related tickets."""

    watchers = StaffMultipleChoiceField(
        label=_("watchers"), queryset=User.objects.none(), required=False
    )
    cc_contacts = ContactMultipleChoiceField(
        label=_("in copy"), queryset=Contact.objects.none(), required=False
    )
    parent = TicketChoiceField(
        label=_("parent ticket"), queryset=Ticket.objects.none(), required=False
    )
    related = TicketMultipleChoiceField(
        label=_("related tickets"), queryset=Ticket.objects.none(), required=False
    )

    def __init__(self, *args: Any, user: User, instance: Ticket, **kwargs: Any):
        kwargs.setdefault(
            "initial",
            {
                "watchers": [u.pk for u in instance.watchers.all()],
                "cc_contacts": [c.pk for c in instance.cc_contacts.all()],
                "parent": instance.parent_id,
                "related": [t.pk for t in instance.related.all()],
            },
        )
        super().__init__(*args, user=user, instance=instance, **kwargs)
        self.fields["watchers"].queryset = core_selectors.staff_choices(user=user)
        self.fields["cc_contacts"].queryset = core_selectors.contact_list(
            user=user, customer_id=instance.customer_id
        )
        siblings = _sibling_tickets(user, instance)
        self.fields["parent"].queryset = siblings
        self.fields["related"].queryset = siblings

    def perform(self) -> Ticket:
        data = self.cleaned_data
        return services.ticket_update(
            actor=self.user,
            ticket=self.instance,
            watchers=list(data["watchers"]),
            cc_contacts=list(data["cc_contacts"]),
            related=list(data["related"]),
            parent=data["parent"],
        )


class MergeForm(ServiceForm):
    """Merges this ticket (the duplicate) into another ticket of the same customer."""

    target = TicketChoiceField(label=_("merge into"), queryset=Ticket.objects.none())

    def __init__(self, *args: Any, user: User, instance: Ticket, **kwargs: Any):
        super().__init__(*args, user=user, instance=instance, **kwargs)
        self.fields["target"].queryset = _sibling_tickets(user, instance)

    def perform(self) -> Ticket:
        try:
            return services.ticket_merge(
                actor=self.user, source=self.instance, target=self.cleaned_data["target"]
            )
        except ConflictError as exc:
            raise ValidationError(exc.message) from exc


class TimeEntryForm(ServiceForm):
    """Work time on the ticket; billable time under a block of hours draws it down."""

    minutes = forms.IntegerField(label=_("minutes"), min_value=1, max_value=24 * 60)
    date = forms.DateField(
        label=_("date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    kind = forms.ChoiceField(label=_("kind"), choices=TimeEntry.Kind.choices)
    billable = forms.BooleanField(label=_("billable"), required=False, initial=True)
    note = forms.CharField(label=_("note"), max_length=500, required=False)

    def perform(self) -> TimeEntry:
        data = self.cleaned_data
        return services.time_entry_create(
            actor=self.user,
            ticket=self.instance,
            minutes=data["minutes"],
            date=data["date"],
            kind=data["kind"],
            billable=data["billable"],
            note=data["note"],
        )


# On-site visits ------------------------------------------------------------------------------


class VisitScheduleForm(ServiceForm):
    """Dispatches an engineer who serves the ticket's customer, at a time in the user's zone."""

    engineer = StaffChoiceField(label=_("engineer"), queryset=User.objects.none())
    scheduled_at = forms.DateTimeField(
        label=_("scheduled for"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    planned_minutes = forms.IntegerField(
        label=_("planned minutes"), min_value=15, max_value=24 * 60, initial=120
    )
    instructions = forms.CharField(
        label=_("instructions"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, user: User, instance: Any, **kwargs: Any) -> None:
        super().__init__(*args, user=user, instance=instance, **kwargs)
        ticket = instance if isinstance(instance, Ticket) else instance.ticket
        self.fields["engineer"].queryset = core_selectors.customer_staff(
            user=user, customer=ticket.customer
        ).filter(is_active=True)
        if isinstance(instance, Visit):
            self.initial.update(
                {
                    "engineer": instance.engineer_id,
                    "scheduled_at": instance.scheduled_at,
                    "planned_minutes": instance.planned_minutes,
                    "instructions": instance.instructions,
                }
            )
        elif ticket.assignee_id:
            self.initial.setdefault("engineer", ticket.assignee_id)

    def perform(self) -> Visit:
        if isinstance(self.instance, Visit):
            return services.visit_update(actor=self.user, visit=self.instance, **self.cleaned_data)
        return services.visit_schedule(actor=self.user, ticket=self.instance, **self.cleaned_data)


class VisitSignOffForm(ServiceForm):
    """The work order as the customer signs it on the engineer's phone."""

    work_done = forms.CharField(
        label=_("work done"), max_length=5000, widget=forms.Textarea(attrs={"rows": 4})
    )
    signer_name = forms.CharField(label=_("signed by"), max_length=100)
    signer_comment = forms.CharField(label=_("customer's comment"), max_length=500, required=False)
    billable = forms.BooleanField(label=_("billable"), required=False, initial=True)
    # Filled by the signature pad's script with the strokes drawn, as JSON.
    signature = forms.CharField(widget=forms.HiddenInput, required=False)

    def clean_signature(self) -> Any:
        raw = self.cleaned_data["signature"]
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ValidationError(_("The signature could not be read; sign again.")) from None

    def perform(self) -> Visit:
        return services.visit_sign_off(actor=self.user, visit=self.instance, **self.cleaned_data)


class VisitCancelForm(ServiceForm):
    reason = forms.CharField(label=_("reason for cancelling"), max_length=300)
    field_aliases = {"cancel_reason": "reason"}

    def perform(self) -> Visit:
        return services.visit_cancel(
            actor=self.user, visit=self.instance, reason=self.cleaned_data["reason"]
        )


# Knowledge base ------------------------------------------------------------------------------


class KnowledgeFilterForm(SearchForm):
    search_hint = _("Title, text or category")


class KnowledgeArticleForm(ServiceForm):
    """An article; "selected customers" needs the customers ticked below."""

    title = forms.CharField(label=_("title"), max_length=200)
    category = forms.CharField(label=_("category"), max_length=100, required=False)
    body = forms.CharField(label=_("text"), widget=forms.Textarea(attrs={"rows": 12}))
    visibility = forms.ChoiceField(
        label=_("visible to"),
        choices=KnowledgeArticle.Visibility.choices,
        initial=KnowledgeArticle.Visibility.INTERNAL,
        widget=forms.RadioSelect,
    )
    customers = CustomerMultipleChoiceField(
        label=_("customers"),
        queryset=Customer.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Only for “Selected customers”."),
    )
    is_published = forms.BooleanField(
        label=_("published"),
        required=False,
        help_text=_("Customers read only published articles."),
    )

    def __init__(self, *args: Any, user: User, instance: KnowledgeArticle | None = None, **kw):
        if instance is not None:
            initial = {
                name: getattr(instance, name) for name in self.base_fields if name != "customers"
            }
            initial["customers"] = [c.pk for c in instance.customers.all()]
            kw.setdefault("initial", initial)
        super().__init__(*args, user=user, instance=instance, **kw)
        self.fields["customers"].queryset = core_selectors.customer_choices(user=user)

    def perform(self) -> KnowledgeArticle:
        data = dict(self.cleaned_data)
        customers = list(data.pop("customers"))
        if self.instance is None:
            return services.knowledge_article_create(actor=self.user, customers=customers, **data)
        return services.knowledge_article_update(
            actor=self.user, article=self.instance, customers=customers, **data
        )


# Recurring tickets ---------------------------------------------------------------------------

WEEKDAYS = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]


class RecurringFilterForm(SearchForm):
    search_hint = _("Title")
    customer = CustomerChoiceField(
        label=_("customer"), queryset=Customer.objects.none(), required=False
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)


class RecurringTicketForm(ServiceForm):
    """A schedule that opens a ticket for a customer; the customer is fixed once created."""

    customer = CustomerChoiceField(label=_("customer"), queryset=Customer.objects.none())
    title = forms.CharField(label=_("title"), max_length=200)
    description = forms.CharField(
        label=_("description"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    type = forms.ChoiceField(
        label=_("type"), choices=TicketType.choices, initial=TicketType.SERVICE_REQUEST
    )
    priority = forms.ChoiceField(label=_("priority"), choices=Priority.choices, initial="P3")
    team = ChoiceField(label=_("team"), queryset=Team.objects.none(), required=False)
    assignee = StaffChoiceField(label=_("assignee"), queryset=User.objects.none(), required=False)
    frequency = forms.ChoiceField(label=_("frequency"), choices=RecurringTicket.Frequency.choices)
    weekday = forms.TypedChoiceField(
        label=_("weekday"),
        choices=[("", "—"), *WEEKDAYS],
        coerce=int,
        empty_value=None,
        required=False,
        help_text=_("Weekly only."),
    )
    day_of_month = forms.IntegerField(
        label=_("day of month"),
        min_value=1,
        max_value=31,
        required=False,
        help_text=_("Monthly only; 31 means the last day of shorter months."),
    )
    time_of_day = forms.TimeField(
        label=_("time of day"),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text=_("In the server's time zone."),
    )
    is_active = forms.BooleanField(label=_("active"), required=False, initial=True)

    def __init__(
        self, *args: Any, user: User, instance: RecurringTicket | None = None, **kwargs: Any
    ):
        if instance is not None:
            kwargs.setdefault(
                "initial", {name: getattr(instance, name) for name in self.base_fields}
            )
        super().__init__(*args, user=user, instance=instance, **kwargs)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)
        if instance is not None:
            self.fields["customer"].disabled = True
        self.fields["team"].queryset = core_selectors.team_list(user=user).prefetch_related(None)
        self.fields["assignee"].queryset = core_selectors.staff_choices(user=user)

    def perform(self) -> RecurringTicket:
        data = dict(self.cleaned_data)
        customer = data.pop("customer")
        if self.instance is None:
            return services.recurring_ticket_create(actor=self.user, customer=customer, **data)
        return services.recurring_ticket_update(actor=self.user, recurring=self.instance, **data)


# Canned replies ------------------------------------------------------------------------------


class CannedReplyFilterForm(SearchForm):
    search_hint = _("Title or text")


class CannedReplyForm(ServiceForm):
    """A canned reply; without a team every staff member may use it."""

    title = forms.CharField(label=_("title"), max_length=200)
    body = forms.CharField(label=_("text"), widget=forms.Textarea(attrs={"rows": 8}))
    team = ChoiceField(
        label=_("team"),
        queryset=Team.objects.none(),
        required=False,
        help_text=_("Empty: every staff member may use it."),
    )

    def __init__(self, *args: Any, user: User, instance: CannedReply | None = None, **kw: Any):
        if instance is not None:
            kw.setdefault("initial", {name: getattr(instance, name) for name in self.base_fields})
        super().__init__(*args, user=user, instance=instance, **kw)
        self.fields["team"].queryset = selectors.canned_reply_team_choices(user=user)

    def perform(self) -> CannedReply:
        if self.instance is None:
            return services.canned_reply_create(actor=self.user, **self.cleaned_data)
        return services.canned_reply_update(
            actor=self.user, reply=self.instance, **self.cleaned_data
        )


# Saved ticket views --------------------------------------------------------------------------


def queue_query(data: Any) -> str:
    """The queue's filters in `data`, as a query string: only known filters, never a page
    cursor, so a saved view always opens on its first page."""
    kept = QueryDict(mutable=True)
    for name in TicketFilterForm.base_fields:
        values = [value for value in data.getlist(name) if value]
        if values:
            kept.setlist(name, values)
    return kept.urlencode()


class SavedTicketViewForm(ServiceForm):
    """Names the queue's current filters. With htmx the filter fields come along in the post;
    without it, the page's query string travels in the hidden `query`."""

    name = forms.CharField(label=_("name of this view"), max_length=100)
    is_shared = forms.BooleanField(label=_("share with my teams"), required=False)
    query = forms.CharField(widget=forms.HiddenInput, required=False, max_length=1000)

    def perform(self) -> SavedTicketView:
        posted = self.data
        if any(name in posted for name in TicketFilterForm.base_fields):
            query = queue_query(posted)
        else:
            query = queue_query(QueryDict(self.cleaned_data["query"]))
        return services.saved_ticket_view_create(
            actor=self.user,
            name=self.cleaned_data["name"],
            query=query,
            is_shared=self.cleaned_data["is_shared"],
        )


# Automatic assignment per team ---------------------------------------------------------------


class TeamRoutingForm(ServiceForm):
    """How one team's new tickets are assigned."""

    team = forms.ModelChoiceField(queryset=Team.objects.none(), widget=forms.HiddenInput)
    mode = forms.ChoiceField(label=_("assignment"), choices=TeamRouting.Mode.choices)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        self.fields["team"].queryset = selectors.team_routing_list(user=user)

    def perform(self) -> TeamRouting:
        return services.team_routing_set(
            actor=self.user, team=self.cleaned_data["team"], mode=self.cleaned_data["mode"]
        )


# Email to ticket ------------------------------------------------------------------------------


class MailboxForm(ServiceForm):
    """A support mailbox. The password and token are never shown; left empty on editing, the
    stored one is kept."""

    name = forms.CharField(label=_("name"), max_length=100)
    address = forms.EmailField(
        label=_("support address"), help_text=Mailbox._meta.get_field("address").help_text
    )
    imap_host = forms.CharField(label=_("IMAP server"), max_length=200)
    imap_port = forms.IntegerField(label=_("IMAP port"), min_value=1, max_value=65535, initial=993)
    imap_security = forms.ChoiceField(
        label=_("connection security"), choices=MailSecurity.choices, initial=MailSecurity.SSL
    )
    imap_username = forms.CharField(label=_("IMAP user name"), max_length=200)
    password = forms.CharField(
        label=_("password"), max_length=1000, required=False, widget=forms.PasswordInput
    )
    oauth2_token = forms.CharField(
        label=_("OAuth 2.0 access token"),
        max_length=10_000,
        required=False,
        widget=forms.PasswordInput,
        help_text=Mailbox._meta.get_field("oauth2_token").help_text,
    )
    folder = forms.CharField(label=_("folder"), max_length=200, initial="INBOX")
    processed_folder = forms.CharField(
        label=_("processed folder"),
        max_length=200,
        required=False,
        help_text=Mailbox._meta.get_field("processed_folder").help_text,
    )
    team = ChoiceField(label=_("team"), queryset=Team.objects.none(), required=False)
    default_priority = forms.ChoiceField(
        label=_("priority of new tickets"), choices=Priority.choices, initial=Priority.P3
    )
    is_active = forms.BooleanField(label=_("active"), required=False, initial=True)
    is_default_outgoing = forms.BooleanField(
        label=_("default sender"),
        required=False,
        help_text=Mailbox._meta.get_field("is_default_outgoing").help_text,
    )

    def __init__(self, *args: Any, user: User, instance: Mailbox | None = None, **kw: Any):
        if instance is not None:
            names = [name for name in self.base_fields if name not in ("password", "oauth2_token")]
            kw.setdefault("initial", {name: getattr(instance, name) for name in names})
        super().__init__(*args, user=user, instance=instance, **kw)
        self.fields["team"].queryset = core_selectors.team_list(user=user)
        if instance is not None:
            for name in ("password", "oauth2_token"):
                if getattr(instance, name):
                    self.fields[name].widget.attrs["placeholder"] = _("stored; type to replace")

    def perform(self) -> Mailbox:
        data = dict(self.cleaned_data)
        if self.instance is None:
            return services.mailbox_create(actor=self.user, **data)
        # Both secret fields empty keep the stored secret; typing one replaces it and clears
        # the other (a mailbox logs in with a password or a token, never both).
        if data["password"]:
            data["oauth2_token"] = ""
        elif data["oauth2_token"]:
            data["password"] = ""
        else:
            del data["password"], data["oauth2_token"]
        return services.mailbox_update(actor=self.user, mailbox=self.instance, **data)


class MailboxFilterForm(SearchForm):
    search_hint = _("Name or address")


class InboundMessageFilterForm(SearchForm):
    search_hint = _("Sender or subject")
    outcome = forms.ChoiceField(
        label=_("outcome"), choices=BLANK + InboundMessage.Outcome.choices, required=False
    )
    mailbox = ChoiceField(label=_("mailbox"), queryset=Mailbox.objects.none(), required=False)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["mailbox"].queryset = selectors.mailbox_list(user=user)


class TriageLinkForm(ServiceForm):
    """Files a triaged email under a customer as a new ticket."""

    customer = CustomerChoiceField(label=_("customer"), queryset=Customer.objects.none())
    create_contact = forms.BooleanField(
        label=_("add the sender as a contact"), required=False, initial=True
    )

    def __init__(self, *args: Any, user: User, instance: InboundMessage, **kw: Any):
        super().__init__(*args, user=user, instance=instance, **kw)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)

    def perform(self) -> Ticket:
        return services.inbound_message_link(
            actor=self.user,
            message=self.instance,
            customer=self.cleaned_data["customer"],
            create_contact=self.cleaned_data["create_contact"],
        )
