"""User API of monitoring: enrolment tokens, each device's agent and metrics, checks with
their history, the problems list, check templates, maintenance windows, SNMP credentials and
discovery."""

import datetime as dt
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from onestop.assets import selectors as asset_selectors
from onestop.assets.models import Device
from onestop.core.api import resolve_one, resolve_refs
from onestop.core.api_base import Cursor, InputSchema, NewestFirst, crud_endpoints
from onestop.core.models import Customer, Site
from onestop.core.permissions import require
from onestop.metrics import selectors as metric_selectors
from onestop.monitoring import selectors, services
from onestop.monitoring.models import (
    DEFINITION_FIELDS,
    Agent,
    Check,
    CheckDefinition,
    CheckState,
    CheckTemplate,
    DiscoveryJob,
    EnrollmentToken,
    MaintenanceWindow,
    SnmpCredential,
    SnmpTrap,
)

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


crud_endpoints(
    router,
    "/enrollment-tokens",
    module=__name__,
    name="enrollment_token",
    plural="enrollment_tokens",
    tag="agents",
    model=EnrollmentToken,
    out=EnrollmentTokenOut,
    filters=EnrollmentTokenFilters,
    list=selectors.enrollment_token_list,
    get=selectors.enrollment_token_get,
    require_view=("list", "get"),
)


# By hand: the answer carries the raw token, shown once, and the command that uses it.
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


# Checks ---------------------------------------------------------------------------------------

# The definition of a check or template as the API takes it; the services judge the values
# (probe parameters, thresholds in the right order, intervals) and answer with field errors.
NameField = Field(min_length=1, max_length=100)


class CheckDefinitionOut(Schema):
    name: str
    kind: str
    metric: str
    labels: dict[str, str]
    probe: str
    params: dict[str, Any]
    interval: int
    timeout: int
    retries: int
    mode: str
    direction: str
    warning: float | None
    critical: float | None
    recovery: float | None
    hysteresis: float
    consecutive: int
    enabled: bool
    snmp_credential_id: int | None


class CheckOut(CheckDefinitionOut):
    id: int
    device_id: int
    customer_id: int
    template_id: int | None
    overridden_fields: list[str] = Field(
        description="Fields this device sets itself; a template change leaves them alone"
    )
    state: str
    state_since: dt.datetime
    last_value: float | None
    last_message: str
    last_checked_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class CheckDefinitionIn(InputSchema):
    name: str = NameField
    kind: CheckDefinition.Kind = CheckDefinition.Kind.AGENT
    metric: str = Field("", max_length=100)
    labels: dict[str, str] = Field({}, description='Picks one series, e.g. {"mount": "/"}')
    probe: CheckDefinition.Probe | Literal[""] = ""
    params: dict[str, Any] = Field({}, description="What the probe needs: host, port, url …")
    interval: int = Field(60, ge=0)
    timeout: int = Field(5, ge=0)
    retries: int = Field(1, ge=0, le=100)
    mode: CheckDefinition.Mode = CheckDefinition.Mode.THRESHOLD
    direction: CheckDefinition.Direction = CheckDefinition.Direction.HIGHER_IS_WORSE
    warning: float | None = None
    critical: float | None = None
    recovery: float | None = None
    hysteresis: float = 0
    consecutive: int = Field(1, ge=0, le=1000)
    enabled: bool = True
    snmp_credential_id: int | None = Field(None, description="SNMP probes: the credentials")


class CheckDefinitionPatch(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=100)
    kind: CheckDefinition.Kind | None = None
    metric: str | None = Field(None, max_length=100)
    labels: dict[str, str] | None = None
    probe: CheckDefinition.Probe | Literal[""] | None = None
    params: dict[str, Any] | None = None
    interval: int | None = Field(None, ge=0)
    timeout: int | None = Field(None, ge=0)
    retries: int | None = Field(None, ge=0, le=100)
    mode: CheckDefinition.Mode | None = None
    direction: CheckDefinition.Direction | None = None
    warning: float | None = None
    critical: float | None = None
    recovery: float | None = None
    hysteresis: float | None = None
    consecutive: int | None = Field(None, ge=0, le=1000)
    enabled: bool | None = None
    snmp_credential_id: int | None = None


class CheckIn(CheckDefinitionIn):
    device_id: int


class CheckFilters(Schema):
    device_id: int | None = None
    customer_id: int | None = None
    template_id: int | None = None
    state: CheckState | None = None
    kind: CheckDefinition.Kind | None = None
    probe: CheckDefinition.Probe | None = None
    enabled: bool | None = None


class ClearOverridesIn(InputSchema):
    fields: list[str] | None = Field(
        None, description="The fields to follow the template again; all overridden ones if left out"
    )


class CheckStateChangeOut(Schema):
    id: int
    from_state: str
    to_state: str
    value: float | None
    at: dt.datetime
    in_maintenance: bool
    maintenance_window_id: int | None
    message: str


def _definition(user, data: dict[str, Any]) -> dict[str, Any]:
    """The definition fields of a payload, as the services take them."""
    if data.get("probe") is not None:
        data["probe"] = str(data["probe"])
    return resolve_refs(user, data, {"snmp_credential_id": ("snmp_credential", SnmpCredential)})


def _check_refs(user, data: dict[str, Any]) -> dict[str, Any]:
    return resolve_refs(user, _definition(user, data), {"device_id": ("device", Device)})


def _check_filter(qs: QuerySet[Check], filters: CheckFilters) -> QuerySet[Check]:
    given = {key: value for key, value in filters.dict().items() if value is not None}
    if "customer_id" in given:
        given["device__customer_id"] = given.pop("customer_id")
    return qs.filter(**given)


@router.get("/checks", response=list[CheckOut], tags=["checks"])
@paginate(Cursor)
def list_checks(request: HttpRequest, filters: Query[CheckFilters]):
    require(request.user, "view", Check)
    return _check_filter(selectors.check_list(user=request.user), filters)


crud_endpoints(
    router,
    "/checks",
    module=__name__,
    name="check",
    plural="checks",
    tag="checks",
    model=Check,
    out=CheckOut,
    create_in=CheckIn,
    patch_in=CheckDefinitionPatch,
    get=selectors.check_get,
    create=services.check_create,
    update=services.check_update,
    delete=services.check_delete,
    refs=_check_refs,
    require_view=("get",),
    docs={
        "create": """
            A check made by hand on one device (template checks come from /check-templates).
        """,
        "update": """
            Changes a check. On a template's check a field set to another value than the
            template's becomes the device's own (`overridden_fields`); set back, it follows the
            template again.
        """,
        "delete": """
            Deletes a hand-made check and its history; a template's check answers 409 (disable it
            instead).
        """,
    },
)


@router.post("/checks/{int:id}/clear-overrides", response=CheckOut, tags=["checks"])
def clear_check_overrides(request: HttpRequest, id: int, payload: ClearOverridesIn):
    """Makes fields of a template's check follow the template again: those listed in
    `fields`, or all overridden ones (send `{}`). A hand-made check answers 409."""
    check = selectors.check_get(user=request.user, pk=id)
    require(request.user, "change", check)
    fields = payload.fields
    if fields is not None:
        unknown = sorted(set(fields) - set(DEFINITION_FIELDS))
        if unknown:
            raise ValidationError(
                {"fields": _("Not a field of a check: %(fields)s") % {"fields": ", ".join(unknown)}}
            )
    return services.check_override_clear(actor=request.user, check=check, fields=fields)


@router.get("/checks/{int:id}/history", response=list[CheckStateChangeOut], tags=["checks"])
@paginate(NewestFirst)
def check_history(request: HttpRequest, id: int):
    """The check's changes of state, newest first."""
    check = selectors.check_get(user=request.user, pk=id)
    require(request.user, "view", check)
    return selectors.check_history(check=check)


# Problems (checks not OK) ---------------------------------------------------------------------


class ProblemOut(CheckOut):
    device_name: str
    site_id: int | None

    @staticmethod
    def resolve_device_name(obj: Check) -> str:
        return obj.device.name

    @staticmethod
    def resolve_site_id(obj: Check) -> int | None:
        return obj.device.site_id


class ProblemFilters(Schema):
    customer_id: int | None = None
    device_id: int | None = None
    state: CheckState | None = None


@router.get("/problems", response=list[ProblemOut], tags=["checks"])
@paginate(Cursor)
def list_problems(request: HttpRequest, filters: Query[ProblemFilters]):
    """The enabled checks that are not OK (a check without any result yet is pending, not a
    problem). Ordered by id for stable pages; `state=critical` gives the worst."""
    require(request.user, "view", Check)
    qs = selectors.problems_list(user=request.user)
    given = {key: value for key, value in filters.dict().items() if value is not None}
    if "customer_id" in given:
        given["device__customer_id"] = given.pop("customer_id")
    return qs.filter(**given)


@router.get("/problems/{int:id}", response=ProblemOut, tags=["checks"])
def get_problem(request: HttpRequest, id: int):
    """A check while it is a problem; 404 once it is OK again (or was never seen)."""
    problem = selectors.problems_list(user=request.user).filter(pk=id).first()
    if problem is None:
        raise Http404
    require(request.user, "view", problem)
    return problem


# Check templates ------------------------------------------------------------------------------

TEMPLATE_REFS = {"customer_id": ("customer", Customer), "site_id": ("site", Site)}


class CheckTemplateOut(CheckDefinitionOut):
    id: int
    customer_id: int | None
    site_id: int | None
    device_kind: str
    description: str
    created_at: dt.datetime
    updated_at: dt.datetime


class CheckTemplateIn(CheckDefinitionIn):
    customer_id: int | None = Field(None, description="Empty: every customer's devices")
    site_id: int | None = Field(None, description="Empty: every site")
    device_kind: Device.Kind | None = Field(None, description="Empty: every kind of device")
    description: str = Field("", max_length=10000)


class CheckTemplatePatch(CheckDefinitionPatch):
    customer_id: int | None = None
    site_id: int | None = None
    device_kind: Device.Kind | None = None
    description: str | None = Field(None, max_length=10000)


class CheckTemplateFilters(Schema):
    customer_id: int | None = None
    site_id: int | None = None
    device_kind: Device.Kind | None = None


def _template_data(user, data: dict[str, Any]) -> dict[str, Any]:
    data = resolve_refs(user, _definition(user, data), TEMPLATE_REFS)
    if "device_kind" in data:
        data["device_kind"] = str(data["device_kind"] or "")
    return data


@router.get("/check-templates", response=list[CheckTemplateOut], tags=["checks"])
@paginate(Cursor)
def list_check_templates(request: HttpRequest, filters: Query[CheckTemplateFilters]):
    require(request.user, "view", CheckTemplate)
    given = {key: value for key, value in filters.dict().items() if value is not None}
    return selectors.check_template_list(user=request.user).filter(**given)


crud_endpoints(
    router,
    "/check-templates",
    module=__name__,
    name="check_template",
    plural="check_templates",
    tag="checks",
    model=CheckTemplate,
    out=CheckTemplateOut,
    create_in=CheckTemplateIn,
    patch_in=CheckTemplatePatch,
    get=selectors.check_template_get,
    create=services.check_template_create,
    update=services.check_template_update,
    delete=services.check_template_delete,
    refs=_template_data,
    require_view=("get",),
    docs={
        "create": "A template (policy): every device in its scope gets its check at once.",
        "update": """
            Changes a template; its checks follow except for the fields a device overrides, devices
            entering its scope get the check and those leaving it lose it.
        """,
        "delete": "Deletes a template and the checks it gave devices.",
    },
)


# Maintenance windows --------------------------------------------------------------------------

WINDOW_REFS = {
    "customer_id": ("customer", Customer),
    "site_id": ("site", Site),
    "device_id": ("device", Device),
}


class MaintenanceWindowOut(Schema):
    id: int
    customer_id: int
    site_id: int | None
    device_id: int | None
    name: str
    reason: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    rrule: str
    duration_minutes: int | None
    time_zone: str
    is_recurring: bool
    created_by_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class MaintenanceWindowIn(InputSchema):
    customer_id: int
    site_id: int | None = Field(None, description="Only this site's devices")
    device_id: int | None = Field(None, description="Only this device")
    name: str = Field(min_length=1, max_length=200)
    reason: str = Field("", max_length=10000)
    starts_at: dt.datetime = Field(description="With its offset; a repeating window's first start")
    ends_at: dt.datetime | None = Field(None, description="One-off windows only")
    rrule: str = Field("", max_length=500, description="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=SU")
    duration_minutes: int | None = Field(None, ge=0, description="Each repeat's length")
    time_zone: str = Field("Asia/Shanghai", max_length=64)


class MaintenanceWindowPatch(InputSchema):
    site_id: int | None = None
    device_id: int | None = None
    name: str | None = Field(None, min_length=1, max_length=200)
    reason: str | None = Field(None, max_length=10000)
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    rrule: str | None = Field(None, max_length=500)
    duration_minutes: int | None = Field(None, ge=0)
    time_zone: str | None = Field(None, max_length=64)


class MaintenanceWindowFilters(Schema):
    customer_id: int | None = None
    site_id: int | None = None
    device_id: int | None = None
    active_at: dt.datetime | None = Field(None, description="Only windows covering this instant")


def _active_at(qs: QuerySet[MaintenanceWindow], at: dt.datetime) -> QuerySet[MaintenanceWindow]:
    """Windows covering the instant: one-off ones filtered in the database, repeating ones
    (few) by their rule."""
    if timezone.is_naive(at):
        raise ValidationError({"active_at": _("Give the time with its time zone.")})
    started = qs.filter(starts_at__lte=at)
    repeating = [
        window.pk
        for window in started.exclude(rrule="")
        .select_related(None)
        .only("pk", "starts_at", "ends_at", "rrule", "duration_minutes", "time_zone")
        if window.covers(at)
    ]
    return started.filter(Q(rrule="", ends_at__gt=at) | Q(pk__in=repeating))


@router.get("/maintenance-windows", response=list[MaintenanceWindowOut], tags=["checks"])
@paginate(Cursor)
def list_maintenance_windows(request: HttpRequest, filters: Query[MaintenanceWindowFilters]):
    require(request.user, "view", MaintenanceWindow)
    given = {key: value for key, value in filters.dict().items() if value is not None}
    at = given.pop("active_at", None)
    qs = selectors.maintenance_window_list(user=request.user).filter(**given)
    return qs if at is None else _active_at(qs, at)


def _window_refs(user, data: dict[str, Any]) -> dict[str, Any]:
    return resolve_refs(user, data, WINDOW_REFS)


crud_endpoints(
    router,
    "/maintenance-windows",
    module=__name__,
    name="maintenance_window",
    plural="maintenance_windows",
    tag="checks",
    model=MaintenanceWindow,
    out=MaintenanceWindowOut,
    create_in=MaintenanceWindowIn,
    patch_in=MaintenanceWindowPatch,
    get=selectors.maintenance_window_get,
    create=services.maintenance_window_create,
    update=services.maintenance_window_update,
    delete=services.maintenance_window_delete,
    refs=_window_refs,
    require_view=("get",),
    docs={
        "create": """
            A one-off window (`starts_at` to `ends_at`) or a repeating one (`rrule` and
            `duration_minutes`, read in `time_zone`) for a customer, one of its sites or one device.
        """,
    },
)


# SNMP credentials ------------------------------------------------------------------------------


class SnmpCredentialOut(Schema):
    id: int
    customer_id: int | None
    name: str
    version: str
    user: str
    auth_protocol: str
    priv_protocol: str
    context: str
    trap_engine_ids: list[str] = Field(description="v3 trap senders' engine ids (hex)")
    has_community: bool = Field(description="The community itself is never shown")
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_has_community(obj: SnmpCredential) -> bool:
        return bool(obj.community_encrypted)

    @staticmethod
    def resolve_trap_engine_ids(obj: SnmpCredential) -> list[str]:
        return obj.trap_engine_ids.split()


class SnmpCredentialIn(InputSchema):
    customer_id: int | None = Field(None, description="Empty: usable for every customer")
    name: str = NameField
    version: SnmpCredential.Version = SnmpCredential.Version.V2C
    community: str = Field("", max_length=200, description="v2c; stored encrypted")
    user: str = Field("", max_length=100)
    auth_protocol: SnmpCredential.Auth = SnmpCredential.Auth.NONE
    auth_key: str = Field("", max_length=200, description="v3; stored encrypted")
    priv_protocol: SnmpCredential.Privacy = SnmpCredential.Privacy.NONE
    priv_key: str = Field("", max_length=200, description="v3; stored encrypted")
    context: str = Field("", max_length=100)
    trap_engine_ids: list[str] = Field(
        [], max_length=200, description="v3 traps: the engine id (hex) of each sending device"
    )


class SnmpCredentialPatch(InputSchema):
    customer_id: int | None = None
    name: str | None = Field(None, min_length=1, max_length=100)
    version: SnmpCredential.Version | None = None
    community: str | None = Field(None, max_length=200, description="Left out: unchanged")
    user: str | None = Field(None, max_length=100)
    auth_protocol: SnmpCredential.Auth | None = None
    auth_key: str | None = Field(None, max_length=200, description="Left out: unchanged")
    priv_protocol: SnmpCredential.Privacy | None = None
    priv_key: str | None = Field(None, max_length=200, description="Left out: unchanged")
    context: str | None = Field(None, max_length=100)
    trap_engine_ids: list[str] | None = Field(None, max_length=200)


def _credential_data(user, data: dict[str, Any]) -> dict[str, Any]:
    if data.get("trap_engine_ids") is not None:
        data["trap_engine_ids"] = "\n".join(str(line) for line in data["trap_engine_ids"])
    for key in ("version", "auth_protocol", "priv_protocol"):
        if data.get(key) is not None:
            data[key] = str(data[key])
    return resolve_refs(user, data, {"customer_id": ("customer", Customer)})


@router.get("/snmp-credentials", response=list[SnmpCredentialOut], tags=["poller"])
@paginate(Cursor)
def list_snmp_credentials(request: HttpRequest, customer_id: int | None = None):
    require(request.user, "view", SnmpCredential)
    qs = selectors.snmp_credential_list(user=request.user)
    return qs if customer_id is None else qs.filter(customer_id=customer_id)


crud_endpoints(
    router,
    "/snmp-credentials",
    module=__name__,
    name="snmp_credential",
    plural="snmp_credentials",
    tag="poller",
    model=SnmpCredential,
    out=SnmpCredentialOut,
    create_in=SnmpCredentialIn,
    patch_in=SnmpCredentialPatch,
    get=selectors.snmp_credential_get,
    create=services.snmp_credential_create,
    update=services.snmp_credential_update,
    delete=services.snmp_credential_delete,
    refs=_credential_data,
    require_view=("get",),
    docs={
        "create": """
            Credentials for SNMP checks and discovery; the community and keys are write-only.
        """,
        "delete": "Deletes credentials that no check or template uses (409 otherwise).",
    },
)


# What the poller polls, and what it received ---------------------------------------------------


class PollerTargetOut(Schema):
    id: int = Field(description="The check's id")
    device_id: int
    probe: str
    address: str = Field(description="The host, URL or DNS server the probe goes to")
    interval: int
    timeout: int
    state: str
    last_checked_at: dt.datetime | None

    @staticmethod
    def resolve_address(obj: Check) -> str:
        params = obj.params or {}
        return str(
            params.get("url")
            or params.get("host")
            or params.get("server")
            or obj.device.ip_address
            or obj.device.hostname
        )


@router.get("/poller/targets", response=list[PollerTargetOut], tags=["poller"])
@paginate(Cursor)
def list_poller_targets(request: HttpRequest, device_id: int | None = None):
    """The enabled poller checks the user may see, as the poller runs them."""
    require(request.user, "view", Check)
    qs = selectors.check_list(user=request.user).filter(enabled=True, kind=Check.Kind.POLLER)
    return qs if device_id is None else qs.filter(device_id=device_id)


@router.get("/poller/targets/{int:id}", response=PollerTargetOut, tags=["poller"])
def get_poller_target(request: HttpRequest, id: int):
    check = selectors.check_get(user=request.user, pk=id)
    require(request.user, "view", check)
    if not check.enabled or check.kind != Check.Kind.POLLER:
        raise Http404
    return check


class SnmpTrapOut(Schema):
    id: int
    device_id: int | None
    source: str
    version: str
    trap_oid: str
    uptime_s: float | None
    variables: dict[str, str]
    received_at: dt.datetime


@router.get("/snmp-traps", response=list[SnmpTrapOut], tags=["poller"])
@paginate(NewestFirst)
def list_snmp_traps(request: HttpRequest, device_id: int | None = None):
    """Received SNMP notifications, newest first."""
    require(request.user, "view", SnmpTrap)
    qs = selectors.snmp_trap_list(user=request.user)
    return qs if device_id is None else qs.filter(device_id=device_id)


@router.get("/snmp-traps/{int:id}", response=SnmpTrapOut, tags=["poller"])
def get_snmp_trap(request: HttpRequest, id: int):
    trap = selectors.snmp_trap_get(user=request.user, pk=id)
    require(request.user, "view", trap)
    return trap


# SNMP discovery -------------------------------------------------------------------------------

DISCOVERY_REFS = {
    "customer_id": ("customer", Customer),
    "site_id": ("site", Site),
    "snmp_credential_id": ("snmp_credential", SnmpCredential),
}


class DiscoveryJobOut(Schema):
    id: int
    customer_id: int
    site_id: int | None
    network: str
    snmp_credential_id: int
    port: int
    status: str = Field(description="queued, running, done or failed")
    hosts_total: int = Field(description="Addresses swept")
    hosts_answered: int = Field(description="Addresses where an SNMP agent answered")
    devices_created: int
    devices_updated: int
    message: str
    created_by_id: int | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class DiscoveryResultOut(Schema):
    address: str
    device_id: int | None = Field(None, description="Empty when the device could not be stored")
    name: str = ""
    sys_name: str = ""
    vendor: str = ""
    model: str = ""
    kind: str = ""
    interfaces: int = 0
    action: str = Field("", description="created, updated, unchanged or error")
    error: str = ""


class DiscoveryJobDetailOut(DiscoveryJobOut):
    results: list[DiscoveryResultOut] = Field(description="One row per device that answered")

    @staticmethod
    def resolve_results(obj: DiscoveryJob) -> list[dict[str, Any]]:
        return [row for row in obj.results or [] if isinstance(row, dict)]


class DiscoveryJobIn(InputSchema):
    customer_id: int
    site_id: int | None = Field(None, description="Where the devices found are placed")
    network: str = Field(
        min_length=1,
        max_length=50,
        description="CIDR (or one address) of at most 4,096 addresses, e.g. 10.1.20.0/24",
    )
    snmp_credential_id: int = Field(description="The customer's credentials or provider-wide ones")
    port: int = Field(161, description="The SNMP port")


class DiscoveryJobFilters(Schema):
    customer_id: int | None = None
    status: DiscoveryJob.Status | None = None


@router.get("/discovery-jobs", response=list[DiscoveryJobOut], tags=["poller"])
@paginate(NewestFirst)
def list_discovery_jobs(request: HttpRequest, filters: Query[DiscoveryJobFilters]):
    """SNMP discoveries, newest first (the found devices are in each job's detail)."""
    require(request.user, "view", DiscoveryJob)
    given = {key: value for key, value in filters.dict().items() if value is not None}
    return selectors.discovery_job_list(user=request.user).filter(**given)


@router.get("/discovery-jobs/{int:id}", response=DiscoveryJobDetailOut, tags=["poller"])
def get_discovery_job(request: HttpRequest, id: int):
    job = selectors.discovery_job_get(user=request.user, pk=id)
    require(request.user, "view", job)
    return job


@router.post("/discovery-jobs", response={201: DiscoveryJobOut}, tags=["poller"])
def create_discovery_job(request: HttpRequest, payload: DiscoveryJobIn):
    """Starts a discovery: a worker sweeps the network with SNMP and adds the devices that
    answer to the customer's asset register. Answers at once with the job, `queued`; follow
    it with GET /discovery-jobs/{id}."""
    require(request.user, "add", DiscoveryJob)
    data = resolve_refs(request.user, payload.dict(), DISCOVERY_REFS)
    return Status(201, services.discovery_job_create(actor=request.user, **data))
