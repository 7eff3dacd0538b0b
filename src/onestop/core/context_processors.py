"""Template context shared by every page: the navigation the user may see."""

from __future__ import annotations


def navigation(request):
    return {}
