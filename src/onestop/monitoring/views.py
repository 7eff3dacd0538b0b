"""The device pages: the list with agent status, a device's page (details, agent, inventory,
checks and its history), devices entered by hand, and "add a device" with the exact enrol
command; the checks pages: a check with its state history, the problems list, check templates,
maintenance windows, SNMP credentials and SNMP discovery."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Model, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers
from django.utils.http import content_disposition_header
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from onestop.assets import selectors as asset_selectors
from onestop.assets import services as asset_services
from onestop.assets.models import Device, InventoryChange
from onestop.core import selectors as core_selectors
from onestop.core.errors import ConflictError
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
    say_created,
    say_saved,
    ui_view,
)
from onestop.metrics import selectors as metric_selectors
from onestop.monitoring import forms, selectors, services
from onestop.monitoring.api import enroll_command
from onestop.monitoring.models import (
    Check,
    CheckTemplate,
    DiscoveryJob,
    EnrollmentToken,
    MaintenanceWindow,
    SnmpCredential,
    SnmpTrap,
)

DETAIL_LIMIT = 50
SOFTWARE_LIMIT = 300
TRAP_LIMIT = 10
# The charts of a device page, and the ranges it offers (the default first).
CHART_METRICS = (
    ("cpu.percent", gettext_lazy("CPU used (%)")),
    ("mem.used_percent", gettext_lazy("Memory used (%)")),
    ("disk.used_percent", gettext_lazy("Disk used (%)")),
    ("net.rx_bps", gettext_lazy("Network received (bytes/s)")),
    ("net.tx_bps", gettext_lazy("Network sent (bytes/s)")),
)
CHART_RANGES = {"24h": 24, "1h": 1, "6h": 6, "7d": 24 * 7, "30d": 24 * 30}


def _charts(device: Device, range_key: str) -> list[dict[str, Any]]:
    """One plotly figure per metric the device has, over the chosen range in the viewer's
    zone; drag on a chart to zoom, double-click to zoom out."""
    end = timezone.now()
    start = end - dt.timedelta(hours=CHART_RANGES[range_key])
    zone = timezone.get_current_timezone()
    charts = []
    for name, title in CHART_METRICS:
        series = metric_selectors.series_query(source_id=device.pk, name=name, start=start, end=end)
        traces = [
            {
                "type": "scatter",
                "mode": "lines",
                "name": " ".join(s.labels.values()) or str(title),
                "x": [
                    dt.datetime.fromtimestamp(p.ts, tz=zone).strftime("%Y-%m-%d %H:%M:%S")
                    for p in s.points
                ],
                "y": [round(p.avg, 3) for p in s.points],
            }
            for s in series
            if s.points
        ]
        if not traces:
            continue
        charts.append(
            {
                "data_id": f"chart-{name.replace('.', '-')}",
                "title": str(title),
                "figure": {
                    "data": traces,
                    "layout": {
                        "height": 240,
                        "margin": {"l": 48, "r": 12, "t": 8, "b": 36},
                        "showlegend": len(traces) > 1,
                        "legend": {"orientation": "h"},
                        "xaxis": {"type": "date"},
                        "yaxis": {"rangemode": "tozero"},
                    },
                },
            }
        )
    return charts


@ui_view
def device_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", Device)
    can_import = can(request.user, "add", Device)
    form = forms.DeviceFilterForm(request.GET, user=request.user)
    form.is_valid()
    data = form.cleaned_data
    queryset = asset_selectors.device_list(
        user=request.user,
        q=data.get("q"),
        customer_id=data["customer"].pk if data.get("customer") else None,
        site_id=data["site"].pk if data.get("site") else None,
        kind=data.get("kind") or None,
    ).select_related("agent")
    return list_page(
        request,
        model=Device,
        queryset=queryset,
        order=("name", "id"),
        filter_form=form,
        rows_template="monitoring/device_rows.html",
        title=_("Devices"),
        add_url=reverse("device_add"),
        annotate_rows=_with_latest,
        actions=[(_("Import"), reverse("device_import"))] if can_import else [],
    )


LIST_METRICS = ("cpu.percent", "mem.used_percent")


def _with_latest(devices: list[Device]) -> None:
    """Sets `cpu` and `mem` (the last sample, or None) on each device of a list page."""
    latest = {
        (value.source_id, value.name): value.value
        for value in metric_selectors.latest_values(
            source_ids=[device.pk for device in devices], names=LIST_METRICS
        )
    }
    for device in devices:
        device.cpu = latest.get((device.pk, "cpu.percent"))
        device.mem = latest.get((device.pk, "mem.used_percent"))


@ui_view
def device_detail(request: HttpRequest, pk: int) -> HttpResponse:
    device = asset_selectors.device_get(user=request.user, pk=pk)
    require(request.user, "view", device)
    agent = selectors.agent_for(user=request.user, device=device)
    inventory = device.inventory or {}
    range_key = request.GET.get("range") if request.GET.get("range") in CHART_RANGES else "24h"
    context = {
        "charts": _charts(device, range_key),
        "chart_range": range_key,
        "chart_ranges": list(CHART_RANGES),
        "device": device,
        "agent": agent,
        "agent_actions": allowed_actions(request.user, agent) if agent else [],
        "actions": allowed_actions(request.user, device),
        "inventory": inventory,
        "software": (inventory.get("software") or [])[:SOFTWARE_LIMIT],
        "software_count": len(inventory.get("software") or []),
        "changes": list(
            asset_selectors.inventory_change_list(user=request.user, device=device)[:DETAIL_LIMIT]
        )
        if can(request.user, "view", InventoryChange)
        else [],
        **_device_checks(request, device),
        # The last SNMP traps the device sent (None: the user may not see traps).
        "traps": list(
            selectors.snmp_trap_list(user=request.user).filter(device=device)[:TRAP_LIMIT]
        )
        if can(request.user, "view", SnmpTrap)
        else None,
        "trap_limit": TRAP_LIMIT,
    }
    return render(request, "monitoring/device_detail.html", context)


device_pages = ObjectPages(
    model=Device,
    form=forms.DeviceForm,
    get=asset_selectors.device_get,
    delete_service=asset_services.device_delete,
    create_title=gettext_lazy("New device (by hand)"),
    list_url="device_list",
    detail_url="device_detail",
)


@ui_view
def device_add(request: HttpRequest) -> HttpResponse:
    """Add a device: pick the site, get the exact command to run on the machine."""
    require(request.user, "add", EnrollmentToken)
    form = forms.EnrollmentTokenForm(post_data(request), user=request.user)
    created = form_save(request, form)
    context = {
        "form": form,
        "tokens": list(selectors.enrollment_token_list(user=request.user)[:DETAIL_LIMIT]),
        "can_add_by_hand": can(request.user, "add", Device),
    }
    if created:
        token, raw = created
        context.update({"new_token": token, "command": enroll_command(raw)})
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "monitoring/device_add.html", context, status=status)


@require_POST
@ui_view
def device_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = selectors.enrollment_token_get(user=request.user, pk=pk)
    require(request.user, "change", token)
    services.enrollment_token_revoke(actor=request.user, token=token)
    messages.success(request, _("Token revoked: it enrols no more devices."))
    return redirect("device_add")


@require_POST
@ui_view
def device_agent_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    device = asset_selectors.device_get(user=request.user, pk=pk)
    agent = selectors.agent_for(user=request.user, device=device)
    if agent is None:
        return redirect("device_detail", pk=pk)
    require(request.user, "change", agent)
    services.agent_revoke(actor=request.user, agent=agent)
    messages.success(request, _("Agent revoked: what it sends is refused from now on."))
    return redirect("device_detail", pk=pk)


# Import from a file: upload → preview (a dry run) → confirm. Between the two steps the read
# rows wait in the session (bounded), so the file is not uploaded twice.
IMPORT_SESSION_KEY = "device_import"
IMPORT_SESSION_MAX_CHARS = 2_000_000
IMPORT_PREVIEW_ROWS = 100
IMPORT_PREVIEW_ERRORS = 200


def _import_page(
    request: HttpRequest,
    form: forms.DeviceImportForm,
    *,
    result: asset_services.DeviceImportResult | None = None,
    customer: Any = None,
    filename: str = "",
    token: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        "form": form,
        "result": result,
        "customer": customer,
        "filename": filename,
        "token": token,
        "preview_rows": result.rows[:IMPORT_PREVIEW_ROWS] if result else [],
        "preview_errors": result.errors[:IMPORT_PREVIEW_ERRORS] if result else [],
        "more_rows": max(0, len(result.rows) - IMPORT_PREVIEW_ROWS) if result else 0,
        "more_errors": max(0, len(result.errors) - IMPORT_PREVIEW_ERRORS) if result else 0,
        "error_rows": len({error.row for error in result.errors}) if result else 0,
        "columns": [(names[1], names[2]) for names in asset_services.IMPORT_COLUMNS.values()],
        "kinds": Device.Kind.choices,
    }
    return render(request, "monitoring/device_import.html", context, status=status)


@ui_view
def device_import(request: HttpRequest) -> HttpResponse:
    """Pick the customer and the file; the answer is the preview of what the import does."""
    require(request.user, "add", Device)
    form = forms.DeviceImportForm(
        post_data(request),
        request.FILES if request.method == "POST" else None,
        user=request.user,
        initial={"customer": preset_customer(request)},
    )
    previewed = form_save(request, form)
    if previewed is None:
        return _import_page(request, form, status=400 if form.is_bound else 200)
    table, result = previewed
    customer = form.cleaned_data["customer"]
    request.session.pop(IMPORT_SESSION_KEY, None)
    token = ""
    if not result.errors:
        held = table.to_json()
        if len(json.dumps(held)) > IMPORT_SESSION_MAX_CHARS:
            form.add_error("file", _("This file is too large to preview; import it in parts."))
            return _import_page(request, form, status=400)
        token = secrets.token_urlsafe(16)
        request.session[IMPORT_SESSION_KEY] = {
            "token": token,
            "customer": customer.pk,
            "table": held,
        }
    status = 400 if result.errors else 200
    return _import_page(
        request,
        form,
        result=result,
        customer=customer,
        filename=table.filename,
        token=token,
        status=status,
    )


@require_POST
@ui_view
def device_import_confirm(request: HttpRequest) -> HttpResponse:
    """Imports the rows of the preview the user confirmed, checking every row again."""
    require(request.user, "add", Device)
    held = request.session.get(IMPORT_SESSION_KEY) or {}
    token = request.POST.get("token", "")
    if not held or not secrets.compare_digest(str(held.get("token")), token):
        messages.error(request, _("That preview is no longer at hand; upload the file again."))
        return redirect("device_import")
    del request.session[IMPORT_SESSION_KEY]
    customer = core_selectors.customer_get(user=request.user, pk=held["customer"])
    table = asset_services.DeviceImportTable.from_json(held["table"])
    result = asset_services.devices_import(
        actor=request.user, customer=customer, table=table, dry_run=False
    )
    if result.errors:  # the customer's devices or sites changed since the preview
        form = forms.DeviceImportForm(user=request.user, initial={"customer": customer})
        return _import_page(
            request, form, result=result, customer=customer, filename=table.filename, status=400
        )
    messages.success(
        request,
        _(
            "Devices imported for %(customer)s: %(created)s created, %(updated)s updated,"
            " %(unchanged)s unchanged."
        )
        % {
            "customer": customer.name,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
        },
    )
    return redirect(f"{reverse('device_list')}?customer={customer.pk}")


@ui_view
def device_import_template(request: HttpRequest) -> HttpResponse:
    """The header row of a device file, in the language of the page."""
    require(request.user, "add", Device)
    chinese = (translation.get_language() or "").startswith("zh")
    response = HttpResponse(
        asset_services.device_import_template(chinese=chinese),
        content_type="text/csv; charset=utf-8",
    )
    filename = "设备导入模板.csv" if chinese else "devices-import-template.csv"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


# Checks, problems, templates, maintenance windows, SNMP credentials ---------------------------

CHECK_LIMIT = 100


def _in_maintenance(device: Device) -> dict[str, Any] | None:
    """The window covering the device now, with the end of its current occurrence."""
    now = timezone.now()
    window = selectors.maintenance_window_covering(device=device, at=now)
    if window is None:
        return None
    occurrence = window.occurrence_at(now)
    return {"window": window, "until": occurrence[1] if occurrence else None}


def _device_checks(request: HttpRequest, device: Device) -> dict[str, Any]:
    """The device page's checks section and maintenance state, in a fixed number of queries."""
    user = request.user
    if not can(user, "view", Check):
        return {"checks": None}
    checks = list(selectors.check_list(user=user, device=device)[:CHECK_LIMIT])
    return {
        "checks": checks,
        "check_limit": CHECK_LIMIT,
        # The checks are in scope already: the role decides the links.
        "check_actions": allowed_actions(user, Check),
        "maintenance": _in_maintenance(device),
        "can_add_window": can(user, "add", MaintenanceWindow),
        "can_view_windows": can(user, "view", MaintenanceWindow),
    }


def _history_page(request: HttpRequest, check: Check) -> Page:
    return keyset_page(
        selectors.check_history(check=check),
        order=("-at", "-id"),
        cursor=request.GET.get("cursor"),
    )


@ui_view
def device_check_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A check: what it watches, its state now and its state history (newest first)."""
    check = selectors.check_get(user=request.user, pk=pk)
    require(request.user, "view", check)
    overridden = [
        capfirst(Check._meta.get_field(name).verbose_name) for name in check.overridden_fields
    ]
    context = {
        "check": check,
        "device": check.device,
        "actions": allowed_actions(request.user, check),
        "page": _history_page(request, check),
        "overridden": overridden,
        "can_view_template": check.template_id is not None
        and can(request.user, "view", CheckTemplate),
    }
    return render(request, "monitoring/check_detail.html", context)


def _check_form_page(
    request: HttpRequest, form: forms.CheckForm, *, title: str, cancel_url: str
) -> HttpResponse:
    check = form.instance
    status = 400 if form.is_bound and form.errors else 200
    context = {
        "form": form,
        "title": title,
        "cancel_url": cancel_url,
        "device": form.device,
        "check": check,
        "overridden": [
            capfirst(Check._meta.get_field(name).verbose_name)
            for name in (check.overridden_fields if check else [])
        ],
    }
    return render(request, "monitoring/check_form.html", context, status=status)


@ui_view
def device_check_create(request: HttpRequest, pk: int) -> HttpResponse:
    device = asset_selectors.device_get(user=request.user, pk=pk)
    require(request.user, "view", device)
    require(request.user, "add", Check)
    form = forms.CheckForm(post_data(request), user=request.user, device=device)
    if check := form_save(request, form):
        say_created(request, check)
        return redirect(reverse("device_detail", args=[device.pk]) + "#checks")
    return _check_form_page(
        request,
        form,
        title=_("New check on %(device)s") % {"device": device},
        cancel_url=reverse("device_detail", args=[device.pk]) + "#checks",
    )


@ui_view
def device_check_edit(request: HttpRequest, pk: int) -> HttpResponse:
    check = selectors.check_get(user=request.user, pk=pk)
    require(request.user, "change", check)
    form = forms.CheckForm(
        post_data(request), user=request.user, device=check.device, instance=check
    )
    if form_save(request, form):
        say_saved(request, check)
        return redirect("device_check_detail", pk=check.pk)
    return _check_form_page(
        request,
        form,
        title=_("Edit %(obj)s") % {"obj": check},
        cancel_url=reverse("device_check_detail", args=[check.pk]),
    )


@require_POST
@ui_view
def device_check_follow_template(request: HttpRequest, pk: int) -> HttpResponse:
    """Every overridden field of a template's check follows the template again."""
    check = selectors.check_get(user=request.user, pk=pk)
    require(request.user, "change", check)
    try:
        services.check_override_clear(actor=request.user, check=check)
    except ConflictError as exc:
        messages.error(request, exc.message)
    except ValidationError as exc:  # the template's values no longer suit this device
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("“%(obj)s” follows its template again.") % {"obj": check})
    return redirect("device_check_detail", pk=check.pk)


@ui_view
def device_check_delete(request: HttpRequest, pk: int) -> HttpResponse:
    check = selectors.check_get(user=request.user, pk=pk)
    require(request.user, "delete", check)
    return delete_page(
        request,
        check,
        delete=lambda: services.check_delete(actor=request.user, check=check),
        done_url=reverse("device_detail", args=[check.device_id]) + "#checks",
        cancel_url=reverse("device_check_detail", args=[check.pk]),
    )


# Problems ---------------------------------------------------------------------------------------


@ui_view
def monitoring_problem_list(request: HttpRequest) -> HttpResponse:
    """Enabled checks that are not OK, worst first, then those failing longest."""
    require(request.user, "view", Check)
    form = forms.ProblemFilterForm(request.GET, user=request.user)
    form.is_valid()
    data = form.cleaned_data
    queryset = selectors.problems_list(user=request.user)
    if data.get("customer"):
        queryset = queryset.filter(device__customer=data["customer"])
    if data.get("state"):
        queryset = queryset.filter(state=data["state"])
    if data.get("q"):
        queryset = queryset.filter(
            Q(name__icontains=data["q"]) | Q(device__name__icontains=data["q"])
        )
    return list_page(
        request,
        model=Check,
        queryset=queryset,
        order=("severity_rank", "state_since", "id"),
        filter_form=form,
        rows_template="monitoring/problem_rows.html",
        title=_("Problems"),
    )


# Check templates -------------------------------------------------------------------------------


def _with_actions(
    user: Any, model: type[Model], also: Callable[[list[Any]], None] | None = None
) -> Callable[[list[Any]], None]:
    """Sets `actions` (what the role may do; the rows are in scope already) on a page's rows,
    after `also` has annotated them."""
    actions = allowed_actions(user, model)

    def annotate(rows: list[Any]) -> None:
        if also is not None:
            also(rows)
        for row in rows:
            row.actions = actions

    return annotate


def _with_device_counts(templates: list[CheckTemplate]) -> None:
    """Sets `device_count` (devices given the template's check) on a page of templates."""
    counts = dict(
        Check.objects.filter(template__in=templates)
        .values("template_id")
        .annotate(n=Count("device_id", distinct=True))
        .values_list("template_id", "n")
    )
    for template in templates:
        template.device_count = counts.get(template.pk, 0)


def _by_name_and_customer(queryset: Any, form: Any) -> Any:
    """The filter the template, window and credential lists share: a name and a customer."""
    if q := form.cleaned_data.get("q"):
        queryset = queryset.filter(name__icontains=q)
    if customer := form.cleaned_data.get("customer"):
        queryset = queryset.filter(customer=customer)
    return queryset


@ui_view
def monitoring_template_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", CheckTemplate)
    form = forms.CheckTemplateFilterForm(request.GET, user=request.user)
    form.is_valid()
    queryset = _by_name_and_customer(selectors.check_template_list(user=request.user), form)
    return list_page(
        request,
        model=CheckTemplate,
        queryset=queryset,
        order=("name", "id"),
        filter_form=form,
        rows_template="monitoring/template_rows.html",
        title=_("Check templates"),
        add_url=reverse("monitoring_template_create"),
        annotate_rows=_with_actions(request.user, CheckTemplate, also=_with_device_counts),
    )


template_pages = ObjectPages(
    model=CheckTemplate,
    form=forms.CheckTemplateForm,
    get=selectors.check_template_get,
    delete_service=services.check_template_delete,
    create_title=gettext_lazy("New check template"),
    list_url="monitoring_template_list",
    edit_url="monitoring_template_edit",
    preset=customer_initial,
)


# Maintenance windows ---------------------------------------------------------------------------


def _windows_active_now(queryset: Any, now: dt.datetime) -> list[int]:
    """The ids of the windows covering `now`: one-off ones by the database, repeating ones by
    their rule."""
    candidates = queryset.filter(starts_at__lte=now).filter(
        Q(rrule="", ends_at__gt=now) | ~Q(rrule="")
    )
    return [window.pk for window in candidates if window.covers(now)]


def _with_active(windows: list[MaintenanceWindow]) -> None:
    """Sets `active_until` (the end of the occurrence under way, or None) on each window."""
    now = timezone.now()
    for window in windows:
        occurrence = window.occurrence_at(now)
        window.active_until = occurrence[1] if occurrence else None


@ui_view
def monitoring_window_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", MaintenanceWindow)
    form = forms.MaintenanceWindowFilterForm(request.GET, user=request.user)
    form.is_valid()
    queryset = _by_name_and_customer(selectors.maintenance_window_list(user=request.user), form)
    if form.cleaned_data.get("active"):
        queryset = queryset.filter(pk__in=_windows_active_now(queryset, timezone.now()))
    return list_page(
        request,
        model=MaintenanceWindow,
        queryset=queryset,
        order=("-starts_at", "-id"),
        filter_form=form,
        rows_template="monitoring/window_rows.html",
        title=_("Maintenance windows"),
        add_url=reverse("monitoring_window_create"),
        annotate_rows=_with_actions(request.user, MaintenanceWindow, also=_with_active),
    )


def _preset_device(request: HttpRequest) -> Device | None:
    pk = request.GET.get("device")
    return asset_selectors.device_get(user=request.user, pk=pk) if pk else None


@ui_view
def monitoring_window_create(request: HttpRequest) -> HttpResponse:
    require(request.user, "add", MaintenanceWindow)
    device = _preset_device(request)
    initial: dict[str, Any] = {"customer": preset_customer(request)}
    if device is not None:
        initial |= {"customer": device.customer_id, "site": device.site_id, "device": device.pk}
    form = forms.MaintenanceWindowForm(post_data(request), user=request.user, initial=initial)
    if window := form_save(request, form):
        say_created(request, window)
        if device is not None:
            return redirect("device_detail", pk=device.pk)
        return redirect("monitoring_window_list")
    cancel = (
        reverse("device_detail", args=[device.pk]) if device else reverse("monitoring_window_list")
    )
    return form_page(request, form, title=_("New maintenance window"), cancel_url=cancel)


@ui_view
def monitoring_window_edit(request: HttpRequest, pk: int) -> HttpResponse:
    window = selectors.maintenance_window_get(user=request.user, pk=pk)
    require(request.user, "change", window)
    form = forms.MaintenanceWindowForm(post_data(request), user=request.user, instance=window)
    if form_save(request, form):
        say_saved(request, window)
        return redirect("monitoring_window_list")
    return form_page(
        request,
        form,
        title=_("Edit %(obj)s") % {"obj": window},
        cancel_url=reverse("monitoring_window_list"),
    )


@ui_view
def monitoring_window_delete(request: HttpRequest, pk: int) -> HttpResponse:
    window = selectors.maintenance_window_get(user=request.user, pk=pk)
    require(request.user, "delete", window)
    return delete_page(
        request,
        window,
        delete=lambda: services.maintenance_window_delete(actor=request.user, window=window),
        done_url=reverse("monitoring_window_list"),
        cancel_url=reverse("monitoring_window_edit", args=[window.pk]),
    )


# SNMP credentials ------------------------------------------------------------------------------

SECRET_FIELDS = ("community", "auth_key", "priv_key")


@ui_view
def monitoring_credential_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "view", SnmpCredential)
    form = forms.CheckTemplateFilterForm(request.GET, user=request.user)
    form.is_valid()
    queryset = _by_name_and_customer(selectors.snmp_credential_list(user=request.user), form)
    return list_page(
        request,
        model=SnmpCredential,
        queryset=queryset,
        order=("name", "id"),
        filter_form=form,
        rows_template="monitoring/credential_rows.html",
        title=_("SNMP credentials"),
        add_url=reverse("monitoring_credential_create"),
        annotate_rows=_with_actions(request.user, SnmpCredential),
    )


credential_pages = ObjectPages(
    model=SnmpCredential,
    form=forms.SnmpCredentialForm,
    get=selectors.snmp_credential_get,
    delete_service=services.snmp_credential_delete,
    create_title=gettext_lazy("New SNMP credentials"),
    list_url="monitoring_credential_list",
    edit_url="monitoring_credential_edit",
    sensitive=SECRET_FIELDS,
    preset=customer_initial,
)


# SNMP discovery --------------------------------------------------------------------------------


@ui_view
def monitoring_discovery_list(request: HttpRequest) -> HttpResponse:
    """The discoveries, newest first."""
    require(request.user, "view", DiscoveryJob)
    form = forms.DiscoveryJobFilterForm(request.GET, user=request.user)
    form.is_valid()
    queryset = selectors.discovery_job_list(user=request.user)
    if q := form.cleaned_data.get("q"):
        queryset = queryset.filter(network__icontains=q)
    if customer := form.cleaned_data.get("customer"):
        queryset = queryset.filter(customer=customer)
    if status := form.cleaned_data.get("status"):
        queryset = queryset.filter(status=status)
    return list_page(
        request,
        model=DiscoveryJob,
        queryset=queryset,
        order=("-id",),
        filter_form=form,
        rows_template="monitoring/discovery_rows.html",
        title=_("SNMP discovery"),
        add_url=reverse("monitoring_discovery_create"),
    )


@ui_view
def monitoring_discovery_create(request: HttpRequest) -> HttpResponse:
    """Runs a discovery: the job is queued, a worker sweeps the network, and the job's page
    follows it."""
    require(request.user, "add", DiscoveryJob)
    form = forms.DiscoveryJobForm(
        post_data(request), user=request.user, initial={"customer": preset_customer(request)}
    )
    if job := form_save(request, form):
        say_created(request, job)
        return redirect("monitoring_discovery_detail", pk=job.pk)
    return form_page(
        request,
        form,
        title=_("Run a discovery"),
        cancel_url=reverse("monitoring_discovery_list"),
    )


def _discovery_rows(request: HttpRequest, job: DiscoveryJob) -> list[dict[str, Any]]:
    """The job's result rows for the page: labels translated, and the device linked where it
    still exists and the user may see it."""
    devices = selectors.discovery_devices(user=request.user, job=job)
    kinds = dict(Device.Kind.choices)
    # What was done with each device that answered (an "error" row was not stored).
    actions = {
        "created": _("Added"),
        "updated": _("Updated"),
        "unchanged": _("Unchanged"),
        "error": _("Error"),
    }
    rows = []
    for row in job.results or []:
        if not isinstance(row, dict):
            continue
        action = str(row.get("action") or "")
        kind = str(row.get("kind") or "")
        rows.append(
            {
                "address": row.get("address") or "",
                "name": row.get("sys_name") or row.get("name") or "",
                "vendor": row.get("vendor") or "",
                "model": row.get("model") or "",
                "kind": kinds.get(kind, kind),
                "action": action,
                "action_label": actions.get(action, action),
                "error": row.get("error") or "",
                "device": devices.get(row.get("device_id")),
            }
        )
    return rows


@ui_view
def monitoring_discovery_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A discovery: its progress while it runs (the page asks again every few seconds), then
    what it found."""
    job = selectors.discovery_job_get(user=request.user, pk=pk)
    require(request.user, "view", job)
    context = {
        "job": job,
        "rows": _discovery_rows(request, job),
        "running": job.status in (DiscoveryJob.Status.QUEUED, DiscoveryJob.Status.RUNNING),
    }
    partial = request.htmx and not request.htmx.history_restore_request
    template = "monitoring/discovery_progress.html" if partial else "monitoring/discovery.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response
