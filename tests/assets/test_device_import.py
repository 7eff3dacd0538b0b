"""Devices imported from CSV and XLSX files: encodings and headers in English or Chinese, every
row checked as a device entered by hand, all or nothing, updates by serial number, dry runs,
limits, permissions and scope, the preview-then-confirm pages and the API endpoint."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import openpyxl
import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from onestop.assets import services
from onestop.assets.models import Device
from onestop.core.models import AuditEvent
from tests.apitest import Multipart, api_client, call
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

EN_HEADER = [
    "name",
    "kind",
    "site",
    "hostname",
    "vendor",
    "model",
    "serial",
    "os_name",
    "ip_address",
    "mac_address",
    "warranty_end",
    "tags",
    "notes",
]
ZH_HEADER = [
    "名称",
    "类型",
    "站点",
    "主机名",
    "厂商",
    "型号",
    "序列号",
    "操作系统",
    "IP地址",
    "MAC地址",
    "保修截止",
    "标签",
    "备注",
]


def _csv(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def _xlsx(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _import(world, content: bytes, filename: str = "devices.csv", *, dry_run=False, **kwargs):
    table = services.device_import_read(content=content, filename=filename)
    return services.devices_import(
        actor=kwargs.get("actor", world.engineer),
        customer=kwargs.get("customer", world.customer_a),
        table=table,
        dry_run=dry_run,
    )


def _device_audits(action: str = "create"):
    return AuditEvent.objects.filter(object_type="assets.device", action=action)


def _file_errors(content: bytes, filename: str) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        services.device_import_read(content=content, filename=filename)
    assert set(caught.value.message_dict) == {"file"}
    return caught.value.message_dict["file"]


# Reading and storing ---------------------------------------------------------------------------


def test_a_utf8_csv_with_english_headers_creates_audited_devices(world):
    content = _csv(
        [
            EN_HEADER,
            [
                "PC-001",
                "laptop",
                "A 总部",
                "pc-001.corp",
                "Lenovo",
                "ThinkPad T14",
                "SN-001",
                "Windows 11",
                "192.168.1.10",
                "AA-BB-CC-DD-EE-01",
                "2027-06-30",
                "finance, vip；3F",
                "财务部",
            ],
            [
                *["Core switch", "Switch", "", "", "H3C", "S5130", "SN-002", "", "10.0.0.1"],
                *["", "2026/1/5", "", ""],
            ],
        ]
    )
    result = _import(world, content)
    assert (result.created, result.updated, result.errors, result.stored) == (2, 0, [], True)
    pc = Device.objects.get(name="PC-001")
    assert pc.customer == world.customer_a and pc.site == world.site_a
    assert (pc.kind, pc.source, pc.vendor, pc.serial) == ("laptop", "import", "Lenovo", "SN-001")
    assert (pc.ip_address, pc.mac_address) == ("192.168.1.10", "aa:bb:cc:dd:ee:01")
    assert pc.warranty_end == dt.date(2027, 6, 30)
    assert pc.tags == ["3F", "finance", "vip"]
    switch = Device.objects.get(name="Core switch")
    assert (switch.kind, switch.site, switch.warranty_end) == ("switch", None, dt.date(2026, 1, 5))
    assert [row.device_id for row in result.rows] == [pc.pk, switch.pk]
    events = _device_audits()
    assert events.count() == 2
    assert {event.actor for event in events} == {world.engineer}
    assert {event.customer_id for event in events} == {world.customer_a.pk}


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig", "utf-8"])
def test_chinese_headers_and_names_in_gb18030_and_utf8(world, encoding):
    content = _csv(
        [
            ZH_HEADER,
            [
                *["财务部打印机", "打印机", "A 总部", "", "惠普", "LaserJet", "CN-打印-1", "", ""],
                *["", "2026年12月31日", "财务、共享", "三楼东侧"],
            ],
            ["总经理笔记本", "笔记本电脑", "", "", "联想", "", "", "", "", "", "", "", ""],
        ],
        encoding,
    )
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            content.decode("utf-8")  # really not UTF-8
    result = _import(world, content)
    assert result.errors == [] and result.created == 2
    printer = Device.objects.get(name="财务部打印机")
    assert (printer.kind, printer.vendor, printer.serial) == ("printer", "惠普", "CN-打印-1")
    assert printer.site == world.site_a and printer.notes == "三楼东侧"
    assert printer.tags == sorted(["财务", "共享"])
    assert printer.warranty_end == dt.date(2026, 12, 31)
    assert Device.objects.get(name="总经理笔记本").kind == "laptop"


def test_an_xlsx_workbook_with_dates_and_numeric_serials(world):
    content = _xlsx(
        [
            ["名称", "类型", "序列号", "IP地址", "保修截止", "备注"],
            ["机房服务器", "Server", 20240117, "10.1.2.3", dt.datetime(2028, 3, 1), "机柜 A3"],
            [None, None, None, None, None, None],  # blank rows are skipped, numbering is kept
            ["NAS-01", "nas", "NAS 9", "fe80::1", dt.date(2029, 1, 2), None],
        ]
    )
    result = _import(world, content, "资产清单.xlsx")
    assert result.errors == [] and [row.row for row in result.rows] == [2, 4]
    server = Device.objects.get(name="机房服务器")
    assert (server.kind, server.serial, server.ip_address) == ("server", "20240117", "10.1.2.3")
    assert server.warranty_end == dt.date(2028, 3, 1) and server.notes == "机柜 A3"
    nas = Device.objects.get(name="NAS-01")
    assert (nas.kind, nas.ip_address, nas.warranty_end) == ("nas", "fe80::1", dt.date(2029, 1, 2))


def test_bad_rows_are_reported_by_row_and_column_and_nothing_is_stored(world):
    content = _csv(
        [
            ["名称", "类型", "站点", "IP地址", "序列号", "保修截止", "MAC地址"],
            ["good one", "desktop", "A 总部", "10.0.0.2", "OK-1", "", ""],
            ["bad kind", "toaster", "", "", "", "", ""],
            ["bad ip", "", "", "10.0.0.300", "", "", ""],
            ["other site", "", "B 工厂", "", "", "", ""],  # customer B's site
            ["", "server", "", "10.0.0.5", "", "", ""],  # no name
            ["bad date and mac", "", "", "", "", "2026-13-01", "zz:00"],
            ["dup serial", "", "", "", "OK-1", "", ""],
            ["every error of a row", "toaster", "", "999.1.1.1", "", "", ""],
        ]
    )
    result = _import(world, content)
    assert not result.stored
    found = {(error.row, error.field, error.column) for error in result.errors}
    assert found == {
        (3, "kind", "类型"),
        (4, "ip_address", "IP地址"),
        (5, "site", "站点"),
        (6, "name", "名称"),
        (7, "warranty_end", "保修截止"),
        (7, "mac_address", "MAC地址"),
        (8, "serial", "序列号"),
        (9, "kind", "类型"),
        (9, "ip_address", "IP地址"),
    }
    assert all(error.message for error in result.errors)
    dup = next(error for error in result.errors if error.row == 8)
    assert "2" in dup.message  # names the row that has the serial first
    assert not Device.objects.exists()
    assert not _device_audits().exists()


def test_a_row_of_an_existing_serial_updates_that_device(world):
    kept = services.device_create(
        actor=None,
        customer=world.customer_a,
        name="Old name",
        serial="SN-1",
        vendor="Dell",
        ip_address="10.0.0.1",
        tags=["old"],
    )
    other = services.device_create(
        actor=None, customer=world.customer_b, name="B's device", serial="SN-1"
    )
    rows = [
        ["name", "serial", "ip_address", "vendor", "tags"],
        ["Renamed", "SN-1", "10.0.0.99", "", "new, vip"],  # blank vendor: kept
        ["Brand new", "SN-2", "", "HP", ""],
    ]
    result = _import(world, _csv(rows))
    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    assert [(row.row, row.action) for row in result.rows] == [(2, "update"), (3, "create")]
    kept.refresh_from_db()
    assert (kept.name, kept.ip_address, kept.vendor) == ("Renamed", "10.0.0.99", "Dell")
    assert kept.tags == ["new", "vip"] and kept.source == "manual"
    assert Device.objects.filter(customer=world.customer_a).count() == 2
    other.refresh_from_db()
    assert (other.name, other.customer) == ("B's device", world.customer_b)
    update = _device_audits("update").get(object_id=str(kept.pk))
    assert update.actor == world.engineer
    assert update.changes["ip_address"] == ["10.0.0.1", "10.0.0.99"]
    assert "vendor" not in update.changes
    new = Device.objects.get(serial="SN-2")
    assert new.source == "import" and _device_audits().filter(object_id=str(new.pk)).exists()

    # The same file again changes nothing and adds no audit noise.
    audits = AuditEvent.objects.count()
    again = _import(world, _csv(rows))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert AuditEvent.objects.count() == audits
    assert Device.objects.filter(customer=world.customer_a).count() == 2


def test_a_serial_several_devices_share_is_an_error_not_a_guess(world):
    for name in ("one", "two"):
        services.device_create(actor=None, customer=world.customer_a, name=name, serial="SAME")
    result = _import(world, _csv([["name", "serial"], ["x", "SAME"]]))
    assert [(error.row, error.field) for error in result.errors] == [(2, "serial")]
    assert set(Device.objects.values_list("name", flat=True)) == {"one", "two"}


def test_a_dry_run_reports_and_stores_nothing(world):
    services.device_create(actor=None, customer=world.customer_a, name="PC", serial="S1")
    audits = AuditEvent.objects.count()
    rows = [["name", "serial", "kind"], ["PC renamed", "S1", "laptop"], ["New", "S2", ""]]
    result = _import(world, _csv(rows), dry_run=True)
    assert (result.dry_run, result.stored, result.created, result.updated) == (True, False, 1, 1)
    assert result.errors == []
    assert list(Device.objects.values_list("name", "kind")) == [("PC", "desktop")]
    assert AuditEvent.objects.count() == audits


# The file itself -----------------------------------------------------------------------------


def test_files_that_cannot_be_imported_get_a_clear_error(world, monkeypatch):
    assert "5 MB" in _file_errors(b"a" * (services.IMPORT_MAX_BYTES + 1), "big.csv")[0]
    assert _file_errors(b"this is not a workbook", "devices.xlsx")
    fake = io.BytesIO()
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("hello.txt", "a zip, but no workbook")
    assert _file_errors(fake.getvalue(), "devices.xlsx")
    assert ".xlsx" in _file_errors(b"\xd0\xcf\x11\xe0", "devices.xls")[0]
    assert _file_errors(b"name\r\nx\r\n", "devices.pdf")
    assert _file_errors(b"name\r\n\xff\xff\r\n", "devices.csv")
    assert _file_errors(b"", "devices.csv")
    unknown = _file_errors(_csv([["name", "colour", "价格"], ["x", "red", "1"]]), "d.csv")
    assert any("colour" in message for message in unknown)
    assert any("价格" in message for message in unknown)
    assert _file_errors(_csv([["kind", "serial"], ["server", "1"]]), "d.csv")  # no name column
    assert _file_errors(_csv([["name", "名称"], ["x", "y"]]), "d.csv")  # the same column twice
    headless = _file_errors(_csv([["name", ""], ["x", "lost value"]]), "d.csv")
    assert "B" in headless[0]  # the column letter
    monkeypatch.setattr(services, "IMPORT_MAX_ROWS", 3)
    too_many = [["name"]] + [[f"PC-{n}"] for n in range(4)]
    assert "3" in _file_errors(_csv(too_many), "d.csv")[0]
    assert _file_errors(_xlsx(too_many), "d.xlsx")
    assert len(services.device_import_read(content=_csv(too_many[:4]), filename="d.csv").rows) == 3
    assert not Device.objects.exists()


def test_a_csv_with_semicolons_and_an_excel_style_header(world):
    content = "名称 ;类型;Serial Number\r\n台式机 1;台式机;X1\r\n".encode("gb18030")
    result = _import(world, content)
    assert result.errors == []
    assert Device.objects.get(serial="X1").kind == "desktop"


# Pages ---------------------------------------------------------------------------------------


def _upload(content: bytes, name: str = "devices.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def test_preview_then_confirm_through_the_pages(world):
    client = client_for(world.engineer)
    listing = client.get("/devices/")
    assert 'href="/devices/import/"' in listing.content.decode()
    assert client.get("/devices/import/").status_code == 200
    content = _csv([ZH_HEADER[:3], ["财务 PC", "台式机", "A 总部"], ["前台 PC", "", ""]])
    preview = client.post(
        "/devices/import/", {"customer": world.customer_a.pk, "file": _upload(content)}
    )
    assert preview.status_code == 200
    html = preview.content.decode()
    assert "财务 PC" in html and "前台 PC" in html and 'name="token"' in html
    assert not Device.objects.exists()  # only a dry run so far
    token = preview.context["token"]
    assert preview.context["result"].created == 2

    done = client.post("/devices/import/confirm/", {"token": token})
    assert done.status_code == 302
    assert done.url == f"/devices/?customer={world.customer_a.pk}"
    assert set(Device.objects.values_list("name", "source", "customer")) == {
        ("财务 PC", "import", world.customer_a.pk),
        ("前台 PC", "import", world.customer_a.pk),
    }
    assert _device_audits().count() == 2
    # The preview is used up: confirming again imports nothing twice.
    again = client.post("/devices/import/confirm/", {"token": token})
    assert again.status_code == 302 and again.url == "/devices/import/"
    assert Device.objects.count() == 2


def test_the_pages_show_bad_rows_and_offer_no_import(world):
    client = client_for(world.engineer)
    content = _csv([["name", "ip_address"], ["ok", ""], ["bad", "1.2.3.999"]])
    preview = client.post(
        "/devices/import/", {"customer": world.customer_a.pk, "file": _upload(content)}
    )
    assert preview.status_code == 400
    html = preview.content.decode()
    assert "ip_address" in html and 'name="token"' not in html
    errors = preview.context["result"].errors
    assert [(error.row, error.field) for error in errors] == [(3, "ip_address")]
    assert "device_import" not in client.session
    broken = client.post(
        "/devices/import/",
        {"customer": world.customer_a.pk, "file": _upload(b"PK not really", "d.xlsx")},
    )
    assert broken.status_code == 400 and broken.context["form"].errors["file"]
    assert client.post("/devices/import/confirm/", {"token": "guess"}).status_code == 302
    assert not Device.objects.exists()


def test_a_confirm_checks_the_rows_again(world):
    client = client_for(world.engineer)
    content = _csv([["name", "serial"], ["PC", "S-9"], ["Other", ""]])
    preview = client.post(
        "/devices/import/", {"customer": world.customer_a.pk, "file": _upload(content)}
    )
    assert preview.status_code == 200 and preview.context["result"].created == 2
    # Meanwhile two devices of the customer got that serial number: the row is now ambiguous.
    for name in ("one", "two"):
        services.device_create(actor=None, customer=world.customer_a, name=name, serial="S-9")
    done = client.post("/devices/import/confirm/", {"token": preview.context["token"]})
    assert done.status_code == 400
    assert [(e.row, e.field) for e in done.context["result"].errors] == [(2, "serial")]
    assert set(Device.objects.values_list("name", flat=True)) == {"one", "two"}


def test_the_pages_keep_to_the_users_role_and_customers(world):
    content = _csv([["name"], ["PC"]])
    # Portal users may see devices but not add them; sales may not add devices either.
    for user in (world.portal_admin_a, world.sales):
        client = client_for(user)
        assert client.get("/devices/import/").status_code == 403
        assert client.get("/devices/import/template/").status_code == 403
        assert client.post("/devices/import/confirm/", {"token": "x"}).status_code == 403
        refused = client.post(
            "/devices/import/", {"customer": world.customer_a.pk, "file": _upload(content)}
        )
        assert refused.status_code == 403
    portal_list = client_for(world.portal_admin_a).get("/devices/")
    assert portal_list.status_code == 200
    assert "/devices/import/" not in portal_list.content.decode()
    # An engineer of customer A cannot pick customer B (as on "new device").
    client = client_for(world.engineer)
    page = client.post(
        "/devices/import/", {"customer": world.customer_b.pk, "file": _upload(content)}
    )
    assert page.status_code == 400 and page.context["form"].errors["customer"]
    # Nor confirm a preview held for a customer they no longer serve: 404.
    ok = client.post(
        "/devices/import/", {"customer": world.customer_a.pk, "file": _upload(content)}
    )
    world.team_a.customers.remove(world.customer_a)
    confirm = client.post("/devices/import/confirm/", {"token": ok.context["token"]})
    assert confirm.status_code == 404
    assert not Device.objects.exists()


def test_the_template_speaks_the_users_language(world):
    client = client_for(world.engineer)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = client.get("/devices/import/template/")
    assert english.status_code == 200 and english["Content-Type"].startswith("text/csv")
    assert english.content.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 with the BOM
    assert english.content.decode("utf-8-sig").strip().split(",") == EN_HEADER
    assert "attachment" in english["Content-Disposition"]
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    chinese = client.get("/devices/import/template/").content.decode("utf-8-sig")
    assert chinese.strip().split(",") == ZH_HEADER
    # The template is itself a valid (empty) device file.
    empty = services.device_import_read(content=chinese.encode(), filename="t.csv")
    assert empty.rows == [] and empty.fields == EN_HEADER


# API -----------------------------------------------------------------------------------------


def _api_import(client, world, content, filename="devices.csv", customer=None, **fields):
    body = {
        "customer_id": (customer or world.customer_a).pk,
        "file": _upload(content, filename),
        **fields,
    }
    return call(client, "post", "/api/v1/devices/import", Multipart(body))


def test_the_api_imports_a_file_with_a_dry_run_first(world):
    client = api_client(world.engineer)
    content = _xlsx([["名称", "类型", "序列号"], ["交换机-1", "交换机", "H3C-1"]])
    dry = _api_import(client, world, content, "d.xlsx", dry_run="true")
    assert dry.status_code == 200, dry.body
    assert dry.body["dry_run"] is True and dry.body["created"] == 1
    assert dry.body["rows"] == [
        {"row": 2, "action": "create", "name": "交换机-1", "serial": "H3C-1", "device_id": None}
    ]
    assert not Device.objects.exists()
    done = _api_import(client, world, content, "d.xlsx")
    assert done.status_code == 200 and done.body["dry_run"] is False
    device = Device.objects.get(serial="H3C-1")
    assert done.body["rows"][0]["device_id"] == device.pk and device.kind == "switch"
    again = _api_import(client, world, content, "d.xlsx")
    assert (again.body["created"], again.body["updated"], again.body["unchanged"]) == (0, 0, 1)


def test_the_api_answers_problems_with_rows_and_columns(world):
    client = api_client(world.engineer)
    bad = _api_import(client, world, _csv([["名称", "IP地址"], ["a", "1.1.1.1"], ["b", "nope"]]))
    assert bad.status_code == 422
    assert bad["Content-Type"].startswith("application/problem+json")
    assert [(e["row"], e["field"], e["column"]) for e in bad.body["errors"]] == [
        (3, "ip_address", "IP地址")
    ]
    assert all(e["message"] and e["code"] for e in bad.body["errors"])
    big = _api_import(client, world, b"x" * (services.IMPORT_MAX_BYTES + 1))
    assert big.status_code == 422 and big.body["errors"][0]["field"] == "file"
    broken = _api_import(client, world, b"not a workbook", "d.xlsx")
    assert broken.status_code == 422 and broken.body["errors"][0]["field"] == "file"
    missing = call(client, "post", "/api/v1/devices/import", Multipart({"customer_id": 1}))
    assert missing.status_code == 422
    assert not Device.objects.exists()


def test_the_api_keeps_to_the_users_role_and_customers(world):
    content = _csv([["name"], ["PC"]])
    assert _api_import(api_client(world.portal_admin_a), world, content).status_code == 403
    assert _api_import(api_client(world.sales), world, content).status_code == 403
    outside = _api_import(api_client(world.engineer), world, content, customer=world.customer_b)
    assert outside.status_code == 404 and outside.body["status"] == 404
    assert _api_import(api_client(world.other_engineer), world, content).status_code == 404
    assert not Device.objects.exists()
