"""User API of the agent side: enrolment tokens, and each device's agent."""

import datetime as dt

from django.conf import settings
from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from onestop.assets import selectors as asset_selectors
from onestop.core.api import Cursor, resolve_one
from onestop.core.api_base import InputSchema
from onestop.core.models import Site
from onestop.core.permissions import require
from onestop.metrics import selectors as metric_selectors
from onestop.monitoring import selectors, services
from onestop.monitoring.models import Agent, EnrollmentToken

router = Router()


def enroll_command(raw_token: str) -> str:
    """The exact command an installer runs on the machine to enrol it."""
    return f"onestop-agent enroll --server {settings.ONESTOP_PUBLIC_URL} --token {raw_token}"


class EnrollmentTokenOut(Schema):
    id: int
    site_id: int
    customer_id: int
    name: str
    prefix: str
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    uses: int
    created_at: dt.datetime


class EnrollmentTokenCreated(EnrollmentTokenOut):
    token: str = Field(description="Shown once: only its hash is stored")
    command: str


class EnrollmentTokenIn(InputSchema):
    site_id: int
    name: str = Field("", max_length=100)
    days: int = Field(7, ge=1, le=90)


class EnrollmentTokenFilters(Schema):
    site_id: int | None = None


@router.get("/enrollment-tokens", response=list[EnrollmentTokenOut], tags=["agents"])
@paginate(Cursor)
def list_enrollment_tokens(request: HttpRequest, filters: Query[EnrollmentTokenFilters]):
    require(request.user, "view", EnrollmentToken)
    return selectors.enrollment_token_list(user=request.user, **filters.dict())


@router.get("/enrollment-tokens/{int:id}", response=EnrollmentTokenOut, tags=["agents"])
def get_enrollment_token(request: HttpRequest, id: int):
    token = selectors.enrollment_token_get(user=request.user, pk=id)
    require(request.user, "view", token)
    return token


@router.post("/enrollment-tokens", response={201: EnrollmentTokenCreated}, tags=["agents"])
def create_enrollment_token(request: HttpRequest, payload: EnrollmentTokenIn):
    require(request.user, "add", EnrollmentToken)
    site = resolve_one(request.user, Site, payload.site_id, "site_id")
    token, raw = services.enrollment_token_create(
        actor=request.user, site=site, name=payload.name, days=payload.days
    )
    token.token, token.command = raw, enroll_command(raw)
    return Status(201, token)


@router.post("/enrollment-tokens/{int:id}/revoke", response=EnrollmentTokenOut, tags=["agents"])
def revoke_enrollment_token(request: HttpRequest, id: int):
    token = selectors.enrollment_token_get(user=request.user, pk=id)
    require(request.user, "change", token)
    return services.enrollment_token_revoke(actor=request.user, token=token)


class AgentOut(Schema):
    id: int
    device_id: int
    machine_id: str
    hostname: str
    agent_version: str
    enrolled_at: dt.datetime
    last_seen_at: dt.datetime | None
    online: bool
    revoked_at: dt.datetime | None
    interval: int
    watch_services: list[str]
    watch_processes: list[str]
    dropped_reports: int
    rejected_samples: int

    @staticmethod
    def resolve_online(obj: Agent) -> bool:
        return obj.is_online()


class AgentPatch(InputSchema):
    interval: int | None = Field(None, ge=15, le=3600)
    watch_services: list[str] | None = None
    watch_processes: list[str] | None = None


def _agent(request: HttpRequest, id: int) -> Agent:
    device = asset_selectors.device_get(user=request.user, pk=id)
    agent = selectors.agent_for(user=request.user, device=device)
    if agent is None:
        raise Http404
    return agent


@router.get("/devices/{int:id}/agent", response=AgentOut, tags=["agents"])
def get_agent(request: HttpRequest, id: int):
    agent = _agent(request, id)
    require(request.user, "view", agent)
    return agent


@router.patch("/devices/{int:id}/agent", response=AgentOut, tags=["agents"])
def update_agent(request: HttpRequest, id: int, payload: AgentPatch):
    agent = _agent(request, id)
    require(request.user, "change", agent)
    return services.agent_config_set(
        actor=request.user, agent=agent, **payload.dict(exclude_unset=True)
    )


@router.post("/devices/{int:id}/agent/revoke", response=AgentOut, tags=["agents"])
def revoke_agent(request: HttpRequest, id: int):
    agent = _agent(request, id)
    require(request.user, "change", agent)
    return services.agent_revoke(actor=request.user, agent=agent)


# Metrics of a device --------------------------------------------------------------------------


class MetricQuery(Schema):
    name: str = Field("cpu.percent", max_length=100)
    start: dt.datetime | None = Field(None, alias="from")
    end: dt.datetime | None = Field(None, alias="to")
    step: int | None = Field(None, ge=1, le=86400)


class MetricSeriesOut(Schema):
    name: str
    labels: dict[str, str]
    resolution: int = Field(description="0: raw samples; 300 or 3600: rollups of that many s")
    step: int
    points: list[tuple[float, float, float, float, int]] = Field(
        description="[unix time, min, avg, max, count] per bucket"
    )


@router.get("/devices/{int:id}/metrics", response=list[MetricSeriesOut], tags=["devices"])
def device_metrics(request: HttpRequest, id: int, query: Query[MetricQuery]):
    """A device's series of one metric, downsampled for charts (at most 1,000 points each);
    by default the last 24 hours."""
    device = asset_selectors.device_get(user=request.user, pk=id)
    require(request.user, "view", device)
    end = query.end or timezone.now()
    start = query.start or end - dt.timedelta(hours=24)
    return [
        {
            "name": series.name,
            "labels": series.labels,
            "resolution": series.resolution,
            "step": series.step,
            "points": [tuple(point) for point in series.points],
        }
        for series in metric_selectors.series_query(
            source_id=device.pk, name=query.name, start=start, end=end, step=query.step
        )
    ]
