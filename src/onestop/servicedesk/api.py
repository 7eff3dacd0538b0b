"""API for tickets and their timeline."""

import datetime as dt

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from onestop.contracts.models import Contract, Priority
from onestop.core.api import Cursor, resolve_one
from onestop.core.api_base import InputSchema
from onestop.core.models import Contact, Customer, Site, Team, User
from onestop.core.permissions import can, require
from onestop.servicedesk import selectors, services
from onestop.servicedesk.models import (
    Level,
    Ticket,
    TicketEntry,
    TicketType,
)
from onestop.servicedesk.models import (
    Status as TicketStatus,
)

router = Router()


class TicketOut(Schema):
    id: int
    customer_id: int
    contract_id: int | None
    site_id: int | None
    requester_id: int | None
    title: str
    description: str
    type: str
    category: str
    channel: str
    status: str
    impact: int
    urgency: int
    priority: str
    team_id: int | None
    assignee_id: int | None
    opened_at: dt.datetime
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    sla_policy_id: int | None
    first_response_due_at: dt.datetime | None
    resolution_due_at: dt.datetime | None
    sla_provisional: bool
    sla_paused: bool
    sla_paused_minutes: int
    first_response_minutes: int | None
    resolution_minutes: int | None
    first_response_breached: bool
    resolution_breached: bool
    imported: bool
    csat_score: int | None
    csat_comment: str
    csat_at: dt.datetime | None

    @staticmethod
    def resolve_sla_paused(obj: Ticket) -> bool:
        return obj.sla_paused_since is not None


class TicketIn(InputSchema):
    customer_id: int
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=100_000)
    type: TicketType = TicketType.INCIDENT
    category: str = Field("", max_length=100)
    impact: Level = Level.MEDIUM
    urgency: Level = Level.MEDIUM
    priority: Priority | None = None
    contract_id: int | None = None
    site_id: int | None = None
    requester_id: int | None = None
    team_id: int | None = None
    assignee_id: int | None = None
    opened_at: dt.datetime | None = Field(
        None, description="For imports from another system: when the ticket was really opened"
    )
    imported: bool = Field(False, description="Imported history: sends no notifications")


class TicketPatch(InputSchema):
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=100_000)
    type: TicketType | None = None
    category: str | None = Field(None, max_length=100)
    impact: Level | None = None
    urgency: Level | None = None
    priority: Priority | None = None
    contract_id: int | None = None
    site_id: int | None = None
    requester_id: int | None = None
    team_id: int | None = None
    assignee_id: int | None = None
    status: TicketStatus | None = None


class TicketFilters(Schema):
    q: str | None = None
    customer_id: int | None = None
    status: TicketStatus | None = None
    is_open: bool | None = None
    priority: Priority | None = None
    assignee_id: int | None = None
    team_id: int | None = None
    unassigned: bool | None = None
    breached: bool | None = None
    due_before: dt.datetime | None = None


class EntryOut(Schema):
    id: int
    kind: str
    is_public: bool
    author_id: int | None
    author_contact_id: int | None
    body: str
    created_at: dt.datetime


class ReplyIn(InputSchema):
    body: str = Field(min_length=1, max_length=100_000)
    kind: TicketEntry.Kind = TicketEntry.Kind.REPLY
    is_public: bool = True
    author_contact_id: int | None = None
    created_at: dt.datetime | None = Field(None, description="For imports: when it was written")


_REFS = {
    "contract_id": ("contract", Contract),
    "site_id": ("site", Site),
    "requester_id": ("requester", Contact),
    "team_id": ("team", Team),
    "assignee_id": ("assignee", User),
}


def _refs(user, data: dict) -> dict:
    for key, (name, model) in _REFS.items():
        if key in data:
            data[name] = resolve_one(user, model, data.pop(key), key)
    return data


@router.get("/tickets", response=list[TicketOut], tags=["tickets"])
@paginate(Cursor)
def list_tickets(request: HttpRequest, filters: Query[TicketFilters]):
    return selectors.ticket_list(user=request.user, **filters.dict())


@router.get("/tickets/{int:id}", response=TicketOut, tags=["tickets"])
def get_ticket(request: HttpRequest, id: int):
    return selectors.ticket_get(user=request.user, pk=id)


@router.post("/tickets", response={201: TicketOut}, tags=["tickets"])
def create_ticket(request: HttpRequest, payload: TicketIn):
    user = request.user
    require(user, "add", Ticket)
    data = payload.dict()
    if user.is_customer_user:
        # Portal users open tickets for themselves; routing and SLA fields are the desk's call.
        for name in ("team_id", "assignee_id", "priority", "contract_id", "opened_at", "imported"):
            data.pop(name)
        data["requester_user"] = user
    data["customer"] = resolve_one(user, Customer, data.pop("customer_id"), "customer_id")
    data = _refs(user, data)
    ticket = services.ticket_create(actor=user, channel="api", **data)
    return Status(201, selectors.ticket_get(user=user, pk=ticket.pk))


@router.patch("/tickets/{int:id}", response=TicketOut, tags=["tickets"])
def update_ticket(request: HttpRequest, id: int, payload: TicketPatch):
    ticket = selectors.ticket_get(user=request.user, pk=id)
    require(request.user, "change", ticket)
    data = _refs(request.user, payload.dict(exclude_unset=True))
    status = data.pop("status", None)
    if data:
        services.ticket_update(actor=request.user, ticket=ticket, **data)
    if status:
        services.ticket_set_status(actor=request.user, ticket=ticket, status=status)
    return selectors.ticket_get(user=request.user, pk=id)


@router.delete("/tickets/{int:id}", response={204: None}, tags=["tickets"])
def delete_ticket(request: HttpRequest, id: int):
    ticket = selectors.ticket_get(user=request.user, pk=id)
    require(request.user, "delete", ticket)
    services.ticket_delete(actor=request.user, ticket=ticket)
    return Status(204, None)


@router.get("/tickets/{int:id}/replies", response=list[EntryOut], tags=["tickets"])
def list_replies(request: HttpRequest, id: int):
    ticket = selectors.ticket_get(user=request.user, pk=id)
    return selectors.ticket_entries(user=request.user, ticket=ticket)


@router.post("/tickets/{int:id}/replies", response={201: EntryOut}, tags=["tickets"])
def create_reply(request: HttpRequest, id: int, payload: ReplyIn):
    ticket = selectors.ticket_get(user=request.user, pk=id)
    require(request.user, "add", TicketEntry)
    data = payload.dict()
    contact_id = data.pop("author_contact_id")
    contact = resolve_one(request.user, Contact, contact_id, "author_contact_id")
    if not can(request.user, "change", ticket):
        contact = None  # customers reply as themselves
    entry = services.ticket_reply(
        actor=request.user,
        ticket=ticket,
        body=data["body"],
        kind=data["kind"],
        is_public=data["is_public"],
        author_contact=contact,
        at=data["created_at"],
    )
    return Status(201, entry)


class RatingIn(InputSchema):
    score: int = Field(ge=1, le=5)
    comment: str = Field("", max_length=10_000)


@router.post("/tickets/{int:id}/satisfaction", response=TicketOut, tags=["tickets"])
def rate_ticket(request: HttpRequest, id: int, payload: RatingIn):
    """The customer's satisfaction survey (CSAT 1–5 and a comment) on a resolved ticket."""
    ticket = selectors.ticket_get(user=request.user, pk=id)
    require(request.user, "view", ticket)
    services.ticket_rate(actor=request.user, ticket=ticket, **payload.dict())
    return selectors.ticket_get(user=request.user, pk=id)
