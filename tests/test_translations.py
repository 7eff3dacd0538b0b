"""The Chinese and English catalogues are complete and compiled: no user-facing string is left
untranslated, and no string in the code is missing from the catalogues."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polib

from tests.conftest import require_peer

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "onestop"
CATALOGUE = PACKAGE / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def _entries(path: Path) -> list[polib.POEntry]:
    return [entry for entry in polib.pofile(str(path)) if not entry.obsolete]


def test_chinese_catalogue_is_complete():
    entries = _entries(CATALOGUE)
    assert len(entries) > 100
    untranslated = [e.msgid for e in entries if not e.translated()]
    fuzzy = [e.msgid for e in entries if "fuzzy" in e.flags]
    assert not untranslated, f"untranslated: {untranslated[:20]}"
    assert not fuzzy, f"fuzzy: {fuzzy[:20]}"


def test_compiled_catalogue_matches_the_source():
    compiled = polib.mofile(str(CATALOGUE.with_suffix(".mo")))
    translations = {(e.msgctxt, e.msgid): (e.msgstr, e.msgstr_plural) for e in compiled}
    for entry in _entries(CATALOGUE):
        assert translations.get((entry.msgctxt, entry.msgid)) == (
            entry.msgstr,
            entry.msgstr_plural,
        ), f"run `make messages`: {entry.msgid!r} differs in the .mo"


def test_every_string_in_the_code_is_in_the_catalogue(tmp_path):
    require_peer(
        shutil.which("xgettext") is not None, "gettext is not installed (apt install gettext)"
    )
    copy = tmp_path / "onestop"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "makemessages",
            "-l",
            "zh_Hans",
            "--no-obsolete",
            "--no-location",
            "--settings=onestop.config.settings_test",
        ],
        cwd=copy,
        check=True,
        capture_output=True,
        timeout=300,
    )
    extracted = {
        (e.msgctxt, e.msgid) for e in _entries(copy / "locale/zh_Hans/LC_MESSAGES/django.po")
    }
    committed = {(e.msgctxt, e.msgid) for e in _entries(CATALOGUE)}
    missing = sorted(str(m) for m in extracted - committed)
    assert not missing, f"strings missing from the catalogue (run `make messages`): {missing[:20]}"
