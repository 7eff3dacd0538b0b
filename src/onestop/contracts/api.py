"""API for contracts, SLA policies and business calendars."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from onestop.contracts import selectors, services
from onestop.contracts.models import (
    BusinessCalendar,
    CalendarDay,
    Contract,
    Priority,
    SlaEscalation,
    SlaPolicy,
)
from onestop.core.api import resolve_one, resolve_refs
from onestop.core.api_base import InputSchema, crud_endpoints
from onestop.core.models import Customer, ServiceLine, Site, Team, User
from onestop.core.permissions import require

router = Router()

# Calendars -----------------------------------------------------------------------------------

Segment = tuple[int, int]


class CalendarOut(Schema):
    id: int
    name: str
    preset: str
    time_zone: str
    weekly_hours: list[list[Segment]]
    uses_holidays: bool
    is_default: bool
    data_years: list[int]

    @staticmethod
    def resolve_data_years(obj: BusinessCalendar) -> list[int]:
        return sorted(year.year for year in obj.years.all())


class CalendarIn(InputSchema):
    name: str = Field(min_length=1, max_length=100)
    preset: BusinessCalendar.Preset = BusinessCalendar.Preset.FIVE_BY_EIGHT
    time_zone: str = Field("Asia/Shanghai", max_length=64)
    weekly_hours: list[list[Segment]] | None = Field(
        None, description="Seven days (Monday first) of [start, end] minutes after midnight"
    )
    uses_holidays: bool | None = None
    is_default: bool = False


class CalendarPatch(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=100)
    time_zone: str | None = Field(None, max_length=64)
    weekly_hours: list[list[Segment]] | None = None
    uses_holidays: bool | None = None
    is_default: bool | None = None


class CalendarFilters(Schema):
    q: str | None = None


class CalendarDayOut(Schema):
    id: int
    date: dt.date
    kind: str
    name: str
    hours: list[Segment]
    source: str


class CalendarDayIn(InputSchema):
    date: dt.date
    kind: CalendarDay.Kind
    name: str = Field("", max_length=100)
    hours: list[Segment] = []


class ChineseImportIn(InputSchema):
    years: list[int] = Field(min_length=1, max_length=10)


class ImportOut(Schema):
    years: dict[int, dict[str, int]]


class DueIn(InputSchema):
    start: dt.datetime
    minutes: int = Field(ge=0, le=60 * 24 * 366)


class DueOut(Schema):
    due_at: dt.datetime
    provisional: bool
    years_without_data: list[int]


crud_endpoints(
    router,
    "/calendars",
    module=__name__,
    name="calendar",
    plural="calendars",
    tag="calendars",
    model=BusinessCalendar,
    out=CalendarOut,
    filters=CalendarFilters,
    create_in=CalendarIn,
    patch_in=CalendarPatch,
    list=selectors.calendar_list,
    get=selectors.calendar_get,
    create=services.calendar_create,
    update=services.calendar_update,
    delete=services.calendar_delete,
    refetch=True,
)


@router.get("/calendars/{int:id}/days", response=list[CalendarDayOut], tags=["calendars"])
def list_calendar_days(request: HttpRequest, id: int, year: int | None = None):
    calendar = selectors.calendar_get(user=request.user, pk=id)
    return selectors.calendar_days(calendar=calendar, year=year)


@router.put("/calendars/{int:id}/days", response=CalendarDayOut, tags=["calendars"])
def set_calendar_day(request: HttpRequest, id: int, payload: CalendarDayIn):
    """Marks a date as a holiday or a (make-up) working day, replacing what it had."""
    calendar = selectors.calendar_get(user=request.user, pk=id)
    require(request.user, "change", calendar)
    return services.calendar_day_set(actor=request.user, calendar=calendar, **payload.dict())


@router.post("/calendars/{int:id}/import-chinese", response=ImportOut, tags=["calendars"])
def import_chinese_days(request: HttpRequest, id: int, payload: ChineseImportIn):
    """Imports China's statutory holidays and make-up workdays (调休) for the given years."""
    calendar = selectors.calendar_get(user=request.user, pk=id)
    require(request.user, "change", calendar)
    summary = services.calendar_import_chinese(
        actor=request.user, calendar=calendar, years=payload.years
    )
    return {"years": summary}


@router.post("/calendars/{int:id}/due", response=DueOut, tags=["calendars"])
def compute_due(request: HttpRequest, id: int, payload: DueIn):
    """When `minutes` of business time after `start` have passed on this calendar."""
    calendar = selectors.calendar_get(user=request.user, pk=id)
    result = selectors.calendar_engine(calendar).add_minutes(payload.start, payload.minutes)
    return {
        "due_at": result.at,
        "provisional": result.provisional,
        "years_without_data": list(result.years_without_data),
    }


# SLA policies --------------------------------------------------------------------------------


class TargetSchema(Schema):
    priority: Priority
    first_response_minutes: int = Field(ge=1, le=60 * 24 * 366)
    resolution_minutes: int = Field(ge=1, le=60 * 24 * 366)
    next_update_minutes: int | None = Field(None, ge=1, le=60 * 24 * 366)


class TargetIn(InputSchema, TargetSchema):
    pass


class EscalationSchema(Schema):
    percent: int = Field(ge=1, le=300, description="Share of the resolution target; 100 = breach")
    action: SlaEscalation.Action
    team_id: int | None = None
    assignee_id: int | None = None


class EscalationIn(InputSchema, EscalationSchema):
    pass


class SlaPolicyOut(Schema):
    id: int
    name: str
    description: str
    is_default: bool
    targets: list[TargetSchema]
    escalations: list[EscalationSchema]

    @staticmethod
    def resolve_targets(obj: SlaPolicy) -> list[Any]:
        return list(obj.targets.all())

    @staticmethod
    def resolve_escalations(obj: SlaPolicy) -> list[Any]:
        return list(obj.escalations.all())


class SlaPolicyIn(InputSchema):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=10000)
    is_default: bool = False
    targets: list[TargetIn] = Field(min_length=1, max_length=4)
    escalations: list[EscalationIn] = Field([], max_length=10)


class SlaPolicyPatch(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=10000)
    is_default: bool | None = None
    targets: list[TargetIn] | None = Field(None, min_length=1, max_length=4)
    escalations: list[EscalationIn] | None = Field(None, max_length=10)


def _escalation_refs(user, data: dict[str, Any]) -> dict[str, Any]:
    if data.get("escalations") is not None:
        data["escalations"] = [
            {
                "percent": level["percent"],
                "action": level["action"],
                "team": resolve_one(user, Team, level.get("team_id"), f"escalations.{i}.team_id"),
                "assignee": resolve_one(
                    user, User, level.get("assignee_id"), f"escalations.{i}.assignee_id"
                ),
            }
            for i, level in enumerate(data["escalations"])
        ]
    return data


class SlaPolicyFilters(Schema):
    q: str | None = None


crud_endpoints(
    router,
    "/sla-policies",
    module=__name__,
    name="sla_policy",
    plural="sla_policies",
    tag="sla-policies",
    model=SlaPolicy,
    out=SlaPolicyOut,
    filters=SlaPolicyFilters,
    create_in=SlaPolicyIn,
    patch_in=SlaPolicyPatch,
    list=selectors.sla_policy_list,
    get=selectors.sla_policy_get,
    create=services.sla_policy_create,
    update=services.sla_policy_update,
    delete=services.sla_policy_delete,
    refs=_escalation_refs,
    refetch=True,
)


# Contracts -----------------------------------------------------------------------------------


class ContractOut(Schema):
    id: int
    customer_id: int
    number: str
    name: str
    service_lines: list[str]
    status: str
    start_date: dt.date
    end_date: dt.date | None
    pricing: str
    unit_price: Decimal | None
    quantity: int | None
    block_minutes: int | None
    site_ids: list[int]
    sla_policy_id: int | None
    calendar_id: int | None
    onsite_response_hours: int | None
    renewal_reminder_days: int
    is_customer_default: bool
    notes: str

    @staticmethod
    def resolve_site_ids(obj: Contract) -> list[int]:
        return sorted(site.pk for site in obj.sites.all())


class ContractFields(InputSchema):
    service_lines: list[ServiceLine] = []
    status: Contract.Status = Contract.Status.DRAFT
    end_date: dt.date | None = None
    pricing: Contract.Pricing = Contract.Pricing.FIXED_MONTHLY
    unit_price: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=2)
    quantity: int | None = Field(None, ge=0, le=1_000_000)
    block_minutes: int | None = Field(None, ge=1, le=10_000_000)
    site_ids: list[int] = []
    sla_policy_id: int | None = None
    calendar_id: int | None = None
    onsite_response_hours: int | None = Field(None, ge=0, le=24 * 365)
    renewal_reminder_days: int = Field(60, ge=0, le=3650)
    is_customer_default: bool = False
    notes: str = Field("", max_length=10000)


class ContractIn(ContractFields):
    customer_id: int
    number: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    start_date: dt.date


class ContractPatch(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=200)
    service_lines: list[ServiceLine] | None = None
    status: Contract.Status | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    pricing: Contract.Pricing | None = None
    unit_price: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=2)
    quantity: int | None = Field(None, ge=0, le=1_000_000)
    block_minutes: int | None = Field(None, ge=1, le=10_000_000)
    site_ids: list[int] | None = None
    sla_policy_id: int | None = None
    calendar_id: int | None = None
    onsite_response_hours: int | None = Field(None, ge=0, le=24 * 365)
    renewal_reminder_days: int | None = Field(None, ge=0, le=3650)
    is_customer_default: bool | None = None
    notes: str | None = Field(None, max_length=10000)


class ContractFilters(Schema):
    q: str | None = None
    customer_id: int | None = None
    status: Contract.Status | None = None
    service_line: ServiceLine | None = None
    ending_before: dt.date | None = None


_CONTRACT_REFS = {
    "customer_id": ("customer", Customer),
    "site_ids": ("sites", Site),
    "sla_policy_id": ("sla_policy", SlaPolicy),
    "calendar_id": ("calendar", BusinessCalendar),
}


def _contract_refs(user, data: dict[str, Any]) -> dict[str, Any]:
    return resolve_refs(user, data, _CONTRACT_REFS)


crud_endpoints(
    router,
    "/contracts",
    module=__name__,
    name="contract",
    plural="contracts",
    tag="contracts",
    model=Contract,
    out=ContractOut,
    filters=ContractFilters,
    create_in=ContractIn,
    patch_in=ContractPatch,
    list=selectors.contract_list,
    get=selectors.contract_get,
    create=services.contract_create,
    update=services.contract_update,
    delete=services.contract_delete,
    refs=_contract_refs,
    require_view=("list", "get"),
    refetch=True,
)
