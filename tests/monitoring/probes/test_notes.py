"""Probe messages are notes: written in English by Django-free probes, stored as data, and shown
in the reader's language (the catalogue holds every template the probes write)."""

from __future__ import annotations

import ast
import asyncio
import socket
import string
from pathlib import Path

import polib
import pytest
from django.utils import translation

from onestop.assets import services as asset_services
from onestop.assets.models import Device
from onestop.monitoring import services
from onestop.monitoring.models import Check, CheckStateChange, note_text
from onestop.monitoring.probes import base, tcp
from onestop.monitoring.probes.base import Note, note, notes_joined, verbatim
from tests.conftest import client_for
from tests.monitoring.results import record_result

ROOT = Path(__file__).resolve().parents[3]
PROBES = ROOT / "src/onestop/monitoring/probes"
CATALOGUE = ROOT / "src/onestop/locale/zh_Hans/LC_MESSAGES/django.po"


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _probe_templates() -> set[str]:
    """Every literal template passed to note() in the probe modules."""
    found = set()
    for path in PROBES.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "note"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
    return found


def test_every_probe_message_is_translated_with_the_same_fields():
    templates = _probe_templates()
    assert len(templates) > 60  # the walk found the probes' messages
    catalogue = {entry.msgid: entry for entry in polib.pofile(str(CATALOGUE))}
    for template in templates:
        entry = catalogue.get(template)
        assert entry is not None and entry.msgstr, f"not translated: {template!r}"
        assert "fuzzy" not in entry.flags, template
        assert _fields(entry.msgstr) == _fields(template), template


def test_a_note_renders_translated_nested_and_survives_a_json_round_trip():
    hint = note("agent down, ACL, wrong port or wrong community")
    timeout = note(
        "no SNMP answer from {target} within {timeout:g} s (tries: {tries}; {hint})",
        target="10.0.0.1:161",
        timeout=2.0,
        tries=2,
        hint=hint,
    )
    assert str(timeout) == (
        "no SNMP answer from 10.0.0.1:161 within 2 s (tries: 2; agent down, ACL, wrong port or "
        "wrong community)"
    )
    stored = Note.from_data(timeout.as_data())
    assert stored == timeout
    with translation.override("zh-hans"):
        assert note_text(timeout.as_data()) == (
            "10.0.0.1:161 在 2 秒内无 SNMP 应答"
            "（尝试 2 次；设备宕机、ACL 限制、端口错误或团体名错误）"
        )
    joined = notes_joined(
        note("HTTP {status} in {latency:.0f} ms", status=500, latency=12.4),
        note("unexpected status"),
    )
    assert str(joined) == "HTTP 500 in 12 ms; unexpected status"
    with translation.override("zh-hans"):
        assert note_text(joined.as_data()) == "HTTP 500，用时 12 毫秒；状态码不符合预期"


def test_words_that_are_not_ours_stay_as_they_are_and_bad_data_shows_something():
    with translation.override("zh-hans"):
        assert (
            note_text(verbatim("Connection reset by peer").as_data()) == "Connection reset by peer"
        )
        assert note_text({}) == "" and note_text(None) == ""
        # A translation that lost a field falls back to English rather than failing.
        broken = Note("{count} interfaces", {"wrong": 3})
        assert note_text(broken.as_data()) == "{count} interfaces"
    assert base.NO_NOTE.render(lambda text: "catalogue header") == ""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db
def test_a_real_probe_message_is_stored_once_and_read_in_each_users_language(world):
    port = _closed_port()
    result = asyncio.run(tcp.probe_tcp(host="127.0.0.1", port=port, timeout=1))
    assert str(result.note) == "connection refused"
    server = asset_services.device_create(
        actor=None,
        customer=world.customer_a,
        name="SRV-01",
        kind=Device.Kind.SERVER,
        site=world.site_a,
        ip_address="127.0.0.1",
    )
    check = services.check_create(
        actor=None,
        device=server,
        name="RDP",
        kind=Check.Kind.POLLER,
        probe=Check.Probe.TCP,
        params={"port": port},
        mode=Check.Mode.AVAILABILITY,
        consecutive=1,
    )
    change = record_result(check=check, value=None, status=result.status.value, message=result.note)
    assert change is not None
    assert change.note == {"template": "connection refused", "params": {}}
    stored = CheckStateChange.objects.get(pk=change.pk)
    with translation.override("en"):
        assert stored.message == "connection refused"

    world.engineer.language = "zh-hans"
    world.engineer.save(update_fields=["language"])
    chinese = client_for(world.engineer)
    assert "连接被拒绝" in chinese.get(f"/devices/checks/{check.pk}/").content.decode()
    assert chinese.get(f"/api/v1/checks/{check.pk}").json()["last_message"] == "连接被拒绝"

    world.admin.language = "en"
    world.admin.save(update_fields=["language"])
    english = client_for(world.admin)
    page = english.get(f"/devices/checks/{check.pk}/").content.decode()
    assert "connection refused" in page and "连接被拒绝" not in page
