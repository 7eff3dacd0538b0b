"""Every write to the asset register: devices by hand or from an agent, and inventory updates
with their change history."""

from __future__ import annotations

import codecs
import copy
import csv
import datetime as dt
import io
import ipaddress
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import openpyxl
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _
from openpyxl.utils import get_column_letter

from onestop.assets.models import Device, InventoryChange
from onestop.core import audit
from onestop.core.models import Customer, Site, User
from onestop.core.services import object_delete

DEVICE_FIELDS = (
    "name",
    "kind",
    "site",
    "hostname",
    "vendor",
    "model",
    "serial",
    "os_name",
    "os_version",
    "cpu_model",
    "memory_bytes",
    "ip_address",
    "mac_address",
    "contract",
    "warranty_end",
    "tags",
    "notes",
)
# Inventory fields copied onto the device, by (device field, path in the agent's inventory).
INVENTORY_FIELDS = (
    ("hostname", ("hostname",)),
    ("os_name", ("os", "name")),
    ("os_version", ("os", "version")),
    ("cpu_model", ("cpu", "model")),
    ("memory_bytes", ("memory_bytes",)),
    ("vendor", ("vendor",)),
    ("model", ("model",)),
    ("serial", ("serial",)),
)
MAX_SOFTWARE = 5000


def _check_device(device: Device) -> None:
    errors = {}
    if device.site_id and device.site.customer_id != device.customer_id:
        errors["site"] = _("The site belongs to another customer.")
    if device.contract_id and device.contract.customer_id != device.customer_id:
        errors["contract"] = _("The contract belongs to another customer.")
    if not isinstance(device.tags, list) or not all(
        isinstance(tag, str) and 0 < len(tag) <= 50 for tag in device.tags
    ):
        errors["tags"] = _("Tags are short words.")
    if errors:
        raise ValidationError(errors)
    device.tags = sorted({tag.strip() for tag in device.tags})
    device.full_clean(exclude=["customer", "site", "contract"])


@transaction.atomic
def device_create(
    *,
    actor: User | None,
    customer: Customer,
    name: str,
    source: str = Device.Source.MANUAL,
    **fields: Any,
) -> Device:
    """A device of a customer (by hand, import, discovery or a newly enrolled agent)."""
    unknown = set(fields) - set(DEVICE_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a device")
    device = Device(customer=customer, name=name.strip(), source=source, **fields)
    _check_device(device)
    device.save()
    audit.record_created(actor=actor, obj=device)
    return device


@transaction.atomic
def device_update(*, actor: User | None, device: Device, **fields: Any) -> Device:
    unknown = set(fields) - set(DEVICE_FIELDS)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a device")
    before = audit.snapshot(device)
    for name, value in fields.items():
        setattr(device, name, value.strip() if isinstance(value, str) else value)
    _check_device(device)
    device.save()
    audit.record_updated(actor=actor, obj=device, before=before)
    return device


@transaction.atomic
def device_delete(*, actor: User | None, device: Device) -> None:
    object_delete(actor=actor, obj=device)


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _primary_nic(inventory: dict[str, Any]) -> tuple[str | None, str]:
    """The first NIC's first routable address and its MAC: what people look a device up by."""
    for nic in inventory.get("nics") or []:
        for raw in nic.get("ips") or []:
            try:
                address = ipaddress.ip_address(str(raw).split("/")[0])
            except ValueError:
                continue
            if not (address.is_loopback or address.is_link_local):
                return str(address), str(nic.get("mac") or "")[:17]
    return None, ""


def _keyed(items: Any, key: str, value: str) -> dict[str, str]:
    if not isinstance(items, list):
        return {}
    return {
        str(item.get(key))[:200]: str(item.get(value) or "")[:200]
        for item in items[:MAX_SOFTWARE]
        if isinstance(item, dict) and item.get(key)
    }


def _inventory_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(item, kind, before, after) for each difference between two inventories."""
    changes: list[tuple[str, str, str, str]] = []
    for field, path in INVENTORY_FIELDS:
        before, after = _dig(old, path), _dig(new, path)
        if after is not None and before is not None and str(before) != str(after):
            changes.append((field, InventoryChange.Kind.CHANGED, str(before), str(after)))
    for label, key, value in (
        ("software", "name", "version"),
        ("disk", "mount", "total_bytes"),
        ("nic", "name", "mac"),
    ):
        collection = {"software": "software", "disk": "disks", "nic": "nics"}[label]
        if collection not in new:
            continue  # the agent could not read it this time: nothing was removed
        before, after = _keyed(old.get(collection), key, value), _keyed(new[collection], key, value)
        for name in sorted(after.keys() - before.keys()):
            changes.append((f"{label}: {name}", InventoryChange.Kind.ADDED, "", after[name]))
        for name in sorted(before.keys() - after.keys()):
            changes.append((f"{label}: {name}", InventoryChange.Kind.REMOVED, before[name], ""))
        for name in sorted(before.keys() & after.keys()):
            if before[name] != after[name]:
                changes.append(
                    (f"{label}: {name}", InventoryChange.Kind.CHANGED, before[name], after[name])
                )
    return changes


@transaction.atomic
def device_inventory_apply(*, device: Device, inventory: dict[str, Any], at: dt.datetime) -> int:
    """Stores an agent's inventory on the device and records what changed since the last one
    (the first inventory is the baseline). Returns the number of changes."""
    changes = _inventory_changes(device.inventory or {}, inventory) if device.inventory_at else []
    for field, path in INVENTORY_FIELDS:
        value = _dig(inventory, path)
        if value is None:
            continue
        if field == "memory_bytes":
            value = int(value) if isinstance(value, int | float) and value >= 0 else None
        else:
            value = str(value)[: Device._meta.get_field(field).max_length]
        setattr(device, field, value)
    address, mac = _primary_nic(inventory)
    if address:
        device.ip_address, device.mac_address = address, mac
    device.inventory, device.inventory_at = inventory, at
    device.save()
    InventoryChange.objects.bulk_create(
        InventoryChange(
            device=device, at=at, item=item[:100], kind=kind, before=before[:500], after=after[:500]
        )
        for item, kind, before, after in changes
    )
    return len(changes)


def device_for_site(*, site: Site, name: str, kind: str = Device.Kind.DESKTOP) -> Device:
    """A new device at a site, for an agent enrolling there."""
    return device_create(
        actor=None,
        customer=site.customer,
        site=site,
        name=name,
        kind=kind,
        source=Device.Source.AGENT,
    )


# Import from a spreadsheet -------------------------------------------------------------------

IMPORT_MAX_BYTES = 5 * 1024 * 1024
IMPORT_MAX_ROWS = 5000
# An .xlsx is a zip archive: refuse one that unpacks to far more than a real device list would.
IMPORT_MAX_UNPACKED_BYTES = 100 * 1024 * 1024
IMPORT_MAX_NOTES = 10000
# field → header names accepted; the second is the English template's, the third the Chinese.
IMPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("name", "name", "名称", "设备名称"),
    "kind": ("kind", "kind", "类型", "设备类型"),
    "site": ("site", "site", "站点"),
    "hostname": ("hostname", "hostname", "主机名", "host name"),
    "vendor": ("vendor", "vendor", "厂商", "品牌"),
    "model": ("model", "model", "型号"),
    "serial": ("serial", "serial", "序列号", "serial number", "sn"),
    "os_name": ("os_name", "os_name", "操作系统", "operating system", "os"),
    "ip_address": ("ip_address", "ip_address", "IP地址", "ip address", "ip"),
    "mac_address": ("mac_address", "mac_address", "MAC地址", "mac address", "mac"),
    "warranty_end": ("warranty_end", "warranty_end", "保修截止", "保修截止日期", "保修到期"),
    "tags": ("tags", "tags", "标签"),
    "notes": ("notes", "notes", "备注"),
}
_TAG_SEPARATORS = re.compile(r"[,，;；、]")
_DATE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?"
)
_MAC_SEPARATORS = re.compile(r"[\s:.\-]")


def _header_key(header: str) -> str:
    return re.sub(r"[\s_*＊]+", "", header).casefold()


_HEADER_FIELDS = {
    _header_key(alias): field for field, aliases in IMPORT_COLUMNS.items() for alias in aliases
}


@dataclass
class DeviceImportTable:
    """A device file as read: its columns (the header as written, the device field it names)
    and its non-blank rows as text, numbered as the spreadsheet numbers them."""

    filename: str
    headers: list[str]
    fields: list[str]
    rows: list[tuple[int, list[str]]]

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "headers": self.headers,
            "fields": self.fields,
            "rows": [[number, cells] for number, cells in self.rows],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceImportTable:
        return cls(
            filename=str(data["filename"]),
            headers=list(data["headers"]),
            fields=list(data["fields"]),
            rows=[(int(number), list(cells)) for number, cells in data["rows"]],
        )


@dataclass
class DeviceImportError:
    """What is wrong with one row (or the file, when `row` is None), and in which column."""

    row: int | None
    field: str | None
    column: str | None
    message: str
    code: str = "invalid"


@dataclass
class DeviceImportRow:
    """One row of the file and what the import does with it: create, update or nothing."""

    row: int
    action: str  # "create", "update" or "unchanged"
    name: str
    serial: str
    device_id: int | None = None


@dataclass
class DeviceImportResult:
    """The outcome of an import (or of its dry run): the rows, or the errors that stopped it."""

    dry_run: bool
    rows: list[DeviceImportRow] = dataclass_field(default_factory=list)
    errors: list[DeviceImportError] = dataclass_field(default_factory=list)

    def _count(self, action: str) -> int:
        return sum(1 for row in self.rows if row.action == action)

    @property
    def created(self) -> int:
        return self._count("create")

    @property
    def updated(self) -> int:
        return self._count("update")

    @property
    def unchanged(self) -> int:
        return self._count("unchanged")

    @property
    def stored(self) -> bool:
        return not self.dry_run and not self.errors


def _file_error(message: str, **params: Any) -> ValidationError:
    return ValidationError({"file": message % params if params else message})


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a serial number Excel stored as a number
    return str(value).strip()


def _csv_rows(content: bytes) -> Iterator[list[str]]:
    text = None
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)  # Excel's "Unicode text"
    else:
        # Excel in Chinese saves "CSV" as GB18030 (GBK); UTF-8 may come with or without a BOM.
        encodings = ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        raise _file_error(_("The CSV file is neither UTF-8 nor GB18030 (GBK) text."))
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        yield from reader
    except csv.Error as exc:
        raise _file_error(
            _("The CSV file cannot be read at line %(line)s: %(error)s"),
            line=reader.line_num,
            error=str(exc),
        ) from None


def _xlsx_rows(content: bytes) -> Iterator[tuple[Any, ...]]:
    not_a_workbook = _("The file is not an Excel workbook (.xlsx); save it again as .xlsx or .csv.")
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise _file_error(not_a_workbook) from None
    if unpacked > IMPORT_MAX_UNPACKED_BYTES:
        raise _file_error(_("The workbook unpacks to too much data; import it in parts."))
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # openpyxl fails in many ways on a damaged or foreign file
        raise _file_error(not_a_workbook) from None
    try:
        yield from book.worksheets[0].iter_rows(values_only=True)
    except Exception:
        raise _file_error(not_a_workbook) from None
    finally:
        book.close()


def _columns(headers: list[str]) -> list[str | None]:
    """The device field each column names (None for a blank header); unknown or repeated
    columns and a missing name column are errors of the file."""
    fields: list[str | None] = []
    errors = []
    for header in headers:
        field = _HEADER_FIELDS.get(_header_key(header)) if header else None
        if header and field is None:
            errors.append(_("Unknown column “%(column)s”.") % {"column": header})
        elif field is not None and field in fields:
            errors.append(_("The column “%(column)s” appears twice.") % {"column": header})
        fields.append(field)
    if errors:
        known = ", ".join(f"{aliases[1]} / {aliases[2]}" for aliases in IMPORT_COLUMNS.values())
        errors.append(_("The columns a device file may have: %(columns)s.") % {"columns": known})
    elif "name" not in fields:
        errors.append(_("The file has no “name” (名称) column."))
    if errors:
        raise ValidationError({"file": errors})
    return fields


def device_import_read(*, content: bytes, filename: str) -> DeviceImportTable:
    """Reads a device file (.csv or .xlsx) into a table, or raises ValidationError on the file:
    too large, unreadable, too many rows, unknown columns. Rows are checked by the import."""
    if len(content) > IMPORT_MAX_BYTES:
        raise _file_error(
            _("The file is larger than %(mb)s MB; import it in parts."),
            mb=IMPORT_MAX_BYTES // (1024 * 1024),
        )
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if not extension:
        extension = "xlsx" if content.startswith(b"PK\x03\x04") else "csv"
    if extension == "xls":
        raise _file_error(_("Old Excel files (.xls) are not read; save the file as .xlsx or .csv."))
    if extension not in ("csv", "xlsx"):
        raise _file_error(_("Import a .csv or an .xlsx file."))
    lines = _csv_rows(content) if extension == "csv" else _xlsx_rows(content)
    headers: list[str] | None = None
    fields: list[str | None] = []
    rows: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines, start=1):
        cells = [_cell_text(value) for value in line]
        if not any(cells):
            continue
        if headers is None:
            headers = cells
            fields = _columns(headers)
            continue
        for index, cell in enumerate(cells):
            if cell and (index >= len(fields) or fields[index] is None):
                raise _file_error(
                    _("Row %(row)s has a value in column %(column)s, which has no header."),
                    row=number,
                    column=get_column_letter(index + 1),
                )
        if len(rows) == IMPORT_MAX_ROWS:
            raise _file_error(
                _("The file has more than %(limit)s devices; import it in parts."),
                limit=f"{IMPORT_MAX_ROWS:,}",
            )
        cells = (cells + [""] * len(fields))[: len(fields)]
        rows.append(
            (number, [cell for cell, field in zip(cells, fields, strict=True) if field is not None])
        )
    if headers is None:
        raise _file_error(_("The file is empty."))
    return DeviceImportTable(
        filename=filename,
        headers=[
            header for header, field in zip(headers, fields, strict=True) if field is not None
        ],
        fields=[field for field in fields if field is not None],
        rows=rows,
    )


def device_import_template(*, chinese: bool) -> bytes:
    """The header row of a device file, as CSV that Excel opens correctly (UTF-8 with a BOM)."""
    headers = [aliases[2] if chinese else aliases[1] for aliases in IMPORT_COLUMNS.values()]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(headers)
    return codecs.BOM_UTF8 + out.getvalue().encode()


def _device_kinds() -> dict[str, str]:
    """Kind by its code and by its label in each language, for cells like "Server" or "服务器"."""
    kinds = {}
    for language in ("en", "zh-hans"):
        with translation.override(language):
            kinds |= {str(label).casefold(): code for code, label in Device.Kind.choices}
    return kinds | {code: code for code in Device.Kind.values}


def _import_date(text: str) -> dt.date | None:
    match = _DATE.fullmatch(text)
    try:
        return dt.date(*(int(part) for part in match.groups())) if match else None
    except ValueError:
        return None


def _import_values(
    fields: list[str], cells: list[str], sites: dict[str, list[Site]], kinds: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The device fields of one row's non-blank cells, and what is wrong with them."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field, cell in zip(fields, cells, strict=True):
        if not cell:
            continue
        if field == "kind":
            if cell.casefold() in kinds:
                values[field] = kinds[cell.casefold()]
            else:
                errors[field] = _("“%(value)s” is not a kind of device; use one of: %(kinds)s.") % {
                    "value": cell,
                    "kinds": ", ".join(Device.Kind.values),
                }
        elif field == "site":
            found = sites.get(cell.casefold(), [])
            if len(found) == 1:
                values[field] = found[0]
            elif found:
                errors[field] = _("Several sites of this customer are named “%(site)s”.") % {
                    "site": cell
                }
            else:
                errors[field] = _("This customer has no site named “%(site)s”.") % {"site": cell}
        elif field == "warranty_end":
            date = _import_date(cell)
            if date is not None:
                values[field] = date
            else:
                errors[field] = _("“%(value)s” is not a date; write it as YYYY-MM-DD.") % {
                    "value": cell
                }
        elif field == "mac_address":
            digits = _MAC_SEPARATORS.sub("", cell).lower()
            if re.fullmatch(r"[0-9a-f]{12}", digits):
                values[field] = ":".join(digits[i : i + 2] for i in range(0, 12, 2))
            else:
                errors[field] = _("“%(value)s” is not a MAC address.") % {"value": cell}
        elif field == "tags":
            values[field] = [tag.strip() for tag in _TAG_SEPARATORS.split(cell) if tag.strip()]
        elif field == "notes" and len(cell) > IMPORT_MAX_NOTES:
            errors[field] = _("Notes are at most %(limit)s characters.") % {
                "limit": f"{IMPORT_MAX_NOTES:,}"
            }
        else:
            values[field] = cell
    return values, errors


def _devices_by_serial(customer: Customer, serials: set[str]) -> dict[str, list[Device]]:
    found: dict[str, list[Device]] = {}
    ordered = sorted(serials)
    for start in range(0, len(ordered), 500):
        for device in Device.objects.filter(
            customer=customer, serial__in=ordered[start : start + 500]
        ).select_related("site", "contract"):
            found.setdefault(device.serial, []).append(device)
    return found


def _import_plan(
    customer: Customer, table: DeviceImportTable, *, dry_run: bool
) -> tuple[DeviceImportResult, list[tuple[DeviceImportRow, Device | None, dict[str, Any]]]]:
    """Checks every row; the result (rows and errors) and, per valid row, what to write."""
    result = DeviceImportResult(dry_run=dry_run)
    column_of = dict(zip(table.fields, table.headers, strict=True))
    sites: dict[str, list[Site]] = {}
    for site in Site.objects.filter(customer=customer):
        sites.setdefault(site.name.strip().casefold(), []).append(site)
    kinds = _device_kinds()
    serial_at = table.fields.index("serial") if "serial" in table.fields else None
    existing = _devices_by_serial(
        customer,
        {cells[serial_at] for _row, cells in table.rows if serial_at is not None} - {""},
    )
    first_row_of: dict[str, int] = {}
    plan: list[tuple[DeviceImportRow, Device | None, dict[str, Any]]] = []
    for number, cells in table.rows:
        values, errors = _import_values(table.fields, cells, sites, kinds)
        serial = values.get("serial", "")
        matches = existing.get(serial, []) if serial else []
        if serial in first_row_of:
            errors["serial"] = _("The serial number is also in row %(row)s.") % {
                "row": first_row_of[serial]
            }
        elif serial:
            first_row_of[serial] = number
        if len(matches) > 1:
            errors["serial"] = _(
                "%(count)s devices of this customer have this serial number; keep one first."
            ) % {"count": len(matches)}
        device = matches[0] if len(matches) == 1 else None
        candidate = copy.copy(device) if device else Device(customer=customer, name="")
        for name, value in values.items():
            setattr(candidate, name, value)
        try:
            _check_device(candidate)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                errors.setdefault(name, " ".join(messages))
        for name, message in errors.items():
            field = name if name in DEVICE_FIELDS else None
            result.errors.append(
                DeviceImportError(
                    row=number, field=field, column=column_of.get(field or ""), message=message
                )
            )
        if errors:
            continue
        if device is None:
            action = "create"
        elif audit.snapshot(candidate) != audit.snapshot(device):
            action = "update"
        else:
            action = "unchanged"
        row = DeviceImportRow(
            row=number,
            action=action,
            name=candidate.name,
            serial=candidate.serial,
            device_id=device.pk if device else None,
        )
        result.rows.append(row)
        plan.append((row, device, values))
    return result, plan


def devices_import(
    *, actor: User | None, customer: Customer, table: DeviceImportTable, dry_run: bool
) -> DeviceImportResult:
    """Imports a customer's devices from a read file, all or nothing: every row is checked as
    a device entered by hand; a row whose serial number a device of the customer already has
    updates that device (its blank cells change nothing), the others create devices. With
    errors, or as a dry run, nothing is stored and the result says what would happen."""
    if dry_run:  # only reads: no transaction, so SQLite's write lock is not taken
        return _import_plan(customer, table, dry_run=True)[0]
    with transaction.atomic():
        # One import per customer at a time, so two imports cannot both create a serial number.
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        result, plan = _import_plan(customer, table, dry_run=False)
        if not result.errors:
            _import_write(actor, customer, plan)
    return result


def _import_write(
    actor: User | None,
    customer: Customer,
    plan: list[tuple[DeviceImportRow, Device | None, dict[str, Any]]],
) -> None:
    for row, device, values in plan:
        if row.action == "create":
            name = values.pop("name")
            device = device_create(
                actor=actor, customer=customer, name=name, source=Device.Source.IMPORT, **values
            )
            row.device_id = device.pk
        elif row.action == "update" and device is not None:
            device_update(actor=actor, device=device, **values)
