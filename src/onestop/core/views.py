"""The web UI. Views are thin: reads through selectors (which 404 outside the user's scope),
a `permissions.require` check on every page (403 inside the scope), writes through forms that
call the services."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, wraps
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
from django.utils.translation import gettext_lazy
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
    request: HttpRequest,
    form: Any,
    *,
    title: str,
    cancel_url: str,
    template: str = "core/form.html",
    **extra: Any,
) -> HttpResponse:
    status = 400 if form.is_bound and form.errors else 200
    context = {"form": form, "title": title, "cancel_url": cancel_url, **extra}
    return render(request, template, context, status=status)


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


def preset_customer(request: HttpRequest) -> Customer | None:
    """The customer named by ?customer= on "add" links from a customer's page, if visible."""
    pk = request.GET.get("customer")
    return selectors.customer_get(user=request.user, pk=pk) if pk else None


def customer_initial(customer: Customer | None) -> dict[str, Any]:
    """The create form's arguments for a preset customer: its customer field starts with it."""
    return {"initial": {"customer": customer}}


@dataclass(frozen=True)
class ObjectPages:
    """The create, edit and delete pages of one model, declared rather than written out (as
    NetBox's ObjectEditView and ObjectDeleteView): `.create`, `.edit` and `.delete` are views
    for urls.py.

    Each page checks the role with `require` (403). Edit and delete read the object through
    `get(user=, pk=)`, a selector that 404s outside the user's scope; writes go through `form`
    and `delete_service(actor=, <its object keyword>=obj)`. `list_url`, `detail_url` and
    `edit_url` are URL names: a save goes to the object's page, or to the list for objects
    without one; the delete page cancels back to the object's page, else to its edit page,
    else to the list.
    """

    model: type[Model]
    form: type[forms.ServiceForm]
    get: Callable[..., Any]
    delete_service: Callable[..., Any]
    create_title: str  # lazily translated: the declarations are read at import
    list_url: str
    detail_url: str = ""
    edit_url: str = ""
    template: str = "core/form.html"
    # POST fields kept out of error reports on the create and edit pages.
    sensitive: tuple[str, ...] = ()
    # "Add" links may name a customer (?customer=, see `preset_customer`). `preset` turns it,
    # or None, into the create form's keyword arguments (e.g. `customer_initial`); cancelling
    # then goes to `preset_cancel_url(customer)` rather than the list. Without `preset`,
    # ?customer= is not read at all.
    preset: Callable[[Customer | None], dict[str, Any]] | None = None
    preset_cancel_url: Callable[[Customer], str] | None = None
    # Where a deletion ends, if not on the list: `deleted_url(obj)`.
    deleted_url: Callable[[Any], str] | None = None

    def _home(self, obj: Any) -> str:
        if self.detail_url:
            return reverse(self.detail_url, args=[obj.pk])
        return reverse(self.list_url)

    def _form_view(self, view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        if self.sensitive:
            view = sensitive_post_parameters(*self.sensitive)(view)
        return ui_view(view)

    @cached_property
    def create(self) -> Callable[..., HttpResponse]:
        def create(request: HttpRequest) -> HttpResponse:
            require(request.user, "add", self.model)
            kwargs: dict[str, Any] = {}
            cancel_url = reverse(self.list_url)
            if self.preset is not None:
                customer = preset_customer(request)
                kwargs = self.preset(customer)
                if customer and self.preset_cancel_url:
                    cancel_url = self.preset_cancel_url(customer)
            form = self.form(post_data(request), user=request.user, **kwargs)
            if obj := form_save(request, form):
                say_created(request, obj)
                return redirect(self._home(obj))
            return form_page(
                request,
                form,
                title=str(self.create_title),
                cancel_url=cancel_url,
                template=self.template,
            )

        return self._form_view(create)

    @cached_property
    def edit(self) -> Callable[..., HttpResponse]:
        def edit(request: HttpRequest, pk: int) -> HttpResponse:
            obj = self.get(user=request.user, pk=pk)
            require(request.user, "change", obj)
            form = self.form(post_data(request), user=request.user, instance=obj)
            if form_save(request, form):
                say_saved(request, obj)
                return redirect(self._home(obj))
            return form_page(
                request,
                form,
                title=_("Edit %(obj)s") % {"obj": obj},
                cancel_url=self._home(obj),
                template=self.template,
            )

        return self._form_view(edit)

    @cached_property
    def delete(self) -> Callable[..., HttpResponse]:
        keyword = services.object_keyword(self.delete_service)

        def delete(request: HttpRequest, pk: int) -> HttpResponse:
            obj = self.get(user=request.user, pk=pk)
            require(request.user, "delete", obj)
            if self.detail_url:
                cancel_url = reverse(self.detail_url, args=[obj.pk])
            elif self.edit_url:
                cancel_url = reverse(self.edit_url, args=[obj.pk])
            else:
                cancel_url = reverse(self.list_url)
            return delete_page(
                request,
                obj,
                delete=lambda: self.delete_service(actor=request.user, **{keyword: obj}),
                done_url=self.deleted_url(obj) if self.deleted_url else reverse(self.list_url),
                cancel_url=cancel_url,
            )

        return ui_view(delete)


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


customer_pages = ObjectPages(
    model=Customer,
    form=forms.CustomerForm,
    get=selectors.customer_get,
    delete_service=services.customer_delete,
    create_title=gettext_lazy("New customer"),
    list_url="customer_list",
    detail_url="customer_detail",
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


site_pages = ObjectPages(
    model=Site,
    form=forms.SiteForm,
    get=selectors.site_get,
    delete_service=services.site_delete,
    create_title=gettext_lazy("New site"),
    list_url="site_list",
    detail_url="site_detail",
    # Sites are added on, and listed on, their customer's page.
    preset=customer_initial,
    preset_cancel_url=lambda customer: reverse("customer_detail", args=[customer.pk]),
    deleted_url=lambda site: reverse("customer_detail", args=[site.customer_id]),
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


contact_pages = ObjectPages(
    model=Contact,
    form=forms.ContactForm,
    get=selectors.contact_get,
    delete_service=services.contact_delete,
    create_title=gettext_lazy("New contact"),
    list_url="contact_list",
    detail_url="contact_detail",
    # Contacts are added on, and listed on, their customer's page; the form offers only that
    # customer's sites.
    preset=lambda customer: {"customer": customer, "initial": {"customer": customer}},
    preset_cancel_url=lambda customer: reverse("customer_detail", args=[customer.pk]),
    deleted_url=lambda contact: reverse("customer_detail", args=[contact.customer_id]),
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


team_pages = ObjectPages(
    model=Team,
    form=forms.TeamForm,
    get=selectors.team_get,
    delete_service=services.team_delete,
    create_title=gettext_lazy("New team"),
    list_url="team_list",
    detail_url="team_detail",
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


user_pages = ObjectPages(
    model=User,
    form=forms.UserForm,
    get=selectors.user_get,
    delete_service=services.user_delete,
    create_title=gettext_lazy("New user"),
    list_url="user_list",
    detail_url="user_detail",
    sensitive=("password",),
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
