"""API of the asset register: devices and their inventory history."""

import datetime as dt
from ipaddress import IPv4Address, IPv6Address

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, File, Form, Router, Schema
from ninja.files import UploadedFile
from ninja.pagination import paginate

from onestop.assets import selectors, services
from onestop.assets.models import Device, InventoryChange
from onestop.contracts.models import Contract
from onestop.core import selectors as core_selectors
from onestop.core.api import resolve_refs
from onestop.core.api_base import InputSchema, NewestFirst, crud_endpoints, problem_response
from onestop.core.models import Customer, Site
from onestop.core.permissions import require

router = Router()

DEVICE_REFS = {
    "customer_id": ("customer", Customer),
    "site_id": ("site", Site),
    "contract_id": ("contract", Contract),
}


class DeviceOut(Schema):
    id: int
    customer_id: int
    site_id: int | None
    name: str
    kind: str
    source: str
    hostname: str
    vendor: str
    model: str
    serial: str
    os_name: str
    os_version: str
    cpu_model: str
    memory_bytes: int | None
    ip_address: str | None
    mac_address: str
    contract_id: int | None
    warranty_end: dt.date | None
    tags: list[str]
    notes: str
    inventory_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class DeviceIn(InputSchema):
    customer_id: int
    site_id: int | None = None
    name: str = Field(min_length=1, max_length=200)
    kind: Device.Kind = Device.Kind.DESKTOP
    hostname: str = Field("", max_length=255)
    vendor: str = Field("", max_length=100)
    model: str = Field("", max_length=100)
    serial: str = Field("", max_length=100)
    os_name: str = Field("", max_length=100)
    os_version: str = Field("", max_length=100)
    cpu_model: str = Field("", max_length=200)
    memory_bytes: int | None = Field(None, ge=0)
    ip_address: IPv4Address | IPv6Address | None = None
    mac_address: str = Field("", max_length=17)
    contract_id: int | None = None
    warranty_end: dt.date | None = None
    tags: list[str] = []
    notes: str = Field("", max_length=10000)


class DevicePatch(InputSchema):
    site_id: int | None = None
    name: str | None = Field(None, min_length=1, max_length=200)
    kind: Device.Kind | None = None
    hostname: str | None = Field(None, max_length=255)
    vendor: str | None = Field(None, max_length=100)
    model: str | None = Field(None, max_length=100)
    serial: str | None = Field(None, max_length=100)
    os_name: str | None = Field(None, max_length=100)
    os_version: str | None = Field(None, max_length=100)
    cpu_model: str | None = Field(None, max_length=200)
    memory_bytes: int | None = Field(None, ge=0)
    ip_address: IPv4Address | IPv6Address | None = None
    mac_address: str | None = Field(None, max_length=17)
    contract_id: int | None = None
    warranty_end: dt.date | None = None
    tags: list[str] | None = None
    notes: str | None = Field(None, max_length=10000)


class DeviceFilters(Schema):
    q: str | None = None
    customer_id: int | None = None
    site_id: int | None = None
    kind: Device.Kind | None = None


class InventoryChangeOut(Schema):
    id: int
    at: dt.datetime
    item: str
    kind: str
    before: str
    after: str


def _device_refs(user, data: dict) -> dict:
    if data.get("ip_address") is not None:
        data["ip_address"] = str(data["ip_address"])
    return resolve_refs(user, data, DEVICE_REFS)


crud_endpoints(
    router,
    "/devices",
    module=__name__,
    name="device",
    plural="devices",
    tag="devices",
    model=Device,
    out=DeviceOut,
    filters=DeviceFilters,
    create_in=DeviceIn,
    patch_in=DevicePatch,
    list=selectors.device_list,
    get=selectors.device_get,
    create=services.device_create,
    update=services.device_update,
    delete=services.device_delete,
    refs=_device_refs,
    require_view=("list", "get"),
)


@router.get(
    "/devices/{int:id}/inventory-changes",
    response=list[InventoryChangeOut],
    tags=["devices"],
)
@paginate(NewestFirst)
def list_inventory_changes(request: HttpRequest, id: int):
    device = selectors.device_get(user=request.user, pk=id)
    require(request.user, "view", InventoryChange)
    return selectors.inventory_change_list(user=request.user, device=device)


class DeviceImportRowOut(Schema):
    row: int
    action: str
    name: str
    serial: str
    device_id: int | None


class DeviceImportOut(Schema):
    dry_run: bool
    created: int
    updated: int
    unchanged: int
    rows: list[DeviceImportRowOut]


@router.post("/devices/import", response=DeviceImportOut, tags=["devices"])
def import_devices(
    request: HttpRequest,
    file: File[UploadedFile],
    customer_id: Form[int],
    dry_run: Form[bool] = False,
):
    """Imports a customer's devices from a .csv or .xlsx file (multipart field `file`), all or
    nothing; `dry_run` only reports what would be created and updated. A bad file or bad rows
    answer 422 with each error's `row` and `column`."""
    require(request.user, "add", Device)
    customer = core_selectors.customer_get(user=request.user, pk=customer_id)
    table = services.device_import_read(
        content=file.read(services.IMPORT_MAX_BYTES + 1), filename=file.name or ""
    )
    result = services.devices_import(
        actor=request.user, customer=customer, table=table, dry_run=dry_run
    )
    if result.errors:
        errors = [
            {
                "field": error.field,
                "code": error.code,
                "message": error.message,
                "row": error.row,
                "column": error.column,
            }
            for error in result.errors
        ]
        return problem_response(
            422,
            _("%(count)s rows of the file have errors; nothing was imported.")
            % {"count": len({error.row for error in result.errors})},
            errors=errors,
            code="validation",
        )
    return result
