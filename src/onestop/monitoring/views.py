"""The device pages: the list with agent status, a device's page (details, agent, inventory and
its history), devices entered by hand, and "add a device" with the exact enrol command."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_POST

from onestop.assets import selectors as asset_selectors
from onestop.assets import services as asset_services
from onestop.assets.models import Device, InventoryChange
from onestop.core import selectors as core_selectors
from onestop.core.permissions import allowed_actions, can, require
from onestop.core.views import (
    delete_page,
    form_page,
    form_save,
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
from onestop.monitoring.models import EnrollmentToken

DETAIL_LIMIT = 50
SOFTWARE_LIMIT = 300
# The charts of a device page, and the ranges it offers (the default first).
CHART_METRICS = (
    ("cpu.percent", _lazy("CPU used (%)")),
    ("mem.used_percent", _lazy("Memory used (%)")),
    ("disk.used_percent", _lazy("Disk used (%)")),
    ("net.rx_bps", _lazy("Network received (bytes/s)")),
    ("net.tx_bps", _lazy("Network sent (bytes/s)")),
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
    }
    return render(request, "monitoring/device_detail.html", context)


@ui_view
def device_create(request: HttpRequest) -> HttpResponse:
    require(request.user, "add", Device)
    form = forms.DeviceForm(post_data(request), user=request.user)
    if device := form_save(request, form):
        say_created(request, device)
        return redirect("device_detail", pk=device.pk)
    return form_page(
        request, form, title=_("New device (by hand)"), cancel_url=reverse("device_list")
    )


@ui_view
def device_edit(request: HttpRequest, pk: int) -> HttpResponse:
    device = asset_selectors.device_get(user=request.user, pk=pk)
    require(request.user, "change", device)
    form = forms.DeviceForm(post_data(request), user=request.user, instance=device)
    if form_save(request, form):
        say_saved(request, device)
        return redirect("device_detail", pk=device.pk)
    return form_page(
        request,
        form,
        title=_("Edit %(obj)s") % {"obj": device},
        cancel_url=reverse("device_detail", args=[device.pk]),
    )


@ui_view
def device_delete(request: HttpRequest, pk: int) -> HttpResponse:
    device = asset_selectors.device_get(user=request.user, pk=pk)
    require(request.user, "delete", device)
    return delete_page(
        request,
        device,
        delete=lambda: asset_services.device_delete(actor=request.user, device=device),
        done_url=reverse("device_list"),
        cancel_url=reverse("device_detail", args=[device.pk]),
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
