"""API for tickets and their timeline."""

import datetime as dt

from django.http import FileResponse, HttpRequest
from ninja import Field, File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile
from ninja.pagination import paginate
from pydantic import EmailStr

from onestop.assets.models import Device
from onestop.contracts.models import Contract, Priority
from onestop.core.api import resolve_one, resolve_refs, visible_ids
from onestop.core.api_base import Cursor, InputSchema, crud_endpoints
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


def _time_entry_refs(user, data: dict) -> dict:
    return resolve_refs(user, data, {"ticket_id": ("ticket", Ticket), "user_id": ("user", User)})


crud_endpoints(
    router,
    "/time-entries",
    module=__name__,
    name="time_entry",
    plural="time_entries",
    tag="time",
    model=TimeEntry,
    out=TimeEntryOut,
    filters=TimeEntryFilters,
    create_in=TimeEntryIn,
    list=selectors.time_entry_list,
    get=selectors.time_entry_get,
    create=services.time_entry_create,
    delete=services.time_entry_delete,
    refs=_time_entry_refs,
    require_view=("list", "get"),
)


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


def _visit_refs(user, data: dict) -> dict:
    return resolve_refs(
        user, data, {"ticket_id": ("ticket", Ticket), "engineer_id": ("engineer", User)}
    )


crud_endpoints(
    router,
    "/visits",
    module=__name__,
    name="visit",
    plural="visits",
    tag="visits",
    model=Visit,
    out=VisitOut,
    filters=VisitFilters,
    create_in=VisitIn,
    patch_in=VisitPatch,
    list=selectors.visit_list,
    get=selectors.visit_get,
    create=services.visit_schedule,
    update=services.visit_update,
    refs=_visit_refs,
    require_view=("list", "get"),
)


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


crud_endpoints(
    router,
    "/kb-articles",
    module=__name__,
    name="article",
    plural="articles",
    tag="knowledge base",
    model=KnowledgeArticle,
    out=ArticleOut,
    filters=ArticleFilters,
    create_in=ArticleIn,
    patch_in=ArticlePatch,
    list=selectors.knowledge_article_list,
    get=selectors.knowledge_article_get,
    create=services.knowledge_article_create,
    update=services.knowledge_article_update,
    delete=services.knowledge_article_delete,
    refs=_article_refs,
    refetch=True,
)


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


_RECURRING_REFS = {
    "team_id": ("team", Team),
    "assignee_id": ("assignee", User),
    "customer_id": ("customer", Customer),
}


def _recurring_refs(user, data: dict) -> dict:
    return resolve_refs(user, data, _RECURRING_REFS)


crud_endpoints(
    router,
    "/recurring-tickets",
    module=__name__,
    name="recurring",
    plural="recurring",
    tag="tickets",
    model=RecurringTicket,
    out=RecurringOut,
    filters=RecurringFilters,
    create_in=RecurringIn,
    patch_in=RecurringPatch,
    list=selectors.recurring_ticket_list,
    get=selectors.recurring_ticket_get,
    create=services.recurring_ticket_create,
    update=services.recurring_ticket_update,
    delete=services.recurring_ticket_delete,
    refs=_recurring_refs,
    require_view=("list", "get"),
)


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


def _team_ref(user, data: dict) -> dict:
    """Canned replies and mailboxes belong to a team."""
    return resolve_refs(user, data, {"team_id": ("team", Team)})


crud_endpoints(
    router,
    "/canned-replies",
    module=__name__,
    name="canned_reply",
    plural="canned_replies",
    tag="canned replies",
    model=CannedReply,
    out=CannedReplyOut,
    filters=CannedReplyFilters,
    create_in=CannedReplyIn,
    patch_in=CannedReplyPatch,
    list=selectors.canned_reply_list,
    get=selectors.canned_reply_get,
    create=services.canned_reply_create,
    update=services.canned_reply_update,
    delete=services.canned_reply_delete,
    refs=_team_ref,
    require_view=("list",),
    refetch=True,
)


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


crud_endpoints(
    router,
    "/mailboxes",
    module=__name__,
    name="mailbox",
    plural="mailboxes",
    tag="email",
    model=Mailbox,
    out=MailboxOut,
    filters=MailboxFilters,
    create_in=MailboxIn,
    patch_in=MailboxPatch,
    list=selectors.mailbox_list,
    get=selectors.mailbox_get,
    create=services.mailbox_create,
    update=services.mailbox_update,
    delete=services.mailbox_delete,
    refs=_team_ref,
    require_view=("list",),
)


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


crud_endpoints(
    router,
    "/inbound-messages",
    module=__name__,
    name="inbound_message",
    plural="inbound_messages",
    tag="email",
    model=InboundMessage,
    out=InboundMessageOut,
    filters=InboundMessageFilters,
    list=selectors.inbound_message_list,
    get=selectors.inbound_message_get,
    require_view=("list",),
)


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
