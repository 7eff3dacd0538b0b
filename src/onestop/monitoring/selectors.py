"""Reads of the agent side, scoped to the user."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from onestop.assets.models import Device
from onestop.core.models import User
from onestop.core.scoping import restrict
from onestop.core.selectors import get_visible
from onestop.monitoring.models import Agent, EnrollmentToken


def enrollment_token_list(*, user: User, site_id: int | None = None) -> QuerySet[EnrollmentToken]:
    qs = restrict(EnrollmentToken.objects.select_related("site__customer"), user)
    if site_id:
        qs = qs.filter(site_id=site_id)
    return qs


def enrollment_token_get(*, user: User, pk: Any) -> EnrollmentToken:
    return get_visible(EnrollmentToken.objects.select_related("site__customer"), user, pk)


def agent_for(*, user: User, device: Device) -> Agent | None:
    return restrict(Agent.objects.filter(device=device), user).first()


def agents_by_device(*, device_ids: list[int]) -> dict[int, Agent]:
    """The agents of the devices listed (one query), for status columns."""
    return {agent.device_id: agent for agent in Agent.objects.filter(device_id__in=device_ids)}
