"""API for contracts, SLA policies and business calendars."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from onestop.contracts import selectors, services
from onestop.contracts.models import (
    BusinessCalendar,
    CalendarDay,
    Contract,
    Priority,
    SlaEscalation,
    SlaPolicy,
)
from onestop.core.api import Cursor, resolve_one, resolve_refs
from onestop.core.api_base import InputSchema
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


@router.get("/calendars", response=list[CalendarOut], tags=["calendars"])
@paginate(Cursor)
def list_calendars(request: HttpRequest, filters: Query[CalendarFilters]):
    return selectors.calendar_list(user=request.user, **filters.dict())


@router.get("/calendars/{int:id}", response=CalendarOut, tags=["calendars"])
def get_calendar(request: HttpRequest, id: int):
    return selectors.calendar_get(user=request.user, pk=id)


@router.post("/calendars", response={201: CalendarOut}, tags=["calendars"])
def create_calendar(request: HttpRequest, payload: CalendarIn):
    require(request.user, "add", BusinessCalendar)
    return Status(201, services.calendar_create(actor=request.user, **payload.dict()))


@router.patch("/calendars/{int:id}", response=CalendarOut, tags=["calendars"])
def update_calendar(request: HttpRequest, id: int, payload: CalendarPatch):
    calendar = selectors.calendar_get(user=request.user, pk=id)
    require(request.user, "change", calendar)
    services.calendar_update(
        actor=request.user, calendar=calendar, **payload.dict(exclude_unset=True)
    )
    return selectors.calendar_get(user=request.user, pk=id)


@router.delete("/calendars/{int:id}", response={204: None}, tags=["calendars"])
def delete_calendar(request: HttpRequest, id: int):
    calendar = selectors.calendar_get(user=request.user, pk=id)
    require(request.user, "delete", calendar)
    services.calendar_delete(actor=request.user, calendar=calendar)
    return Status(204, None)


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


@router.get("/sla-policies", response=list[SlaPolicyOut], tags=["sla-policies"])
@paginate(Cursor)
def list_sla_policies(request: HttpRequest, filters: Query[SlaPolicyFilters]):
    return selectors.sla_policy_list(user=request.user, **filters.dict())


@router.get("/sla-policies/{int:id}", response=SlaPolicyOut, tags=["sla-policies"])
def get_sla_policy(request: HttpRequest, id: int):
    return selectors.sla_policy_get(user=request.user, pk=id)


@router.post("/sla-policies", response={201: SlaPolicyOut}, tags=["sla-policies"])
def create_sla_policy(request: HttpRequest, payload: SlaPolicyIn):
    require(request.user, "add", SlaPolicy)
    data = _escalation_refs(request.user, payload.dict())
    policy = services.sla_policy_create(actor=request.user, **data)
    return Status(201, selectors.sla_policy_get(user=request.user, pk=policy.pk))


@router.patch("/sla-policies/{int:id}", response=SlaPolicyOut, tags=["sla-policies"])
def update_sla_policy(request: HttpRequest, id: int, payload: SlaPolicyPatch):
    policy = selectors.sla_policy_get(user=request.user, pk=id)
    require(request.user, "change", policy)
    services.sla_policy_update(
        actor=request.user, policy=policy, **payload.dict(exclude_unset=True)
    )
    return selectors.sla_policy_get(user=request.user, pk=id)


@router.delete("/sla-policies/{int:id}", response={204: None}, tags=["sla-policies"])
def delete_sla_policy(request: HttpRequest, id: int):
    policy = selectors.sla_policy_get(user=request.user, pk=id)
    require(request.user, "delete", policy)
    services.sla_policy_delete(actor=request.user, policy=policy)
    return Status(204, None)


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


@router.get("/contracts", response=list[ContractOut], tags=["contracts"])
@paginate(Cursor)
def list_contracts(request: HttpRequest, filters: Query[ContractFilters]):
    require(request.user, "view", Contract)
    return selectors.contract_list(user=request.user, **filters.dict())


@router.get("/contracts/{int:id}", response=ContractOut, tags=["contracts"])
def get_contract(request: HttpRequest, id: int):
    contract = selectors.contract_get(user=request.user, pk=id)
    require(request.user, "view", contract)
    return contract


@router.post("/contracts", response={201: ContractOut}, tags=["contracts"])
def create_contract(request: HttpRequest, payload: ContractIn):
    require(request.user, "add", Contract)
    data = _contract_refs(request.user, payload.dict())
    contract = services.contract_create(actor=request.user, **data)
    return Status(201, selectors.contract_get(user=request.user, pk=contract.pk))


@router.patch("/contracts/{int:id}", response=ContractOut, tags=["contracts"])
def update_contract(request: HttpRequest, id: int, payload: ContractPatch):
    contract = selectors.contract_get(user=request.user, pk=id)
    require(request.user, "change", contract)
    data = _contract_refs(request.user, payload.dict(exclude_unset=True))
    services.contract_update(actor=request.user, contract=contract, **data)
    return selectors.contract_get(user=request.user, pk=id)


@router.delete("/contracts/{int:id}", response={204: None}, tags=["contracts"])
def delete_contract(request: HttpRequest, id: int):
    contract = selectors.contract_get(user=request.user, pk=id)
    require(request.user, "delete", contract)
    services.contract_delete(actor=request.user, contract=contract)
    return Status(204, None)
