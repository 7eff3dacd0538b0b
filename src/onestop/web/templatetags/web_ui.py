"""Generic template helpers for the layout and shared components."""

from __future__ import annotations

import datetime
import math

from django import template

register = template.Library()


@register.filter
def minutes(value: datetime.timedelta | None) -> int:
    """A duration as whole minutes, rounded up so "try again in N minutes" is never too early."""
    if not value:
        return 0
    return max(1, math.ceil(value.total_seconds() / 60))
