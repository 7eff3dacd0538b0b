"""The contracts pages: contracts, SLA policies and business calendars with their editor.

Built on core's UI plumbing, so they look and behave like core's pages: reads through selectors
(404 outside the user's scope), `permissions.require` on every page (403 inside it), writes
through forms that call the services.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from onestop.contracts import forms, selectors, services
from onestop.contracts.business_time import CalendarError
from onestop.contracts.models import BusinessCalendar, Contract, SlaPolicy
from onestop.core import selectors as core_selectors
from onestop.core.forms import SearchForm
from onestop.core.permissions import allowed_actions, can, require
from onestop.core.views import ObjectPages, form_save, list_page, ui_view

# Contracts -----------------------------------------------------------------------------------


@ui_view
def contract_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", Contract)
    form = forms.ContractFilterForm(request.GET, user=request.user)
    form.is_valid()
    filters = form.cleaned_data
    customer = filters.get("customer")
    add_url = reverse("contract_create")
    if customer:
        add_url += "?" + urlencode({"customer": customer.pk})
    return list_page(
        request,
        model=Contract,
        queryset=selectors.contract_list(
            user=request.user,
            q=filters.get("q"),
            customer_id=customer.pk if customer else None,
            status=filters.get("status"),
            service_line=filters.get("service_line"),
        ),
        order=("number", "id"),
        filter_form=form,
        rows_template="contracts/contract_rows.html",
        title=_("Contracts"),
        add_url=add_url,
    )


@ui_view
def contract_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    contract = selectors.contract_get(user=user, pk=pk)
    require(user, "view", contract)
    context = {
        "contract": contract,
        "actions": allowed_actions(user, contract),
        # A customer administrator sees the promised targets and hours, not the provider's
        # policy and calendar pages.
        "can_view_policies": can(user, "view", SlaPolicy),
        "can_view_calendars": can(user, "view", BusinessCalendar),
        "history": core_selectors.audit_history(user=user, obj=contract),
    }
    return render(request, "contracts/contract_detail.html", context)


contract_pages = ObjectPages(
    model=Contract,
    form=forms.ContractForm,
    get=selectors.contract_get,
    delete_service=services.contract_delete,
    create_title=gettext_lazy("New contract"),
    list_url="contract_list",
    detail_url="contract_detail",
    template="contracts/contract_form.html",
    # A new contract for a customer comes from the list filtered to that customer.
    preset=lambda customer: {"customer": customer},
    preset_cancel_url=lambda customer: (
        reverse("contract_list") + "?" + urlencode({"customer": customer.pk})
    ),
)


# SLA policies --------------------------------------------------------------------------------


@ui_view
def sla_policy_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", SlaPolicy)
    form = SearchForm(request.GET)
    form.is_valid()
    return list_page(
        request,
        model=SlaPolicy,
        queryset=selectors.sla_policy_list(user=request.user, q=form.cleaned_data.get("q")),
        order=("name", "id"),
        filter_form=form,
        rows_template="contracts/sla_policy_rows.html",
        title=_("SLA policies"),
        add_url=reverse("sla_policy_create"),
    )


@ui_view
def sla_policy_detail(request: HttpRequest, pk: int) -> HttpResponse:
    policy = selectors.sla_policy_get(user=request.user, pk=pk)
    require(request.user, "view", policy)
    context = {
        "policy": policy,
        "actions": allowed_actions(request.user, policy),
        "history": core_selectors.audit_history(user=request.user, obj=policy),
    }
    return render(request, "contracts/sla_policy_detail.html", context)


sla_policy_pages = ObjectPages(
    model=SlaPolicy,
    form=forms.SlaPolicyForm,
    get=selectors.sla_policy_get,
    delete_service=services.sla_policy_delete,
    create_title=gettext_lazy("New SLA policy"),
    list_url="sla_policy_list",
    detail_url="sla_policy_detail",
    template="contracts/sla_policy_form.html",
)


# Business calendars --------------------------------------------------------------------------


def _warn_missing_years(request: HttpRequest) -> None:
    """From 1 November, tells those who can import them which calendars lack next year's days."""
    today = timezone.localdate()
    missing = selectors.calendars_missing_next_year(user=request.user, today=today)
    if missing:
        messages.warning(
            request,
            _(
                "No holiday data for %(year)s yet in %(calendars)s: due times in that year will "
                "be provisional. Import the year on the calendar's page."
            )
            % {
                "year": today.year + 1,
                "calendars": ", ".join(f"“{calendar}”" for calendar in missing),
            },
        )


@ui_view
def calendar_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", BusinessCalendar)
    form = SearchForm(request.GET)
    form.is_valid()
    # Only on a whole page: the rows an htmx search swaps in have no place for a message.
    partial = request.htmx and not request.htmx.history_restore_request
    if not partial and can(request.user, "change", BusinessCalendar):
        _warn_missing_years(request)
    return list_page(
        request,
        model=BusinessCalendar,
        queryset=selectors.calendar_list(user=request.user, q=form.cleaned_data.get("q")),
        order=("name", "id"),
        filter_form=form,
        rows_template="contracts/calendar_rows.html",
        title=_("Business calendars"),
        add_url=reverse("calendar_create"),
    )


def _shown_year(request: HttpRequest) -> int:
    """The year of the overrides shown: ?year=, else the current one."""
    year = request.GET.get("year", "")
    if year.isdigit() and 1900 <= int(year) <= 2100:
        return int(year)
    return timezone.localdate().year


def _calendar_page(
    request: HttpRequest, calendar: BusinessCalendar, *, status: int = 200, **bound: Any
) -> HttpResponse:
    """The calendar editor; `bound` holds a rejected form to show again with its errors."""
    user = request.user
    year = _shown_year(request)
    today = timezone.localdate()
    this_year = today.year
    data_years = list(calendar.years.all())
    day_years = {
        day.year for day in selectors.calendar_days(calendar=calendar).dates("date", "year")
    }
    due_form = forms.DueForm(request.GET if "start" in request.GET else None, calendar=calendar)
    due = None
    if due_form.is_bound and due_form.is_valid():
        try:
            due = selectors.calendar_engine(calendar).add_minutes(
                due_form.cleaned_data["start"], due_form.cleaned_data["minutes"]
            )
        except CalendarError:
            due_form.add_error(None, _("This calendar has no working time after that start."))
    missing = selectors.calendars_missing_next_year(user=user, today=today)
    context = {
        "calendar": calendar,
        "actions": allowed_actions(user, calendar),
        "year": year,
        "years": sorted(
            {this_year, this_year + 1, year} | day_years | {y.year for y in data_years}
        ),
        "year_has_data": any(y.year == year for y in data_years),
        "data_years": data_years,
        "days": selectors.calendar_days(calendar=calendar, year=year),
        "missing_next_year": this_year + 1 if calendar in missing else None,
        "chinese_form": bound.get("chinese_form")
        or forms.ChineseImportForm(user=user, instance=calendar, prefix="cn"),
        "ical_form": bound.get("ical_form")
        or forms.IcalImportForm(user=user, instance=calendar, prefix="ical"),
        "day_form": bound.get("day_form")
        or forms.CalendarDayForm(user=user, instance=calendar, prefix="day"),
        "due_form": due_form,
        "due": due,
        "history": core_selectors.audit_history(user=user, obj=calendar),
    }
    return render(request, "contracts/calendar_detail.html", context, status=status)


def _back_to_days(calendar: BusinessCalendar, year: int) -> HttpResponse:
    url = reverse("calendar_detail", args=[calendar.pk])
    return redirect(f"{url}?{urlencode({'year': year})}#days")


@ui_view
def calendar_detail(request: HttpRequest, pk: int) -> HttpResponse:
    calendar = selectors.calendar_get(user=request.user, pk=pk)
    require(request.user, "view", calendar)
    return _calendar_page(request, calendar)


calendar_pages = ObjectPages(
    model=BusinessCalendar,
    form=forms.CalendarForm,
    get=selectors.calendar_get,
    delete_service=services.calendar_delete,
    create_title=gettext_lazy("New business calendar"),
    list_url="calendar_list",
    detail_url="calendar_detail",
    template="contracts/calendar_form.html",
)


@ui_view
@require_POST
def calendar_import_chinese(request: HttpRequest, pk: int) -> HttpResponse:
    calendar = selectors.calendar_get(user=request.user, pk=pk)
    require(request.user, "change", calendar)
    form = forms.ChineseImportForm(request.POST, user=request.user, instance=calendar, prefix="cn")
    summary = form_save(request, form)
    if summary is None:
        return _calendar_page(request, calendar, chinese_form=form, status=400)
    for year, counts in summary.items():
        messages.success(
            request,
            _("%(year)s imported: %(holidays)s holidays and %(workdays)s make-up workdays.")
            % {"year": year, **counts},
        )
    return _back_to_days(calendar, max(summary))


@ui_view
@require_POST
def calendar_import_ical(request: HttpRequest, pk: int) -> HttpResponse:
    calendar = selectors.calendar_get(user=request.user, pk=pk)
    require(request.user, "change", calendar)
    form = forms.IcalImportForm(
        request.POST, request.FILES, user=request.user, instance=calendar, prefix="ical"
    )
    count = form_save(request, form)
    if count is None:
        return _calendar_page(request, calendar, ical_form=form, status=400)
    messages.success(
        request,
        ngettext(
            "%(count)d day imported from the iCal file.",
            "%(count)d days imported from the iCal file.",
            count,
        )
        % {"count": count},
    )
    return _back_to_days(calendar, _shown_year(request))


@ui_view
@require_POST
def calendar_day_set(request: HttpRequest, pk: int) -> HttpResponse:
    calendar = selectors.calendar_get(user=request.user, pk=pk)
    require(request.user, "change", calendar)
    form = forms.CalendarDayForm(request.POST, user=request.user, instance=calendar, prefix="day")
    day = form_save(request, form)
    if day is None:
        return _calendar_page(request, calendar, day_form=form, status=400)
    messages.success(
        request,
        _("%(date)s saved: %(kind)s.") % {"date": day.date, "kind": day.get_kind_display()},
    )
    return _back_to_days(calendar, day.date.year)


@ui_view
@require_POST
def calendar_day_delete(request: HttpRequest, pk: int, day_pk: int) -> HttpResponse:
    calendar = selectors.calendar_get(user=request.user, pk=pk)
    require(request.user, "change", calendar)
    day = get_object_or_404(selectors.calendar_days(calendar=calendar), pk=day_pk)
    services.calendar_day_delete(actor=request.user, day=day)
    messages.success(request, _("%(date)s follows the weekly hours again.") % {"date": day.date})
    return _back_to_days(calendar, day.date.year)
