"""Static files that come from installed packages rather than from an app's static folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_DIR = Path(plotly.__file__).parent / "package_data"
PLOTLY_FILE = "plotly.min.js"
PLOTLY_PATH = f"plotly/{PLOTLY_FILE}"


class PlotlyFinder(BaseFinder):
    """Serves plotly.min.js from the installed plotly package as /static/plotly/plotly.min.js —
    that one file, not the package's datasets."""

    def check(self, **kwargs: Any) -> list:
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        if path != PLOTLY_PATH:
            return [] if find_all or kwargs.get("all") else ""
        found = str(PLOTLY_DIR / PLOTLY_FILE)
        return [found] if find_all or kwargs.get("all") else found

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        storage = FileSystemStorage(location=str(PLOTLY_DIR))
        storage.prefix = "plotly"  # collectstatic puts the file under this folder
        yield PLOTLY_FILE, storage
