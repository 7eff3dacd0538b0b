"""API for tickets and their timeline."""

import datetime as dt

from django.http import FileResponse, HttpRequest
from ninja import Field, File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile
from ninja.pagination import paginate
from pydantic import EmailStr

from onestop.assets.models import Device
from onestop.contracts.models import Contract, Priority
from onestop.core.api import Cursor, resolve_one, resolve_refs, visible_ids
from onestop.core.api_base import InputSchema
from onestop.core.models import Contact, Customer, Site, Team, User
from onestop.core.permissions import can, require
from onestop.servicedesk import selectors, services
from onestop.servicedesk.models import (
    CannedReply,
    InboundMessage,
    KnowledgeArticle,
    Level,
    Mailbox,
    MailSecurity,
    RecurringTicket,
    Ticket,
    TicketEntry,
    TicketType,
    TimeEntry,
    Visit,
)
from onestop.servicedesk.models import Status as TicketStatus

router = Router()


class TicketOut(Schema):
    id: int
    customer_id: int
    contract_id: int | None
    site_id: int | None
    device_id: int | None
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
    parent_id: int | None
    merged_into_id: int | None
    watcher_ids: list[int]
    cc_contact_ids: list[int]
    related_ids: list[int]

    @staticmethod
    def resolve_watcher_ids(obj: Ticket) -> list[int]:
        return sorted(user.pk for user in obj.watchers.all())

    @staticmethod
    def resolve_cc_contact_ids(obj: Ticket) -> list[int]:
        return sorted(contact.pk for contact in obj.cc_contacts.all())

    @staticmethod
    def resolve_related_ids(obj: Ticket) -> list[int]:
        return sorted(ticket.pk for ticket in obj.related.all())

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
    device_id: int | None = None
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
    device_id: int | None = None
    requester_id: int | None = None
    team_id: int | None = None
    assignee_id: int | None = None
    status: TicketStatus | None = None
    parent_id: int | None = None
    watcher_ids: list[int] | None = None
    cc_contact_ids: list[int] | None = None
    related_ids: list[int] | None = None


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
    device_id: int | None = None


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


_TICKET_REFS = {
    "parent_id": ("parent", Ticket),
    "contract_id": ("contract", Contract),
    "site_id": ("site", Site),
    "device_id": ("device", Device),
    "requester_id": ("requester", Contact),
    "team_id": ("team", Team),
    "assignee_id": ("assignee", User),
    "watcher_ids": ("watchers", User),
    "cc_contact_ids": ("cc_contacts", Contact),
    "related_ids": ("related", Ticket),
}


def _refs(user, data: dict) -> dict:
    return resolve_refs(user, data, _TICKET_REFS)


@router.get("/tickets", response=list[TicketOut], tags=["tickets"])
@paginate(Cursor)
def list_tickets(request: HttpRequest, filters: Query[TicketFilters]):
    tickets = selectors.ticket_list(user=request.user, **filters.dict())
    return tickets.prefetch_related("watchers", "cc_contacts", "related")


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


# Time entries ---------------------------------------------------------------------------------


class TimeEntryOut(Schema):
    id: int
    ticket_id: int
    user_id: int
    date: dt.date
    minutes: int
    kind: str
    billable: bool
    note: str
    contract_id: int | None


class TimeEntryIn(InputSchema):
    ticket_id: int
    minutes: int = Field(ge=1, le=24 * 60)
    date: dt.date | None = None
    kind: TimeEntry.Kind = TimeEntry.Kind.REMOTE
    billable: bool = True
    note: str = Field("", max_length=500)
    user_id: int | None = Field(None, description="Who did the work; the caller by default")


class TimeEntryFilters(Schema):
    ticket_id: int | None = None
    user_id: int | None = None
    contract_id: int | None = None
    billable: bool | None = None
    since: dt.date | None = None
    until: dt.date | None = None


@router.get("/time-entries", response=list[TimeEntryOut], tags=["time"])
@paginate(Cursor)
def list_time_entries(request: HttpRequest, filters: Query[TimeEntryFilters]):
    require(request.user, "view", TimeEntry)
    return selectors.time_entry_list(user=request.user, **filters.dict())


@router.get("/time-entries/{int:id}", response=TimeEntryOut, tags=["time"])
def get_time_entry(request: HttpRequest, id: int):
    entry = selectors.time_entry_get(user=request.user, pk=id)
    require(request.user, "view", entry)
    return entry


@router.post("/time-entries", response={201: TimeEntryOut}, tags=["time"])
def create_time_entry(request: HttpRequest, payload: TimeEntryIn):
    require(request.user, "add", TimeEntry)
    data = payload.dict()
    ticket = resolve_one(request.user, Ticket, data.pop("ticket_id"), "ticket_id")
    data["user"] = resolve_one(request.user, User, data.pop("user_id"), "user_id")
    entry = services.time_entry_create(actor=request.user, ticket=ticket, **data)
    return Status(201, entry)


@router.delete("/time-entries/{int:id}", response={204: None}, tags=["time"])
def delete_time_entry(request: HttpRequest, id: int):
    entry = selectors.time_entry_get(user=request.user, pk=id)
    require(request.user, "delete", entry)
    services.time_entry_delete(actor=request.user, entry=entry)
    return Status(204, None)


# On-site visits -------------------------------------------------------------------------------


class VisitOut(Schema):
    id: int
    number: str
    ticket_id: int
    engineer_id: int
    scheduled_at: dt.datetime
    planned_minutes: int
    instructions: str
    state: str
    arrived_at: dt.datetime | None
    departed_at: dt.datetime | None
    work_done: str
    signer_name: str
    signer_comment: str
    signed_at: dt.datetime | None
    signature: list[list[list[float]]] | None
    cancel_reason: str
    time_entry_id: int | None


class VisitIn(InputSchema):
    ticket_id: int
    engineer_id: int
    scheduled_at: dt.datetime
    planned_minutes: int = Field(120, ge=15, le=24 * 60)
    instructions: str = Field("", max_length=2000)


class VisitPatch(InputSchema):
    engineer_id: int | None = None
    scheduled_at: dt.datetime | None = None
    planned_minutes: int | None = Field(None, ge=15, le=24 * 60)
    instructions: str | None = Field(None, max_length=2000)


class VisitSignOffIn(InputSchema):
    work_done: str = Field(max_length=5000)
    signer_name: str = Field(max_length=100)
    signer_comment: str = Field("", max_length=500)
    signature: list[list[list[float]]] = Field(
        description="The strokes drawn, each a list of [x, y] points on a 600×240 canvas"
    )
    billable: bool = True


class VisitCancelIn(InputSchema):
    reason: str = Field(max_length=300)


class VisitFilters(Schema):
    ticket_id: int | None = None
    engineer_id: int | None = None
    state: Visit.State | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@router.get("/visits", response=list[VisitOut], tags=["visits"])
@paginate(Cursor)
def list_visits(request: HttpRequest, filters: Query[VisitFilters]):
    require(request.user, "view", Visit)
    return selectors.visit_list(user=request.user, **filters.dict())


@router.get("/visits/{int:id}", response=VisitOut, tags=["visits"])
def get_visit(request: HttpRequest, id: int):
    visit = selectors.visit_get(user=request.user, pk=id)
    require(request.user, "view", visit)
    return visit


@router.post("/visits", response={201: VisitOut}, tags=["visits"])
def create_visit(request: HttpRequest, payload: VisitIn):
    require(request.user, "add", Visit)
    data = payload.dict()
    ticket = resolve_one(request.user, Ticket, data.pop("ticket_id"), "ticket_id")
    engineer = resolve_one(request.user, User, data.pop("engineer_id"), "engineer_id")
    visit = services.visit_schedule(actor=request.user, ticket=ticket, engineer=engineer, **data)
    return Status(201, visit)


@router.patch("/visits/{int:id}", response=VisitOut, tags=["visits"])
def update_visit(request: HttpRequest, id: int, payload: VisitPatch):
    visit = selectors.visit_get(user=request.user, pk=id)
    require(request.user, "change", visit)
    data = payload.dict(exclude_unset=True)
    if "engineer_id" in data:
        data["engineer"] = resolve_one(request.user, User, data.pop("engineer_id"), "engineer_id")
    return services.visit_update(actor=request.user, visit=visit, **data)


@router.post("/visits/{int:id}/check-in", response=VisitOut, tags=["visits"])
def check_in_visit(request: HttpRequest, id: int):
    visit = selectors.visit_get(user=request.user, pk=id)
    require(request.user, "change", visit)
    return services.visit_check_in(actor=request.user, visit=visit)


@router.post("/visits/{int:id}/sign-off", response=VisitOut, tags=["visits"])
def sign_off_visit(request: HttpRequest, id: int, payload: VisitSignOffIn):
    visit = selectors.visit_get(user=request.user, pk=id)
    require(request.user, "change", visit)
    return services.visit_sign_off(actor=request.user, visit=visit, **payload.dict())


@router.post("/visits/{int:id}/cancel", response=VisitOut, tags=["visits"])
def cancel_visit(request: HttpRequest, id: int, payload: VisitCancelIn):
    visit = selectors.visit_get(user=request.user, pk=id)
    require(request.user, "change", visit)
    return services.visit_cancel(actor=request.user, visit=visit, reason=payload.reason)


# Knowledge base -------------------------------------------------------------------------------


class ArticleOut(Schema):
    id: int
    title: str
    body: str
    category: str
    visibility: str
    is_published: bool
    customer_ids: list[int]
    author_id: int | None
    updated_at: dt.datetime

    @staticmethod
    def resolve_customer_ids(obj: KnowledgeArticle, context) -> list[int]:
        return visible_ids(context, obj.customers.all())


class ArticleIn(InputSchema):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=200_000)
    category: str = Field("", max_length=100)
    visibility: KnowledgeArticle.Visibility = KnowledgeArticle.Visibility.INTERNAL
    is_published: bool = False
    customer_ids: list[int] = []


class ArticlePatch(InputSchema):
    title: str | None = Field(None, min_length=1, max_length=200)
    body: str | None = Field(None, min_length=1, max_length=200_000)
    category: str | None = Field(None, max_length=100)
    visibility: KnowledgeArticle.Visibility | None = None
    is_published: bool | None = None
    customer_ids: list[int] | None = None


class ArticleFilters(Schema):
    q: str | None = None
    category: str | None = None


def _article_refs(user, data: dict) -> dict:
    return resolve_refs(user, data, {"customer_ids": ("customers", Customer)})


@router.get("/kb-articles", response=list[ArticleOut], tags=["knowledge base"])
@paginate(Cursor)
def list_articles(request: HttpRequest, filters: Query[ArticleFilters]):
    return selectors.knowledge_article_list(user=request.user, **filters.dict())


@router.get("/kb-articles/{int:id}", response=ArticleOut, tags=["knowledge base"])
def get_article(request: HttpRequest, id: int):
    return selectors.knowledge_article_get(user=request.user, pk=id)


@router.post("/kb-articles", response={201: ArticleOut}, tags=["knowledge base"])
def create_article(request: HttpRequest, payload: ArticleIn):
    require(request.user, "add", KnowledgeArticle)
    data = _article_refs(request.user, payload.dict())
    article = services.knowledge_article_create(actor=request.user, **data)
    return Status(201, selectors.knowledge_article_get(user=request.user, pk=article.pk))


@router.patch("/kb-articles/{int:id}", response=ArticleOut, tags=["knowledge base"])
def update_article(request: HttpRequest, id: int, payload: ArticlePatch):
    article = selectors.knowledge_article_get(user=request.user, pk=id)
    require(request.user, "change", article)
    data = _article_refs(request.user, payload.dict(exclude_unset=True))
    services.knowledge_article_update(actor=request.user, article=article, **data)
    return selectors.knowledge_article_get(user=request.user, pk=id)


@router.delete("/kb-articles/{int:id}", response={204: None}, tags=["knowledge base"])
def delete_article(request: HttpRequest, id: int):
    article = selectors.knowledge_article_get(user=request.user, pk=id)
    require(request.user, "delete", article)
    services.knowledge_article_delete(actor=request.user, article=article)
    return Status(204, None)


# Recurring tickets ----------------------------------------------------------------------------


class RecurringOut(Schema):
    id: int
    customer_id: int
    title: str
    description: str
    type: str
    priority: str
    team_id: int | None
    assignee_id: int | None
    frequency: str
    weekday: int | None
    day_of_month: int | None
    time_of_day: dt.time
    next_run_at: dt.datetime
    is_active: bool
    last_ticket_id: int | None


class RecurringFields(InputSchema):
    description: str = Field("", max_length=100_000)
    type: TicketType = TicketType.SERVICE_REQUEST
    priority: Priority = Priority.P3
    team_id: int | None = None
    assignee_id: int | None = None
    weekday: int | None = Field(None, ge=0, le=6)
    day_of_month: int | None = Field(None, ge=1, le=31)
    time_of_day: dt.time = dt.time(9, 0)
    is_active: bool = True


class RecurringIn(RecurringFields):
    customer_id: int
    title: str = Field(min_length=1, max_length=200)
    frequency: RecurringTicket.Frequency


class RecurringPatch(InputSchema):
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=100_000)
    type: TicketType | None = None
    priority: Priority | None = None
    team_id: int | None = None
    assignee_id: int | None = None
    frequency: RecurringTicket.Frequency | None = None
    weekday: int | None = Field(None, ge=0, le=6)
    day_of_month: int | None = Field(None, ge=1, le=31)
    time_of_day: dt.time | None = None
    is_active: bool | None = None


class RecurringFilters(Schema):
    customer_id: int | None = None


def _recurring_refs(user, data: dict) -> dict:
    return resolve_refs(user, data, {"team_id": ("team", Team), "assignee_id": ("assignee", User)})


@router.get("/recurring-tickets", response=list[RecurringOut], tags=["tickets"])
@paginate(Cursor)
def list_recurring(request: HttpRequest, filters: Query[RecurringFilters]):
    require(request.user, "view", RecurringTicket)
    return selectors.recurring_ticket_list(user=request.user, **filters.dict())


@router.get("/recurring-tickets/{int:id}", response=RecurringOut, tags=["tickets"])
def get_recurring(request: HttpRequest, id: int):
    recurring = selectors.recurring_ticket_get(user=request.user, pk=id)
    require(request.user, "view", recurring)
    return recurring


@router.post("/recurring-tickets", response={201: RecurringOut}, tags=["tickets"])
def create_recurring(request: HttpRequest, payload: RecurringIn):
    require(request.user, "add", RecurringTicket)
    data = _recurring_refs(request.user, payload.dict())
    data["customer"] = resolve_one(request.user, Customer, data.pop("customer_id"), "customer_id")
    return Status(201, services.recurring_ticket_create(actor=request.user, **data))


@router.patch("/recurring-tickets/{int:id}", response=RecurringOut, tags=["tickets"])
def update_recurring(request: HttpRequest, id: int, payload: RecurringPatch):
    recurring = selectors.recurring_ticket_get(user=request.user, pk=id)
    require(request.user, "change", recurring)
    data = _recurring_refs(request.user, payload.dict(exclude_unset=True))
    return services.recurring_ticket_update(actor=request.user, recurring=recurring, **data)


@router.delete("/recurring-tickets/{int:id}", response={204: None}, tags=["tickets"])
def delete_recurring(request: HttpRequest, id: int):
    recurring = selectors.recurring_ticket_get(user=request.user, pk=id)
    require(request.user, "delete", recurring)
    services.recurring_ticket_delete(actor=request.user, recurring=recurring)
    return Status(204, None)


class MergeIn(InputSchema):
    target_id: int = Field(description="The ticket this duplicate is merged into")


@router.post("/tickets/{int:id}/merge", response=TicketOut, tags=["tickets"])
def merge_ticket(request: HttpRequest, id: int, payload: MergeIn):
    """Merges this ticket (a duplicate) into `target_id`; returns the target."""
    source = selectors.ticket_get(user=request.user, pk=id)
    require(request.user, "change", source)
    target = resolve_one(request.user, Ticket, payload.target_id, "target_id")
    services.ticket_merge(actor=request.user, source=source, target=target)
    return selectors.ticket_get(user=request.user, pk=target.pk)


class AttachmentOut(Schema):
    id: int
    name: str
    size: int
    content_type: str
    is_public: bool
    entry_id: int | None
    uploaded_by_id: int | None
    created_at: dt.datetime


@router.get("/tickets/{int:id}/attachments", response=list[AttachmentOut], tags=["tickets"])
def list_attachments(request: HttpRequest, id: int):
    ticket = selectors.ticket_get(user=request.user, pk=id)
    return selectors.attachment_list(user=request.user, ticket=ticket)


@router.post("/tickets/{int:id}/attachments", response={201: AttachmentOut}, tags=["tickets"])
def upload_attachment(
    request: HttpRequest, id: int, file: File[UploadedFile], is_public: Form[bool] = True
):
    """Uploads one file (multipart form field `file`), within the size and type limits."""
    ticket = selectors.ticket_get(user=request.user, pk=id)
    require(request.user, "add", TicketEntry)
    attachment = services.ticket_attach(
        actor=request.user, ticket=ticket, upload=file, is_public=is_public
    )
    return Status(201, attachment)


@router.get("/attachments/{int:id}/download", response={200: None}, tags=["tickets"])
def download_attachment(request: HttpRequest, id: int):
    """The file itself, as an attachment download under its original name."""
    attachment = selectors.attachment_get(user=request.user, pk=id)
    return FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.name,
        content_type=attachment.content_type,
    )


# Canned replies -------------------------------------------------------------------------------


class CannedReplyOut(Schema):
    id: int
    title: str
    body: str
    team_id: int | None
    created_by_id: int | None
    updated_at: dt.datetime


class CannedReplyIn(InputSchema):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=100_000)
    team_id: int | None = None


class CannedReplyPatch(InputSchema):
    title: str | None = Field(None, min_length=1, max_length=200)
    body: str | None = Field(None, min_length=1, max_length=100_000)
    team_id: int | None = None


class CannedReplyFilters(Schema):
    q: str | None = None
    team_id: int | None = None


def _canned_refs(user, data: dict) -> dict:
    if "team_id" in data:
        data["team"] = resolve_one(user, Team, data.pop("team_id"), "team_id")
    return data


@router.get("/canned-replies", response=list[CannedReplyOut], tags=["canned replies"])
@paginate(Cursor)
def list_canned_replies(request: HttpRequest, filters: Query[CannedReplyFilters]):
    require(request.user, "view", CannedReply)
    return selectors.canned_reply_list(user=request.user, **filters.dict())


@router.get("/canned-replies/{int:id}", response=CannedReplyOut, tags=["canned replies"])
def get_canned_reply(request: HttpRequest, id: int):
    return selectors.canned_reply_get(user=request.user, pk=id)


@router.post("/canned-replies", response={201: CannedReplyOut}, tags=["canned replies"])
def create_canned_reply(request: HttpRequest, payload: CannedReplyIn):
    require(request.user, "add", CannedReply)
    data = _canned_refs(request.user, payload.dict())
    reply = services.canned_reply_create(actor=request.user, **data)
    return Status(201, selectors.canned_reply_get(user=request.user, pk=reply.pk))


@router.patch("/canned-replies/{int:id}", response=CannedReplyOut, tags=["canned replies"])
def update_canned_reply(request: HttpRequest, id: int, payload: CannedReplyPatch):
    reply = selectors.canned_reply_get(user=request.user, pk=id)
    require(request.user, "change", reply)
    data = _canned_refs(request.user, payload.dict(exclude_unset=True))
    services.canned_reply_update(actor=request.user, reply=reply, **data)
    return selectors.canned_reply_get(user=request.user, pk=id)


@router.delete("/canned-replies/{int:id}", response={204: None}, tags=["canned replies"])
def delete_canned_reply(request: HttpRequest, id: int):
    reply = selectors.canned_reply_get(user=request.user, pk=id)
    require(request.user, "delete", reply)
    services.canned_reply_delete(actor=request.user, reply=reply)
    return Status(204, None)


# Email to ticket ------------------------------------------------------------------------------


class MailboxOut(Schema):
    id: int
    name: str
    address: str
    imap_host: str
    imap_port: int
    imap_security: str
    imap_username: str
    # The secrets themselves are write-only: only whether one is stored.
    has_password: bool
    has_oauth2_token: bool
    folder: str
    processed_folder: str
    team_id: int | None
    default_priority: str
    is_active: bool
    is_default_outgoing: bool
    last_polled_at: dt.datetime | None
    last_error: str
    updated_at: dt.datetime

    @staticmethod
    def resolve_has_password(obj: Mailbox) -> bool:
        return bool(obj.password)

    @staticmethod
    def resolve_has_oauth2_token(obj: Mailbox) -> bool:
        return bool(obj.oauth2_token)


class MailboxIn(InputSchema):
    name: str = Field(min_length=1, max_length=100)
    address: EmailStr
    imap_host: str = Field(min_length=1, max_length=200)
    imap_port: int = Field(993, ge=1, le=65535)
    imap_security: MailSecurity = MailSecurity.SSL
    imap_username: str = Field(min_length=1, max_length=200)
    password: str = Field("", max_length=1000)
    oauth2_token: str = Field("", max_length=10_000)
    folder: str = Field("INBOX", min_length=1, max_length=200)
    processed_folder: str = Field("", max_length=200)
    team_id: int | None = None
    default_priority: Priority = Priority.P3
    is_active: bool = True
    is_default_outgoing: bool = False


class MailboxPatch(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=100)
    address: EmailStr | None = None
    imap_host: str | None = Field(None, min_length=1, max_length=200)
    imap_port: int | None = Field(None, ge=1, le=65535)
    imap_security: MailSecurity | None = None
    imap_username: str | None = Field(None, min_length=1, max_length=200)
    password: str | None = Field(None, max_length=1000)
    oauth2_token: str | None = Field(None, max_length=10_000)
    folder: str | None = Field(None, min_length=1, max_length=200)
    processed_folder: str | None = Field(None, max_length=200)
    team_id: int | None = None
    default_priority: Priority | None = None
    is_active: bool | None = None
    is_default_outgoing: bool | None = None


class MailboxFilters(Schema):
    q: str | None = None


def _mailbox_refs(user, data: dict) -> dict:
    if "team_id" in data:
        data["team"] = resolve_one(user, Team, data.pop("team_id"), "team_id")
    return data


@router.get("/mailboxes", response=list[MailboxOut], tags=["email"])
@paginate(Cursor)
def list_mailboxes(request: HttpRequest, filters: Query[MailboxFilters]):
    require(request.user, "view", Mailbox)
    return selectors.mailbox_list(user=request.user, **filters.dict())


@router.get("/mailboxes/{int:id}", response=MailboxOut, tags=["email"])
def get_mailbox(request: HttpRequest, id: int):
    return selectors.mailbox_get(user=request.user, pk=id)


@router.post("/mailboxes", response={201: MailboxOut}, tags=["email"])
def create_mailbox(request: HttpRequest, payload: MailboxIn):
    require(request.user, "add", Mailbox)
    data = _mailbox_refs(request.user, payload.dict())
    return Status(201, services.mailbox_create(actor=request.user, **data))


@router.patch("/mailboxes/{int:id}", response=MailboxOut, tags=["email"])
def update_mailbox(request: HttpRequest, id: int, payload: MailboxPatch):
    mailbox = selectors.mailbox_get(user=request.user, pk=id)
    require(request.user, "change", mailbox)
    data = _mailbox_refs(request.user, payload.dict(exclude_unset=True))
    return services.mailbox_update(actor=request.user, mailbox=mailbox, **data)


@router.delete("/mailboxes/{int:id}", response={204: None}, tags=["email"])
def delete_mailbox(request: HttpRequest, id: int):
    mailbox = selectors.mailbox_get(user=request.user, pk=id)
    require(request.user, "delete", mailbox)
    services.mailbox_delete(actor=request.user, mailbox=mailbox)
    return Status(204, None)


class InboundMessageOut(Schema):
    id: int
    mailbox_id: int | None
    message_id: str
    from_address: str
    from_name: str
    subject: str
    preview: str
    received_at: dt.datetime
    outcome: str
    customer_id: int | None
    ticket_id: int | None
    entry_id: int | None
    detail: str
    decided_by_id: int | None


class InboundMessageFilters(Schema):
    outcome: InboundMessage.Outcome | None = None
    mailbox_id: int | None = None
    q: str | None = None


class InboundLinkIn(InputSchema):
    customer_id: int
    create_contact: bool = Field(True, description="Add the sender as the customer's contact")


@router.get("/inbound-messages", response=list[InboundMessageOut], tags=["email"])
@paginate(Cursor)
def list_inbound_messages(request: HttpRequest, filters: Query[InboundMessageFilters]):
    require(request.user, "view", InboundMessage)
    return selectors.inbound_message_list(user=request.user, **filters.dict())


@router.get("/inbound-messages/{int:id}", response=InboundMessageOut, tags=["email"])
def get_inbound_message(request: HttpRequest, id: int):
    return selectors.inbound_message_get(user=request.user, pk=id)


@router.post("/inbound-messages/{int:id}/link", response=InboundMessageOut, tags=["email"])
def link_inbound_message(request: HttpRequest, id: int, payload: InboundLinkIn):
    """Files a mail from the triage queue as a new ticket of `customer_id`."""
    message = selectors.inbound_message_get(user=request.user, pk=id)
    require(request.user, "change", message)
    customer = resolve_one(request.user, Customer, payload.customer_id, "customer_id")
    services.inbound_message_link(
        actor=request.user,
        message=message,
        customer=customer,
        create_contact=payload.create_contact,
    )
    return selectors.inbound_message_get(user=request.user, pk=id)


@router.post("/inbound-messages/{int:id}/discard", response=InboundMessageOut, tags=["email"])
def discard_inbound_message(request: HttpRequest, id: int):
    """Drops a mail from the triage queue; it stays in the log as discarded."""
    message = selectors.inbound_message_get(user=request.user, pk=id)
    require(request.user, "change", message)
    services.inbound_message_discard(actor=request.user, message=message)
    return selectors.inbound_message_get(user=request.user, pk=id)
