"""The web UI. Views are thin: reads through selectors (which 404 outside the user's scope),
a `permissions.require` check on every page (403 inside the scope), writes through forms that
call the services."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from onestop.core import forms, selectors, services
from onestop.core.errors import ConflictError
from onestop.core.models import ApiToken, AuditEvent, Contact, Customer, Role, Site, Team, User
from onestop.core.permissions import allowed_actions, can, require

# Wrong OTP codes allowed per sign-in before the half-open session is closed.
OTP_ATTEMPTS = 5
DETAIL_LIST_LIMIT = 50
PAGE_SIZE = 50


# Keyset ("seek") pagination: the cursor names the last row shown by its ordering values and
# the next page starts after it, so pages stay stable while rows are added and nothing is counted.


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    next_cursor: str
    is_first: bool


def _cursor_encode(values: list[Any]) -> str:
    # A time travels as ISO text; the database reads it back as a time when comparing.
    text = json.dumps(values, default=lambda value: value.isoformat())
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _cursor_decode(cursor: str, width: int) -> list[Any] | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(values, list) or len(values) != width:
        return None
    return values


def _rows_after(order: tuple[str, ...], values: list[Any]) -> Q:
    """Rows that sort after `values`: (a > x) or (a = x and b > y) or ..."""
    condition = Q()
    equal = Q()
    for field, value in zip(order, values, strict=True):
        name = field.lstrip("-")
        lookup = "lt" if field.startswith("-") else "gt"
        condition |= equal & Q(**{f"{name}__{lookup}": value})
        equal &= Q(**{name: value})
    return condition


def keyset_page(
    queryset: QuerySet, *, order: tuple[str, ...], cursor: str | None, size: int = PAGE_SIZE
) -> Page:
    """One page of `queryset` sorted by `order` (direct fields; the last one unique, e.g. id)."""
    values = _cursor_decode(cursor, len(order)) if cursor else None
    if values is not None:
        queryset = queryset.filter(_rows_after(order, values))
    rows = list(queryset.order_by(*order)[: size + 1])
    next_cursor = ""
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        next_cursor = _cursor_encode([getattr(last, field.lstrip("-")) for field in order])
    return Page(rows=rows, next_cursor=next_cursor, is_first=values is None)


# Plumbing -------------------------------------------------------------------------------------


def ui_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in users only; times on the page are shown in the user's own time zone."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with timezone.override(request.user.time_zone or settings.TIME_ZONE):
            return view(request, *args, **kwargs)

    return login_required(wrapper)


def post_data(request: HttpRequest) -> Any:
    return request.POST if request.method == "POST" else None


def form_save(request: HttpRequest, form: forms.ServiceForm) -> Any:
    """Validates and saves the form; a conflict with stored data becomes an error message."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        return form.save()
    except ConflictError as exc:
        messages.error(request, exc.message)
        return None


def safe_next_url(request: HttpRequest, default: str) -> str:
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return default


def list_page(
    request: HttpRequest,
    *,
    model: type[Model],
    queryset: Any,
    order: tuple[str, ...],
    filter_form: Any,
    rows_template: str,
    title: str,
    add_url: str = "",
    annotate_rows: Callable[[list[Any]], None] | None = None,
    actions: Sequence[tuple[str, str]] = (),
) -> HttpResponse:
    """A list with filters and keyset pages; an htmx request gets only the rows back.
    `annotate_rows` sets extra attributes on the page's rows in a fixed number of queries;
    `actions` are further (label, url) buttons next to "New", already checked by the caller."""
    page = keyset_page(queryset, order=order, cursor=request.GET.get("cursor"))
    if annotate_rows is not None:
        annotate_rows(page.rows)
    more_filters = [field for field in filter_form if field.name != "q"]
    context = {
        "title": title,
        "page": page,
        "search_field": filter_form["q"] if "q" in filter_form.fields else None,
        "more_filters": more_filters,
        "more_filters_active": any(filter_form.cleaned_data.get(f.name) for f in more_filters),
        "rows_template": rows_template,
        "add_url": add_url if can(request.user, "add", model) else "",
        "actions": actions,
        "list_url": request.path,
    }
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(request, rows_template if partial else "core/list.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def form_page(
    request: HttpRequest, form: Any, *, title: str, cancel_url: str, **extra: Any
) -> HttpResponse:
    status = 400 if form.is_bound and form.errors else 200
    context = {"form": form, "title": title, "cancel_url": cancel_url, **extra}
    return render(request, "core/form.html", context, status=status)


def delete_page(
    request: HttpRequest,
    obj: Model,
    *,
    delete: Callable[[], None],
    done_url: str,
    cancel_url: str,
) -> HttpResponse:
    """Asks first (GET); deletes on POST. A refusal (dependent records) comes back as a message."""
    if request.method == "POST":
        try:
            delete()
        except ConflictError as exc:
            messages.error(request, exc.message)
            return redirect(cancel_url)
        what = capfirst(obj._meta.verbose_name)
        messages.success(request, _("%(what)s “%(obj)s” deleted.") % {"what": what, "obj": obj})
        return redirect(done_url)
    context = {"object": obj, "what": obj._meta.verbose_name, "cancel_url": cancel_url}
    return render(request, "core/confirm_delete.html", context)


def say_created(request: HttpRequest, obj: Model) -> None:
    what = capfirst(obj._meta.verbose_name)
    messages.success(request, _("%(what)s “%(obj)s” created.") % {"what": what, "obj": obj})


def say_saved(request: HttpRequest, obj: Model) -> None:
    messages.success(request, _("Changes to “%(obj)s” saved.") % {"obj": obj})


# Home ----------------------------------------------------------------------------------------


@ui_view
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_customer_user:
        customer = selectors.customer_get(user=user, pk=user.customer_id)
        context = {
            "customer": customer,
            "sites": selectors.site_list(user=user, customer_id=customer.pk)[:DETAIL_LIST_LIMIT],
            "contacts": selectors.contact_list(user=user, customer_id=customer.pk)[:10],
        }
        return render(request, "core/home_customer.html", context)
    context = {
        "counts": [
            (_("Customers"), selectors.customer_list(user=user).count(), reverse("customer_list")),
            (_("Sites"), selectors.site_list(user=user).count(), reverse("site_list")),
            (_("Contacts"), selectors.contact_list(user=user).count(), reverse("contact_list")),
        ],
        "customers": selectors.customer_list(user=user, status=Customer.Status.ACTIVE)[:8],
        "events": selectors.audit_event_list(user=user)[:10],
        "can_add_customer": can(user, "add", Customer),
    }
    return render(request, "core/home.html", context)


# Customers -----------------------------------------------------------------------------------


@ui_view
def customer_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", Customer)
    form = forms.CustomerFilterForm(request.GET)
    form.is_valid()
    filters = form.cleaned_data
    return list_page(
        request,
        model=Customer,
        queryset=selectors.customer_list(
            user=request.user,
            q=filters.get("q"),
            status=filters.get("status"),
            industry=filters.get("industry"),
            service_line=filters.get("service_line"),
        ),
        order=("name", "id"),
        filter_form=form,
        rows_template="core/customer_rows.html",
        title=_("Customers"),
        add_url=reverse("customer_create"),
    )


@ui_view
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    customer = selectors.customer_get(user=user, pk=pk)
    require(user, "view", customer)
    context = {
        "customer": customer,
        "actions": allowed_actions(user, customer),
        "subsidiaries": selectors.customer_list(user=user, parent_id=customer.pk),
        "sites": selectors.site_list(user=user, customer_id=customer.pk)[:DETAIL_LIST_LIMIT],
        "contacts": selectors.contact_list(user=user, customer_id=customer.pk)[:DETAIL_LIST_LIMIT],
        "teams": selectors.customer_teams(user=user, customer=customer),
        "staff": selectors.customer_staff(user=user, customer=customer),
        "portal_users": selectors.user_list(user=user, customer_id=customer.pk, role=Role.CUSTOMER)[
            :DETAIL_LIST_LIMIT
        ],
        "history": selectors.audit_history(user=user, obj=customer),
        "can_add_site": can(user, "add", Site),
        "can_add_contact": can(user, "add", Contact),
        "limit": DETAIL_LIST_LIMIT,
    }
    return render(request, "core/customer_detail.html", context)


@ui_view
def customer_create(request: HttpRequest) -> HttpResponse:
    require(request.user, "add", Customer)
    form = forms.CustomerForm(post_data(request), user=request.user)
    if customer := form_save(request, form):
        say_created(request, customer)
        return redirect("customer_detail", pk=customer.pk)
    return form_page(request, form, title=_("New customer"), cancel_url=reverse("customer_list"))


@ui_view
def customer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    customer = selectors.customer_get(user=request.user, pk=pk)
    require(request.user, "change", customer)
    form = forms.CustomerForm(post_data(request), user=request.user, instance=customer)
    if form_save(request, form):
        say_saved(request, customer)
        return redirect("customer_detail", pk=customer.pk)
    return form_page(
        request,
        form,
        title=_("Edit %(obj)s") % {"obj": customer},
        cancel_url=reverse("customer_detail", args=[customer.pk]),
    )


@ui_view
def customer_delete(request: HttpRequest, pk: int) -> HttpResponse:
    customer = selectors.customer_get(user=request.user, pk=pk)
    require(request.user, "delete", customer)
    return delete_page(
        request,
        customer,
        delete=lambda: services.customer_delete(actor=request.user, customer=customer),
        done_url=reverse("customer_list"),
        cancel_url=reverse("customer_detail", args=[customer.pk]),
    )


# Sites ---------------------------------------------------------------------------------------


@ui_view
def site_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", Site)
    form = forms.SiteFilterForm(request.GET, user=request.user)
    form.is_valid()
    customer = form.cleaned_data.get("customer")
    return list_page(
        request,
        model=Site,
        queryset=selectors.site_list(
            user=request.user,
            q=form.cleaned_data.get("q"),
            customer_id=customer.pk if customer else None,
        ),
        order=("name", "id"),
        filter_form=form,
        rows_template="core/site_rows.html",
        title=_("Sites"),
        add_url=reverse("site_create"),
    )


@ui_view
def site_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    site = selectors.site_get(user=user, pk=pk)
    require(user, "view", site)
    context = {
        "site": site,
        "actions": allowed_actions(user, site),
        "contacts": selectors.contact_list(user=user, site_id=site.pk)[:DETAIL_LIST_LIMIT],
        "history": selectors.audit_history(user=user, obj=site),
    }
    return render(request, "core/site_detail.html", context)


def preset_customer(request: HttpRequest) -> Customer | None:
    """The customer named by ?customer= on "add" links from a customer's page, if visible."""
    pk = request.GET.get("customer")
    return selectors.customer_get(user=request.user, pk=pk) if pk else None


@ui_view
def site_create(request: HttpRequest) -> HttpResponse:
    require(request.user, "add", Site)
    customer = preset_customer(request)
    form = forms.SiteForm(post_data(request), user=request.user, initial={"customer": customer})
    if site := form_save(request, form):
        say_created(request, site)
        return redirect("site_detail", pk=site.pk)
    cancel = reverse("customer_detail", args=[customer.pk]) if customer else reverse("site_list")
    return form_page(request, form, title=_("New site"), cancel_url=cancel)


@ui_view
def site_edit(request: HttpRequest, pk: int) -> HttpResponse:
    site = selectors.site_get(user=request.user, pk=pk)
    require(request.user, "change", site)
    form = forms.SiteForm(post_data(request), user=request.user, instance=site)
    if form_save(request, form):
        say_saved(request, site)
        return redirect("site_detail", pk=site.pk)
    return form_page(
        request,
        form,
        title=_("Edit %(obj)s") % {"obj": site},
        cancel_url=reverse("site_detail", args=[site.pk]),
    )


@ui_view
def site_delete(request: HttpRequest, pk: int) -> HttpResponse:
    site = selectors.site_get(user=request.user, pk=pk)
    require(request.user, "delete", site)
    return delete_page(
        request,
        site,
        delete=lambda: services.site_delete(actor=request.user, site=site),
        done_url=reverse("customer_detail", args=[site.customer_id]),
        cancel_url=reverse("site_detail", args=[site.pk]),
    )


# Contacts ------------------------------------------------------------------------------------


@ui_view
def contact_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", Contact)
    form = forms.ContactFilterForm(request.GET, user=request.user)
    form.is_valid()
    customer = form.cleaned_data.get("customer")
    return list_page(
        request,
        model=Contact,
        queryset=selectors.contact_list(
            user=request.user,
            q=form.cleaned_data.get("q"),
            customer_id=customer.pk if customer else None,
        ),
        order=("name", "id"),
        filter_form=form,
        rows_template="core/contact_rows.html",
        title=_("Contacts"),
        add_url=reverse("contact_create"),
    )


@ui_view
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contact = selectors.contact_get(user=request.user, pk=pk)
    require(request.user, "view", contact)
    context = {
        "contact": contact,
        "actions": allowed_actions(request.user, contact),
        "history": selectors.audit_history(user=request.user, obj=contact),
    }
    return render(request, "core/contact_detail.html", context)


@ui_view
def contact_create(request: HttpRequest) -> HttpResponse:
    require(request.user, "add", Contact)
    customer = preset_customer(request)
    form = forms.ContactForm(
        post_data(request), user=request.user, customer=customer, initial={"customer": customer}
    )
    if contact := form_save(request, form):
        say_created(request, contact)
        return redirect("contact_detail", pk=contact.pk)
    cancel = reverse("customer_detail", args=[customer.pk]) if customer else reverse("contact_list")
    return form_page(request, form, title=_("New contact"), cancel_url=cancel)


@ui_view
def contact_edit(request: HttpRequest, pk: int) -> HttpResponse:
    contact = selectors.contact_get(user=request.user, pk=pk)
    require(request.user, "change", contact)
    form = forms.ContactForm(post_data(request), user=request.user, instance=contact)
    if form_save(request, form):
        say_saved(request, contact)
        return redirect("contact_detail", pk=contact.pk)
    return form_page(
        request,
        form,
        title=_("Edit %(obj)s") % {"obj": contact},
        cancel_url=reverse("contact_detail", args=[contact.pk]),
    )


@ui_view
def contact_delete(request: HttpRequest, pk: int) -> HttpResponse:
    contact = selectors.contact_get(user=request.user, pk=pk)
    require(request.user, "delete", contact)
    return delete_page(
        request,
        contact,
        delete=lambda: services.contact_delete(actor=request.user, contact=contact),
        done_url=reverse("customer_detail", args=[contact.customer_id]),
        cancel_url=reverse("contact_detail", args=[contact.pk]),
    )


# Teams ---------------------------------------------------------------------------------------


@ui_view
def team_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", Team)
    form = forms.SearchForm(request.GET)
    form.is_valid()
    return list_page(
        request,
        model=Team,
        queryset=selectors.team_list(user=request.user, q=form.cleaned_data.get("q")),
        order=("name", "id"),
        filter_form=form,
        rows_template="core/team_rows.html",
        title=_("Teams"),
        add_url=reverse("team_create"),
    )


@ui_view
def team_detail(request: HttpRequest, pk: int) -> HttpResponse:
    team = selectors.team_get(user=request.user, pk=pk)
    require(request.user, "view", team)
    visible = set(selectors.customer_choices(user=request.user).values_list("pk", flat=True))
    context = {
        "team": team,
        "actions": allowed_actions(request.user, team),
        # A team may also serve customers outside this user's scope; those stay unnamed.
        "customers": [c for c in team.customers.all() if c.pk in visible],
        "history": selectors.audit_history(user=request.user, obj=team),
    }
    return render(request, "core/team_detail.html", context)


@ui_view
def team_create(request: HttpRequest) -> HttpResponse:
    require(request.user, "add", Team)
    form = forms.TeamForm(post_data(request), user=request.user)
    if team := form_save(request, form):
        say_created(request, team)
        return redirect("team_detail", pk=team.pk)
    return form_page(request, form, title=_("New team"), cancel_url=reverse("team_list"))


@ui_view
def team_edit(request: HttpRequest, pk: int) -> HttpResponse:
    team = selectors.team_get(user=request.user, pk=pk)
    require(request.user, "change", team)
    form = forms.TeamForm(post_data(request), user=request.user, instance=team)
    if form_save(request, form):
        say_saved(request, team)
        return redirect("team_detail", pk=team.pk)
    return form_page(
        request,
        form,
        title=_("Edit %(obj)s") % {"obj": team},
        cancel_url=reverse("team_detail", args=[team.pk]),
    )


@ui_view
def team_delete(request: HttpRequest, pk: int) -> HttpResponse:
    team = selectors.team_get(user=request.user, pk=pk)
    require(request.user, "delete", team)
    return delete_page(
        request,
        team,
        delete=lambda: services.team_delete(actor=request.user, team=team),
        done_url=reverse("team_list"),
        cancel_url=reverse("team_detail", args=[team.pk]),
    )


# Users ---------------------------------------------------------------------------------------


@ui_view
def user_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", User)
    form = forms.UserFilterForm(request.GET, user=request.user)
    form.is_valid()
    customer = form.cleaned_data.get("customer")
    return list_page(
        request,
        model=User,
        queryset=selectors.user_list(
            user=request.user,
            q=form.cleaned_data.get("q"),
            role=form.cleaned_data.get("role"),
            customer_id=customer.pk if customer else None,
        ),
        order=("username", "id"),
        filter_form=form,
        rows_template="core/user_rows.html",
        title=_("Users"),
        add_url=reverse("user_create"),
    )


@ui_view
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    person = selectors.user_get(user=request.user, pk=pk)
    require(request.user, "view", person)
    visible = set(selectors.customer_choices(user=request.user).values_list("pk", flat=True))
    context = {
        "person": person,
        "actions": allowed_actions(request.user, person),
        "customers": [c for c in person.customers.all() if c.pk in visible],
        "history": selectors.audit_history(user=request.user, obj=person),
    }
    return render(request, "core/user_detail.html", context)


@ui_view
@sensitive_post_parameters("password")
def user_create(request: HttpRequest) -> HttpResponse:
    require(request.user, "add", User)
    form = forms.UserForm(post_data(request), user=request.user)
    if person := form_save(request, form):
        say_created(request, person)
        return redirect("user_detail", pk=person.pk)
    return form_page(request, form, title=_("New user"), cancel_url=reverse("user_list"))


@ui_view
@sensitive_post_parameters("password")
def user_edit(request: HttpRequest, pk: int) -> HttpResponse:
    person = selectors.user_get(user=request.user, pk=pk)
    require(request.user, "change", person)
    form = forms.UserForm(post_data(request), user=request.user, instance=person)
    if form_save(request, form):
        say_saved(request, person)
        return redirect("user_detail", pk=person.pk)
    return form_page(
        request,
        form,
        title=_("Edit %(obj)s") % {"obj": person},
        cancel_url=reverse("user_detail", args=[person.pk]),
    )


@ui_view
def user_delete(request: HttpRequest, pk: int) -> HttpResponse:
    person = selectors.user_get(user=request.user, pk=pk)
    require(request.user, "delete", person)
    return delete_page(
        request,
        person,
        delete=lambda: services.user_delete(actor=request.user, user=person),
        done_url=reverse("user_list"),
        cancel_url=reverse("user_detail", args=[person.pk]),
    )


# Audit log -----------------------------------------------------------------------------------


@ui_view
def audit_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", AuditEvent)
    form = forms.AuditFilterForm(request.GET, user=request.user)
    form.is_valid()
    return list_page(
        request,
        model=AuditEvent,
        queryset=selectors.audit_event_list(user=request.user, **form.filters()),
        order=("-id",),
        filter_form=form,
        rows_template="core/audit_rows.html",
        title=_("Audit log"),
    )


@ui_view
def audit_detail(request: HttpRequest, pk: int) -> HttpResponse:
    event = selectors.audit_event_get(user=request.user, pk=pk)
    require(request.user, "view", event)
    return render(request, "core/audit_detail.html", {"event": event})


# Sign-in -------------------------------------------------------------------------------------


def _signed_in(request: HttpRequest) -> bool:
    user = request.user
    return user.is_authenticated and (not user.totp_enabled or request.session.get("otp_verified"))


@never_cache
@sensitive_post_parameters("password")
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = safe_next_url(request, reverse(settings.LOGIN_REDIRECT_URL))
    if _signed_in(request):
        return redirect(next_url)
    form = forms.LoginForm(request, data=post_data(request))
    if request.method == "POST":
        if form.is_valid():
            user = form.user
            login(request, user)
            if user.totp_enabled:
                request.session["otp_verified"] = False
                return redirect(f"{reverse('login_otp')}?{urlencode({'next': next_url})}")
            services.user_record_login(user=user, success=True)
            return redirect(next_url)
        attempted = selectors.user_for_login(username=request.POST.get("username", ""))
        if attempted is not None:
            services.user_record_login(user=attempted, success=False)
    return render(
        request,
        "core/login.html",
        {"form": form, "next": next_url},
        status=400 if form.errors else 200,
    )


@never_cache
def login_otp(request: HttpRequest) -> HttpResponse:
    """The second sign-in step for users with two-factor authentication on."""
    next_url = safe_next_url(request, reverse(settings.LOGIN_REDIRECT_URL))
    if not request.user.is_authenticated:
        return redirect("login")
    if _signed_in(request):
        return redirect(next_url)
    user = request.user
    form = forms.OtpForm(post_data(request), user=user)
    if request.method == "POST":
        if form.is_valid():
            request.session["otp_verified"] = True
            request.session.pop("otp_failures", None)
            services.user_record_login(user=user, success=True)
            return redirect(next_url)
        failures = request.session.get("otp_failures", 0) + 1
        request.session["otp_failures"] = failures
        if failures >= OTP_ATTEMPTS:
            services.user_record_login(user=user, success=False)
            logout(request)
            messages.error(request, _("Too many wrong codes. Sign in again."))
            return redirect("login")
    return render(
        request,
        "core/login_otp.html",
        {"form": form, "next": next_url},
        status=400 if form.errors else 200,
    )


@never_cache
def logout_view(request: HttpRequest) -> HttpResponse:
    """Signs out on POST; a GET (e.g. a bookmarked link) asks first."""
    if request.method != "POST":
        if not request.user.is_authenticated:
            return redirect("login")
        return render(request, "core/logout.html")
    if request.user.is_authenticated:
        services.user_record_logout(user=request.user)
    logout(request)
    messages.success(request, _("You have signed out."))
    return redirect(settings.LOGOUT_REDIRECT_URL)


# Account -------------------------------------------------------------------------------------


def _account_page(
    request: HttpRequest,
    *,
    profile_form: forms.ProfileForm | None = None,
    token_form: forms.ApiTokenForm | None = None,
    new_token: str = "",
    status: int = 200,
) -> HttpResponse:
    user = request.user
    context = {
        "profile_form": profile_form or forms.ProfileForm(user=user),
        "token_form": token_form or forms.ApiTokenForm(user=user),
        "tokens": selectors.api_token_list(user=user),
        "new_token": new_token,
        "now": timezone.now(),
    }
    return render(request, "core/account.html", context, status=status)


@ui_view
def account(request: HttpRequest) -> HttpResponse:
    form = forms.ProfileForm(post_data(request), user=request.user)
    if form_save(request, form):
        messages.success(request, _("Your profile is saved."))
        response = redirect("account")
        # The saved language takes over from an earlier choice in the language switch.
        language = request.user.language
        if language:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        else:
            response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
        return response
    return _account_page(request, profile_form=form, status=400 if form.errors else 200)


@ui_view
@require_POST
def api_token_create(request: HttpRequest) -> HttpResponse:
    require(request.user, "add", ApiToken)
    form = forms.ApiTokenForm(request.POST, user=request.user)
    result = form_save(request, form)
    if result is None:
        return _account_page(request, token_form=form, status=400)
    _token, raw = result
    # Rendered, not redirected: the raw token exists only in this response.
    return _account_page(request, new_token=raw)


@ui_view
@require_POST
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = selectors.api_token_get(user=request.user, pk=pk)
    require(request.user, "delete", token)
    services.api_token_revoke(actor=request.user, token=token)
    messages.success(request, _("Token “%(token)s” revoked.") % {"token": token})
    return redirect("account")


@ui_view
@sensitive_post_parameters("old_password", "new_password", "new_password_again")
def password_change(request: HttpRequest) -> HttpResponse:
    form = forms.PasswordChangeForm(post_data(request), user=request.user)
    if user := form_save(request, form):
        update_session_auth_hash(request, user)
        messages.success(request, _("Your password is changed."))
        return redirect("account")
    return form_page(
        request,
        form,
        title=_("Change password"),
        cancel_url=reverse("account"),
        submit_label=_("Change password"),
    )


@ui_view
@sensitive_post_parameters("password")
def two_factor(request: HttpRequest) -> HttpResponse:
    """Two-factor setup for staff: begin (new secret), confirm with a code, or turn off."""
    user = request.user
    if not user.is_provider_staff:
        raise PermissionDenied(_("Two-factor authentication is for the provider's staff."))
    action = request.POST.get("action") if request.method == "POST" else None
    confirm_form = forms.TotpConfirmForm(request.POST if action == "confirm" else None, user=user)
    disable_form = forms.TotpDisableForm(request.POST if action == "disable" else None, user=user)
    if action == "begin" and not user.totp_enabled:
        services.user_totp_begin(user=user)
        return redirect("two_factor")
    if action == "confirm" and form_save(request, confirm_form):
        # The code just entered proves this session holds the second factor.
        request.session["otp_verified"] = True
        messages.success(request, _("Two-factor authentication is on."))
        return redirect("account")
    if action == "disable" and form_save(request, disable_form):
        messages.success(request, _("Two-factor authentication is off."))
        return redirect("account")
    context = {
        "pending": selectors.user_totp_pending(user=user),
        "confirm_form": confirm_form,
        "disable_form": disable_form,
    }
    errors = confirm_form.errors or disable_form.errors
    return render(request, "core/two_factor.html", context, status=400 if errors else 200)
