"""The service-desk pages: the ticket queue with bulk actions, "my work", the dispatcher board,
the ticket page, phone intake, and the customer portal's ticket pages.

Customer users reach the same URLs and get the portal's version of a page: their own (or, for
a customer administrator, their company's) tickets, public entries only, no desk tools. Built on
core's UI plumbing: reads through selectors (404 outside the user's scope),
`permissions.require` on every page (403 inside it), writes through forms that call services.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from onestop.contracts.models import Contract
from onestop.core import selectors as core_selectors
from onestop.core.errors import ConflictError
from onestop.core.forms import ServiceForm
from onestop.core.models import Team, User
from onestop.core.permissions import allowed_actions, can, require
from onestop.core.views import (
    ObjectPages,
    Page,
    customer_initial,
    delete_page,
    form_page,
    form_save,
    keyset_page,
    list_page,
    post_data,
    preset_customer,
    safe_next_url,
    say_created,
    say_saved,
    ui_view,
)
from onestop.notify import selectors as notify_selectors
from onestop.notify.models import Delivery
from onestop.servicedesk import forms, selectors, services
from onestop.servicedesk.imap import MailboxError
from onestop.servicedesk.models import (
    SIGNATURE_HEIGHT,
    SIGNATURE_WIDTH,
    CannedReply,
    InboundMessage,
    KnowledgeArticle,
    Mailbox,
    RecurringTicket,
    SavedTicketView,
    Status,
    TeamRouting,
    Ticket,
    TicketEntry,
    TimeEntry,
    Visit,
)

MINE_LIMIT = 100
BOARD_LIMIT = 30
DETAIL_LIMIT = 50
# The "at risk" column looks among the running tickets due soonest: a ticket due after a
# hundred others is rarely close to its due time, and it comes up as those are worked off.
BOARD_CANDIDATES = 100
DUE_FIRST = (F("resolution_due_at").asc(nulls_last=True), "id")


def _desk_choices(user: User) -> tuple[list[Team], list[User]]:
    """Teams and staff for the pickers, loaded once per page."""
    teams = list(core_selectors.team_list(user=user).prefetch_related(None))
    return teams, list(core_selectors.staff_choices(user=user))


def _with_sla(tickets: list[Ticket]) -> list[Ticket]:
    """Sets `sla_state` on each ticket (see selectors.ticket_sla_states)."""
    states = selectors.ticket_sla_states(tickets=tickets, now=timezone.now())
    for ticket in tickets:
        ticket.sla_state = states[ticket.pk]
    return tickets


def _form_errors_as_messages(request: HttpRequest, form: ServiceForm) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


def _detail_url(ticket: Ticket, anchor: str = "") -> str:
    return reverse("ticket_detail", args=[ticket.pk]) + (f"#{anchor}" if anchor else "")


# The queue, "my work", the board -------------------------------------------------------------


@ui_view
def ticket_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    require(user, "view", Ticket)
    if user.is_customer_user:
        return _portal_list(request)
    teams, staff = _desk_choices(user)
    form = forms.TicketFilterForm(request.GET, user=user, teams=teams, staff=staff)
    form.is_valid()
    page = keyset_page(
        selectors.ticket_list(user=user, **form.filters()),
        order=("-id",),
        cursor=request.GET.get("cursor"),
    )
    _with_sla(page.rows)
    context = {
        "title": _("Ticket queue"),
        "page": page,
        "search_field": form["q"],
        "more_filters": [field for field in form if field.name != "q"],
        "more_filters_active": form.narrowed(),
        "bulk_form": forms.BulkForm(user=user, teams=teams, staff=staff),
        "list_url": request.path,
        "bulk": True,  # the rows template is shared with "my work", which has no bulk bar
        **_saved_views_context(request),
    }
    # A live filter swaps only the rows in; the bulk bar outside them keeps its choices.
    partial = request.htmx and not request.htmx.history_restore_request
    template = "servicedesk/ticket_rows.html" if partial else "servicedesk/ticket_list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@ui_view
@require_POST
def ticket_bulk(request: HttpRequest) -> HttpResponse:
    """Applies one change to the chosen tickets (also the board's quick assign)."""
    user = request.user
    require(user, "change", Ticket)
    teams, staff = _desk_choices(user)
    form = forms.BulkForm(request.POST, user=user, teams=teams, staff=staff)
    back = safe_next_url(request, reverse("ticket_list"))
    result = form_save(request, form)
    if result is None:
        _form_errors_as_messages(request, form)
        return redirect(back)
    done, errors = result
    if done:
        messages.success(
            request,
            ngettext("%(count)d ticket updated.", "%(count)d tickets updated.", len(done))
            % {"count": len(done)},
        )
    for error in errors:
        messages.error(request, error)
    return redirect(back)


@ui_view
def ticket_mine(request: HttpRequest) -> HttpResponse:
    """The user's open assigned tickets, the one due soonest first."""
    user = request.user
    require(user, "change", Ticket)
    mine = selectors.ticket_list(user=user, assignee_id=user.pk, is_open=True)
    tickets = list(mine.order_by(*DUE_FIRST)[: MINE_LIMIT + 1])
    # Visits not yet done, the next first: what the engineer must be on site for.
    visits = selectors.visit_list(user=user, engineer_id=user.pk).filter(
        state__in=(Visit.State.SCHEDULED, Visit.State.ON_SITE)
    )
    context = {
        "title": _("My work"),
        "visits": list(visits[:DETAIL_LIMIT]),
        "page": Page(rows=_with_sla(tickets[:MINE_LIMIT]), next_cursor="", is_first=True),
        "more": len(tickets) > MINE_LIMIT,
        "limit": MINE_LIMIT,
    }
    return render(request, "servicedesk/ticket_mine.html", context)


@ui_view
def ticket_board(request: HttpRequest) -> HttpResponse:
    """The dispatcher's board: unassigned, at risk, breached; a ticket may be in two columns."""
    user = request.user
    require(user, "change", Ticket)
    now = timezone.now()
    unassigned = selectors.ticket_list(user=user, is_open=True, unassigned=True)
    unassigned = list(unassigned.order_by(*DUE_FIRST)[:BOARD_LIMIT])
    running = list(selectors.ticket_running(user=user, now=now)[:BOARD_CANDIDATES])
    overdue = list(selectors.ticket_overdue(user=user, now=now).order_by(*DUE_FIRST)[:BOARD_LIMIT])
    _with_sla([*unassigned, *running, *overdue])
    at_risk = [t for t in running if t.sla_state == selectors.SLA_AT_RISK][:BOARD_LIMIT]
    context = {
        "title": _("Dispatcher board"),
        "columns": [
            ("unassigned", _("Unassigned"), unassigned, _("Every open ticket has an engineer.")),
            ("at_risk", _("At risk"), at_risk, _("No ticket is close to its due time.")),
            ("breached", _("Breached"), overdue, _("No open ticket is past its due time.")),
        ],
        "staff": list(core_selectors.staff_choices(user=user)),
        "limit": BOARD_LIMIT,
    }
    return render(request, "servicedesk/ticket_board.html", context)


# One ticket ----------------------------------------------------------------------------------


@ui_view
def ticket_create(request: HttpRequest) -> HttpResponse:
    """Staff: a ticket for any customer in scope, phone intake first. Customers: the portal's
    form, for their own company."""
    user = request.user
    require(user, "add", Ticket)
    if user.is_customer_user:
        form = forms.PortalTicketForm(post_data(request), user=user)
        template = "servicedesk/portal_form.html"
    else:
        customer = preset_customer(request)
        form = forms.TicketCreateForm(post_data(request), user=user, customer=customer)
        template = "servicedesk/ticket_form.html"
    if ticket := form_save(request, form):
        messages.success(request, _("Ticket #%(id)s opened.") % {"id": ticket.pk})
        return redirect("ticket_detail", pk=ticket.pk)
    status = 400 if form.is_bound and form.errors else 200
    context = {"form": form, "title": _("New ticket"), "cancel_url": reverse("ticket_list")}
    return render(request, template, context, status=status)


@ui_view
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = selectors.ticket_get(user=request.user, pk=pk)
    require(request.user, "view", ticket)
    if request.user.is_customer_user:
        return _ticket_page(request, ticket)
    return _ticket_page(request, ticket, reply_form=_canned_reply_form(request, ticket))


def _ticket_page(
    request: HttpRequest,
    ticket: Ticket,
    *,
    reply_form: Any = None,
    rating_form: Any = None,
    status: int = 200,
    **rejected: Any,
) -> HttpResponse:
    """The ticket page; a form given is a rejected one to show again with its errors."""
    user = request.user
    can_reply = ticket.status != Status.CLOSED and can(user, "add", TicketEntry)
    context: dict[str, Any] = {
        "ticket": ticket,
        "entries": selectors.ticket_entries(user=user, ticket=ticket),
        "can_reply": can_reply,
        "attachments": list(selectors.attachment_list(user=user, ticket=ticket)),
        "attach_form": rejected.get("attach_form")
        or (forms.AttachForm(user=user, instance=ticket) if can_reply else None),
    }
    if user.is_customer_user:
        done = ticket.status in (Status.RESOLVED, Status.CLOSED)
        context.update(
            {
                "visits": list(selectors.visit_list(user=user, ticket_id=ticket.pk)[:DETAIL_LIMIT]),
                "reply_form": reply_form or forms.PortalReplyForm(user=user, instance=ticket),
                "can_rate": done and ticket.csat_score is None,
                "rating_form": rating_form or forms.RatingForm(user=user, instance=ticket),
            }
        )
        return render(request, "servicedesk/portal_detail.html", context, status=status)
    _with_sla([ticket])
    actions = allowed_actions(user, ticket)
    can_link = "change" in actions and ticket.is_open
    context.update(
        {
            "actions": actions,
            "status_actions": forms.status_actions(ticket),
            "reply_form": reply_form or forms.ReplyForm(user=user, instance=ticket),
            "canned_replies": list(
                selectors.canned_reply_list(user=user)
                .select_related(None)
                .only("pk", "title")[:CANNED_CHOICES_LIMIT]
            )
            if can(user, "view", CannedReply)
            else [],
            "history": core_selectors.audit_history(user=user, obj=ticket),
            "watchers": list(ticket.watchers.all()),
            "cc_contacts": list(ticket.cc_contacts.all()),
            "related": list(ticket.related.all()),
            "children": list(ticket.children.only("pk", "title", "status")[:DETAIL_LIMIT]),
            "people_form": rejected.get("people_form")
            or (forms.PeopleForm(user=user, instance=ticket) if can_link else None),
            "merge_form": rejected.get("merge_form")
            or (forms.MergeForm(user=user, instance=ticket) if can_link else None),
        }
    )
    context.update(_time_context(request, ticket, rejected.get("time_form")))
    context.update(_visit_context(request, ticket, rejected.get("visit_form")))
    if can(user, "view", Delivery):
        context["deliveries"] = list(
            notify_selectors.delivery_list(
                user=user, object_type="servicedesk.ticket", object_id=ticket.pk
            )[:DETAIL_LIMIT]
        )
    return render(request, "servicedesk/ticket_detail.html", context, status=status)


def _visit_context(request: HttpRequest, ticket: Ticket, visit_form: Any) -> dict[str, Any]:
    """The ticket's on-site visits and, for whoever may dispatch, the form to book one."""
    user = request.user
    visits = list(selectors.visit_list(user=user, ticket_id=ticket.pk)[:DETAIL_LIMIT])
    may_book = can(user, "add", Visit) and ticket.is_open
    return {
        "visits": visits,
        "visit_form": visit_form
        or (forms.VisitScheduleForm(user=user, instance=ticket) if may_book else None),
    }


def _time_context(request: HttpRequest, ticket: Ticket, time_form: Any) -> dict[str, Any]:
    """The ticket's time entries (the latest ones), their total and the block-of-hours balance."""
    user = request.user
    if not can(user, "view", TimeEntry):
        return {}
    entries = selectors.time_entry_list(user=user, ticket_id=ticket.pk)
    latest = list(entries[: DETAIL_LIMIT + 1])
    context: dict[str, Any] = {
        "time_entries": latest[:DETAIL_LIMIT],
        "time_more": len(latest) > DETAIL_LIMIT,
        "time_total": entries.aggregate(total=Sum("minutes"))["total"] or 0,
        "time_form": time_form
        or (
            forms.TimeEntryForm(user=user, instance=ticket)
            if can(user, "add", TimeEntry) and ticket.status != Status.CLOSED
            else None
        ),
    }
    contract = ticket.contract
    if contract is not None and contract.pricing == Contract.Pricing.BLOCK_HOURS:
        used = services.block_minutes_used(contract)
        context["block_balance"] = {
            "total": contract.block_minutes or 0,
            "used": used,
            "left": (contract.block_minutes or 0) - used,
        }
    return context


@ui_view
@require_POST
def ticket_attach(request: HttpRequest, pk: int) -> HttpResponse:
    """Uploads a file to the ticket (customers: always visible to them)."""
    user = request.user
    ticket = selectors.ticket_get(user=user, pk=pk)
    require(user, "add", TicketEntry)
    form = forms.AttachForm(request.POST, request.FILES, user=user, instance=ticket)
    if attachment := form_save(request, form):
        messages.success(request, _("“%(name)s” attached.") % {"name": attachment.name})
        return redirect(_detail_url(ticket, "attachments"))
    ticket = selectors.ticket_get(user=user, pk=pk)
    return _ticket_page(request, ticket, attach_form=form, status=400)


@ui_view
@require_POST
def ticket_people(request: HttpRequest, pk: int) -> HttpResponse:
    """Watchers, contacts in copy, parent and related tickets."""
    user = request.user
    ticket = selectors.ticket_get(user=user, pk=pk)
    require(user, "change", ticket)
    form = forms.PeopleForm(request.POST, user=user, instance=ticket)
    if form_save(request, form):
        say_saved(request, ticket)
        return redirect(_detail_url(ticket, "people"))
    ticket = selectors.ticket_get(user=user, pk=pk)
    return _ticket_page(request, ticket, people_form=form, status=400)


@ui_view
@require_POST
def ticket_merge(request: HttpRequest, pk: int) -> HttpResponse:
    """Merges this ticket (a duplicate) into another of the same customer."""
    user = request.user
    ticket = selectors.ticket_get(user=user, pk=pk)
    require(user, "change", ticket)
    form = forms.MergeForm(request.POST, user=user, instance=ticket)
    if target := form_save(request, form):
        messages.success(
            request, _("#%(id)s merged into #%(target)s.") % {"id": ticket.pk, "target": target.pk}
        )
        return redirect("ticket_detail", pk=target.pk)
    ticket = selectors.ticket_get(user=user, pk=pk)
    return _ticket_page(request, ticket, merge_form=form, status=400)


@ui_view
@require_POST
def ticket_time(request: HttpRequest, pk: int) -> HttpResponse:
    """Logs work time on the ticket; an overdrawn block of hours is refused on the form."""
    user = request.user
    ticket = selectors.ticket_get(user=user, pk=pk)
    require(user, "add", TimeEntry)
    form = forms.TimeEntryForm(request.POST, user=user, instance=ticket)
    if form_save(request, form):
        messages.success(request, _("Time logged."))
        return redirect(_detail_url(ticket, "time"))
    ticket = selectors.ticket_get(user=user, pk=pk)
    return _ticket_page(request, ticket, time_form=form, status=400)


@ui_view
@require_POST
def ticket_visit_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Books an on-site visit; the ticket then waits for it with its clock paused."""
    user = request.user
    ticket = selectors.ticket_get(user=user, pk=pk)
    require(user, "add", Visit)
    form = forms.VisitScheduleForm(request.POST, user=user, instance=ticket)
    if visit := form_save(request, form):
        messages.success(request, _("Visit %(number)s booked.") % {"number": visit.number})
        return redirect(_detail_url(ticket, "visits"))
    ticket = selectors.ticket_get(user=user, pk=pk)
    return _ticket_page(request, ticket, visit_form=form, status=400)


@ui_view
def ticket_visit(request: HttpRequest, pk: int) -> HttpResponse:
    """The work order (派工单): what to do, when, and, once done, the customer's signature.
    On the engineer's phone it is where the customer signs."""
    return _visit_page(request, selectors.visit_get(user=request.user, pk=pk))


def _visit_page(
    request: HttpRequest, visit: Visit, *, status: int = 200, **rejected: Any
) -> HttpResponse:
    user = request.user
    require(user, "view", visit)
    may_act = can(user, "change", visit) and (
        user.pk == visit.engineer_id or user.role in services.VISIT_COORDINATORS
    )
    scheduled = visit.state == Visit.State.SCHEDULED
    context = {
        "visit": visit,
        "ticket": visit.ticket,
        "may_act": may_act,
        "edit_form": rejected.get("edit_form")
        or (forms.VisitScheduleForm(user=user, instance=visit) if may_act and scheduled else None),
        "cancel_form": rejected.get("cancel_form")
        or (forms.VisitCancelForm(user=user, instance=visit) if may_act and scheduled else None),
        "sign_form": rejected.get("sign_form")
        or (
            forms.VisitSignOffForm(user=user, instance=visit)
            if may_act and visit.state == Visit.State.ON_SITE
            else None
        ),
        "signature_size": (SIGNATURE_WIDTH, SIGNATURE_HEIGHT),
    }
    return render(request, "servicedesk/visit_detail.html", context, status=status)


def _visit_action(
    request: HttpRequest, pk: int, form_class: type[ServiceForm], form_key: str, done: str
) -> HttpResponse:
    user = request.user
    visit = selectors.visit_get(user=user, pk=pk)
    require(user, "change", visit)
    form = form_class(request.POST, user=user, instance=visit)
    if form_save(request, form):
        messages.success(request, done)
        return redirect("ticket_visit", pk=pk)
    visit = selectors.visit_get(user=user, pk=pk)
    return _visit_page(request, visit, status=400, **{form_key: form})


@ui_view
@require_POST
def ticket_visit_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _visit_action(request, pk, forms.VisitScheduleForm, "edit_form", _("Visit moved."))


@ui_view
@require_POST
def ticket_visit_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _visit_action(request, pk, forms.VisitCancelForm, "cancel_form", _("Visit cancelled."))


@ui_view
@require_POST
def ticket_visit_sign(request: HttpRequest, pk: int) -> HttpResponse:
    return _visit_action(
        request, pk, forms.VisitSignOffForm, "sign_form", _("Work order signed. Thank you.")
    )


@ui_view
@require_POST
def ticket_visit_check_in(request: HttpRequest, pk: int) -> HttpResponse:
    """The engineer has arrived: the visit starts now."""
    user = request.user
    visit = selectors.visit_get(user=user, pk=pk)
    require(user, "change", visit)
    try:
        services.visit_check_in(actor=user, visit=visit)
    except ConflictError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, _("Checked in. Hand the phone to the customer to sign at the end.")
        )
    return redirect("ticket_visit", pk=pk)


@ui_view
@require_POST
def ticket_reply(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    ticket = selectors.ticket_get(user=user, pk=pk)
    require(user, "add", TicketEntry)
    form_class = forms.PortalReplyForm if user.is_customer_user else forms.ReplyForm
    form = form_class(request.POST, user=user, instance=ticket)
    if entry := form_save(request, form):
        if entry.kind == TicketEntry.Kind.NOTE:
            messages.success(request, _("Internal note added."))
        else:
            messages.success(request, _("Reply added."))
        return redirect(_detail_url(ticket, "timeline"))
    # Read again: a rolled-back reply may have changed the ticket in memory.
    ticket = selectors.ticket_get(user=user, pk=pk)
    return _ticket_page(request, ticket, reply_form=form, status=400)


@ui_view
@require_POST
def ticket_rate(request: HttpRequest, pk: int) -> HttpResponse:
    """The customer's satisfaction survey on a resolved ticket."""
    user = request.user
    ticket = selectors.ticket_get(user=user, pk=pk)
    require(user, "view", ticket)
    if not user.is_customer_user:
        raise PermissionDenied(_("Only the customer rates a ticket."))
    form = forms.RatingForm(request.POST, user=user, instance=ticket)
    if form_save(request, form):
        messages.success(request, _("Thank you for your rating."))
        return redirect("ticket_detail", pk=ticket.pk)
    ticket = selectors.ticket_get(user=user, pk=pk)
    return _ticket_page(request, ticket, rating_form=form, status=400)


@ui_view
@require_POST
def ticket_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Moves the ticket along its workflow; a forbidden step is reported and changes nothing."""
    user = request.user
    ticket = selectors.ticket_get(user=user, pk=pk)
    require(user, "change", ticket)
    form = forms.StatusForm(request.POST, user=user, instance=ticket)
    if form_save(request, form):
        messages.success(
            request,
            _("#%(id)s is now “%(status)s”.")
            % {"id": ticket.pk, "status": ticket.get_status_display()},
        )
    else:
        _form_errors_as_messages(request, form)
    return redirect("ticket_detail", pk=ticket.pk)


@ui_view
def ticket_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    ticket = selectors.ticket_get(user=user, pk=pk)
    require(user, "change", ticket)
    form = forms.TicketEditForm(post_data(request), user=user, instance=ticket)
    if form_save(request, form):
        say_saved(request, ticket)
        return redirect("ticket_detail", pk=ticket.pk)
    return form_page(
        request,
        form,
        title=_("Edit %(obj)s") % {"obj": ticket},
        cancel_url=_detail_url(ticket),
    )


@ui_view
def ticket_delete(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = selectors.ticket_get(user=request.user, pk=pk)
    require(request.user, "delete", ticket)
    return delete_page(
        request,
        ticket,
        delete=lambda: services.ticket_delete(actor=request.user, ticket=ticket),
        done_url=reverse("ticket_list"),
        cancel_url=_detail_url(ticket),
    )


# The customer portal -------------------------------------------------------------------------


def _portal_list(request: HttpRequest) -> HttpResponse:
    """A customer's tickets: their own, or their company's for a customer administrator."""
    user = request.user
    form = forms.PortalFilterForm(request.GET)
    form.is_valid()
    return list_page(
        request,
        model=Ticket,
        queryset=selectors.ticket_list(
            user=user, q=form.cleaned_data.get("q"), is_open=form.is_open()
        ),
        order=("-id",),
        filter_form=form,
        rows_template="servicedesk/portal_rows.html",
        title=_("Our company's tickets") if user.is_customer_admin else _("My tickets"),
        add_url=reverse("ticket_create"),
    )


# Knowledge base ------------------------------------------------------------------------------


@ui_view
def knowledge_list(request: HttpRequest) -> HttpResponse:
    """Staff: every article; customers: the published ones meant for them."""
    user = request.user
    require(user, "view", KnowledgeArticle)
    form = forms.KnowledgeFilterForm(request.GET)
    form.is_valid()
    return list_page(
        request,
        model=KnowledgeArticle,
        queryset=selectors.knowledge_article_list(user=user, q=form.cleaned_data.get("q"))
        .prefetch_related(None)
        .select_related("author"),
        order=("title", "id"),
        filter_form=form,
        rows_template="servicedesk/knowledge_rows.html",
        title=_("Knowledge base"),
        add_url=reverse("knowledge_create"),
    )


@ui_view
def knowledge_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    article = selectors.knowledge_article_get(user=user, pk=pk)
    require(user, "view", article)
    context: dict[str, Any] = {"article": article, "actions": allowed_actions(user, article)}
    if user.is_provider_staff:
        context["history"] = core_selectors.audit_history(user=user, obj=article)
    return render(request, "servicedesk/knowledge_detail.html", context)


knowledge_pages = ObjectPages(
    model=KnowledgeArticle,
    form=forms.KnowledgeArticleForm,
    get=selectors.knowledge_article_get,
    delete_service=services.knowledge_article_delete,
    create_title=gettext_lazy("New article"),
    list_url="knowledge_list",
    detail_url="knowledge_detail",
)


# Recurring tickets ---------------------------------------------------------------------------


@ui_view
def ticket_recurring_list(request: HttpRequest) -> HttpResponse:
    """The schedules that open tickets, the next one due first."""
    user = request.user
    require(user, "view", RecurringTicket)
    form = forms.RecurringFilterForm(request.GET, user=user)
    form.is_valid()
    customer = form.cleaned_data.get("customer")
    queryset = selectors.recurring_ticket_list(
        user=user, customer_id=customer.pk if customer else None
    )
    if q := form.cleaned_data.get("q"):
        queryset = queryset.filter(title__icontains=q)
    return list_page(
        request,
        model=RecurringTicket,
        queryset=queryset,
        order=("next_run_at", "id"),
        filter_form=form,
        rows_template="servicedesk/recurring_rows.html",
        title=_("Recurring tickets"),
        add_url=reverse("ticket_recurring_create"),
    )


recurring_pages = ObjectPages(
    model=RecurringTicket,
    form=forms.RecurringTicketForm,
    get=selectors.recurring_ticket_get,
    delete_service=services.recurring_ticket_delete,
    create_title=gettext_lazy("New recurring ticket"),
    list_url="ticket_recurring_list",
    edit_url="ticket_recurring_edit",
    preset=customer_initial,
)


# Canned replies ------------------------------------------------------------------------------

CANNED_CHOICES_LIMIT = 200


@ui_view
def ticket_canned_list(request: HttpRequest) -> HttpResponse:
    """The canned replies the user may use: global ones and their teams'."""
    user = request.user
    require(user, "view", CannedReply)
    form = forms.CannedReplyFilterForm(request.GET)
    form.is_valid()
    queryset = selectors.canned_reply_list(user=user, q=form.cleaned_data.get("q"))
    return list_page(
        request,
        model=CannedReply,
        queryset=queryset,
        order=("title", "id"),
        filter_form=form,
        rows_template="servicedesk/canned_rows.html",
        title=_("Canned replies"),
        add_url=reverse("ticket_canned_create"),
    )


canned_pages = ObjectPages(
    model=CannedReply,
    form=forms.CannedReplyForm,
    get=selectors.canned_reply_get,
    delete_service=services.canned_reply_delete,
    create_title=gettext_lazy("New canned reply"),
    list_url="ticket_canned_list",
    edit_url="ticket_canned_edit",
)


def _canned_reply_form(request: HttpRequest, ticket: Ticket) -> forms.ReplyForm | None:
    """The reply form pre-filled with the canned reply named by ?canned=, if the user may use it."""
    pk = request.GET.get("canned")
    if not pk or not can(request.user, "view", CannedReply):
        return None
    reply = selectors.canned_reply_get(user=request.user, pk=pk)
    return forms.ReplyForm(user=request.user, instance=ticket, initial={"body": reply.body})


@ui_view
def ticket_canned_insert(request: HttpRequest, pk: int) -> HttpResponse:
    """The reply text box filled with a canned reply (htmx); without JS, the ticket page."""
    ticket = selectors.ticket_get(user=request.user, pk=pk)
    require(request.user, "view", CannedReply)
    reply_form = _canned_reply_form(request, ticket)
    if not request.htmx:
        query = f"?canned={request.GET['canned']}" if reply_form else ""
        return redirect(reverse("ticket_detail", args=[ticket.pk]) + query + "#reply")
    reply_form = reply_form or forms.ReplyForm(user=request.user, instance=ticket)
    response = render(request, "servicedesk/reply_body.html", {"reply_form": reply_form})
    patch_vary_headers(response, ["HX-Request"])
    return response


# Saved ticket views --------------------------------------------------------------------------


def _saved_views_context(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    views = selectors.saved_ticket_view_list(user=user)[: selectors.SAVED_VIEWS_LIMIT]
    return {
        "saved_views": list(views),
        "saved_view_form": forms.SavedTicketViewForm(
            user=user, initial={"query": forms.queue_query(request.GET)}
        )
        if can(user, "add", SavedTicketView)
        else None,
    }


@ui_view
@require_POST
def ticket_view_save(request: HttpRequest) -> HttpResponse:
    """Saves the queue's filters under a name; back on the queue, showing that view."""
    require(request.user, "add", SavedTicketView)
    form = forms.SavedTicketViewForm(request.POST, user=request.user)
    if view := form_save(request, form):
        messages.success(request, _("View “%(name)s” saved.") % {"name": view.name})
        url = reverse("ticket_list") + (f"?{view.query}" if view.query else "")
    else:
        _form_errors_as_messages(request, form)
        url = reverse("ticket_list")
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


@ui_view
@require_POST
def ticket_view_delete(request: HttpRequest, pk: int) -> HttpResponse:
    view = selectors.saved_ticket_view_get(user=request.user, pk=pk)
    require(request.user, "delete", view)
    services.saved_ticket_view_delete(actor=request.user, view=view)
    messages.success(request, _("View “%(name)s” deleted.") % {"name": view.name})
    return redirect("ticket_list")


# Automatic assignment per team ---------------------------------------------------------------


@ui_view
def ticket_routing(request: HttpRequest) -> HttpResponse:
    """Per team: how new tickets without an assignee are assigned."""
    user = request.user
    require(user, "view", TeamRouting)
    if request.method == "POST":
        require(user, "change", TeamRouting)
        form = forms.TeamRoutingForm(request.POST, user=user)
        if routing := form_save(request, form):
            messages.success(
                request,
                _("%(team)s: %(mode)s.")
                % {"team": routing.team.name, "mode": routing.get_mode_display()},
            )
            return redirect("ticket_routing")
        _form_errors_as_messages(request, form)
    teams = list(selectors.team_routing_list(user=user)[: selectors.ROUTING_TEAMS_LIMIT])
    rows = []
    for team in teams:
        routing = getattr(team, "routing", None)
        mode = routing.mode if routing else TeamRouting.Mode.MANUAL
        rows.append(
            {
                "team": team,
                "routing": routing,
                "form": forms.TeamRoutingForm(
                    user=user, initial={"team": team.pk, "mode": mode}, auto_id=f"t{team.pk}-%s"
                ),
            }
        )
    context = {"title": _("Automatic assignment"), "rows": rows}
    status = 400 if request.method == "POST" else 200
    return render(request, "servicedesk/ticket_routing.html", context, status=status)


# Email to ticket ------------------------------------------------------------------------------

TRIAGE_LIMIT = 50


@ui_view
def ticket_mailbox_list(request: HttpRequest) -> HttpResponse:
    """The support mailboxes, with when each was last polled and its last error."""
    user = request.user
    require(user, "view", Mailbox)
    form = forms.MailboxFilterForm(request.GET)
    form.is_valid()
    return list_page(
        request,
        model=Mailbox,
        queryset=selectors.mailbox_list(user=user, q=form.cleaned_data.get("q")),
        order=("name", "id"),
        filter_form=form,
        rows_template="servicedesk/mailbox_rows.html",
        title=_("Mailboxes"),
        add_url=reverse("ticket_mailbox_create"),
    )


mailbox_pages = ObjectPages(
    model=Mailbox,
    form=forms.MailboxForm,
    get=selectors.mailbox_get,
    delete_service=services.mailbox_delete,
    create_title=gettext_lazy("New mailbox"),
    list_url="ticket_mailbox_list",
    edit_url="ticket_mailbox_edit",
)


@ui_view
@require_POST
def ticket_mailbox_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Logs in to the mailbox now and says how many messages wait, or why it failed."""
    mailbox = selectors.mailbox_get(user=request.user, pk=pk)
    require(request.user, "change", mailbox)
    try:
        count = services.mailbox_test_connection(mailbox=mailbox)
    except MailboxError as exc:
        messages.error(request, _("%(mailbox)s: %(error)s") % {"mailbox": mailbox, "error": exc})
    else:
        messages.success(
            request,
            ngettext(
                "%(mailbox)s: connected; %(count)s message waits in %(folder)s.",
                "%(mailbox)s: connected; %(count)s messages wait in %(folder)s.",
                count,
            )
            % {"mailbox": mailbox, "count": count, "folder": mailbox.folder},
        )
    return redirect("ticket_mailbox_list")


@ui_view
def ticket_triage(request: HttpRequest) -> HttpResponse:
    """Mail of no known sender, oldest first: link each to a customer or discard it."""
    user = request.user
    require(user, "change", InboundMessage)
    if request.method == "POST":
        message = selectors.inbound_message_get(user=user, pk=request.POST.get("message"))
        require(user, "change", message)
        if request.POST.get("action") == "discard":
            try:
                services.inbound_message_discard(actor=user, message=message)
                messages.success(request, _("Email discarded."))
            except ConflictError as exc:
                messages.error(request, exc.message)
            return redirect("ticket_triage")
        form = forms.TriageLinkForm(request.POST, user=user, instance=message)
        if ticket := form_save(request, form):
            say_created(request, ticket)
            return redirect("ticket_detail", pk=ticket.pk)
        _form_errors_as_messages(request, form)
    rows = list(
        selectors.inbound_message_list(user=user, outcome=InboundMessage.Outcome.TRIAGE)
        .select_related(None)
        .order_by("received_at", "id")[:TRIAGE_LIMIT]
    )
    context = {
        "title": _("Email triage"),
        "rows": rows,
        "customers": list(core_selectors.customer_choices(user=user).values_list("pk", "name")),
    }
    return render(request, "servicedesk/ticket_triage.html", context)


@ui_view
def ticket_inbound_list(request: HttpRequest) -> HttpResponse:
    """Every received email and what became of it."""
    user = request.user
    require(user, "view", InboundMessage)
    form = forms.InboundMessageFilterForm(request.GET, user=user)
    form.is_valid()
    mailbox = form.cleaned_data.get("mailbox")
    queryset = selectors.inbound_message_list(
        user=user,
        q=form.cleaned_data.get("q"),
        outcome=form.cleaned_data.get("outcome"),
        mailbox_id=mailbox.pk if mailbox else None,
    )
    return list_page(
        request,
        model=InboundMessage,
        queryset=queryset,
        order=("-received_at", "-id"),
        filter_form=form,
        rows_template="servicedesk/inbound_rows.html",
        title=_("Received email"),
    )
