"""Who may do what: the role × action table and `can(user, action, obj)`.

The table is the single source of docs/permissions.md (a test keeps the two equal). Scope is
checked first: an object the user cannot see is reported as absent (404) by the selectors; an
object in scope whose action the role lacks is refused (403).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.utils.translation import gettext as _

from onestop.core import scoping
from onestop.core.models import Role, User

ADMIN, MANAGER, DISPATCHER, ENGINEER, SALES = "admin", "manager", "dispatcher", "engineer", "sales"
CUSTOMER, CUSTOMER_ADMIN = "customer", "customer_admin"
ROLE_COLUMNS = (ADMIN, MANAGER, DISPATCHER, ENGINEER, SALES, CUSTOMER, CUSTOMER_ADMIN)
STAFF = frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER, SALES})
EVERYONE = STAFF | {CUSTOMER, CUSTOMER_ADMIN}

# resource → action → roles allowed. "view" is further limited by scope (see core.scoping).
PERMISSIONS: dict[str, dict[str, frozenset[str]]] = {
    "customer": {
        "view": EVERYONE,
        "add": frozenset({ADMIN, MANAGER, SALES}),
        "change": frozenset({ADMIN, MANAGER, SALES}),
        "delete": frozenset({ADMIN}),
    },
    "site": {
        "view": EVERYONE,
        "add": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER, SALES, CUSTOMER_ADMIN}),
        "change": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER, SALES, CUSTOMER_ADMIN}),
        "delete": frozenset({ADMIN, MANAGER}),
    },
    "contact": {
        "view": EVERYONE,
        "add": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER, SALES, CUSTOMER_ADMIN}),
        "change": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER, SALES, CUSTOMER_ADMIN}),
        "delete": frozenset({ADMIN, MANAGER, CUSTOMER_ADMIN}),
    },
    "team": {
        "view": STAFF,
        "add": frozenset({ADMIN, MANAGER}),
        "change": frozenset({ADMIN, MANAGER}),
        "delete": frozenset({ADMIN, MANAGER}),
    },
    "user": {
        "view": EVERYONE,
        "add": frozenset({ADMIN, MANAGER}),
        "change": frozenset({ADMIN, MANAGER}),
        "delete": frozenset({ADMIN}),
    },
    "contract": {
        "view": STAFF | {CUSTOMER_ADMIN},
        "add": frozenset({ADMIN, MANAGER, SALES}),
        "change": frozenset({ADMIN, MANAGER, SALES}),
        "delete": frozenset({ADMIN}),
    },
    "slapolicy": {
        "view": STAFF,
        "add": frozenset({ADMIN, MANAGER}),
        "change": frozenset({ADMIN, MANAGER}),
        "delete": frozenset({ADMIN, MANAGER}),
    },
    "businesscalendar": {
        "view": STAFF,
        "add": frozenset({ADMIN, MANAGER}),
        "change": frozenset({ADMIN, MANAGER}),
        "delete": frozenset({ADMIN, MANAGER}),
    },
    "ticket": {
        "view": EVERYONE,
        "add": EVERYONE,
        "change": STAFF,
        "delete": frozenset({ADMIN}),
    },
    "ticketentry": {
        "view": EVERYONE,
        "add": EVERYONE,
    },
    "timeentry": {
        "view": STAFF | {CUSTOMER_ADMIN},
        "add": STAFF,
        "delete": frozenset({ADMIN, MANAGER}),
    },
    "visit": {
        "view": EVERYONE,
        "add": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
        "change": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
    },
    "knowledgearticle": {
        "view": EVERYONE,
        "add": STAFF,
        "change": STAFF,
        "delete": frozenset({ADMIN, MANAGER}),
    },
    "cannedreply": {
        "view": STAFF,
        "add": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
        "change": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
        "delete": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
    },
    "savedticketview": {
        "view": STAFF,
        "add": STAFF,
        "delete": STAFF,
    },
    "teamrouting": {
        "view": frozenset({ADMIN, MANAGER}),
        "change": frozenset({ADMIN, MANAGER}),
    },
    "recurringticket": {
        "view": STAFF,
        "add": frozenset({ADMIN, MANAGER, DISPATCHER}),
        "change": frozenset({ADMIN, MANAGER, DISPATCHER}),
        "delete": frozenset({ADMIN, MANAGER, DISPATCHER}),
    },
    "mailbox": {
        "view": STAFF,
        "add": frozenset({ADMIN, MANAGER}),
        "change": frozenset({ADMIN, MANAGER}),
        "delete": frozenset({ADMIN, MANAGER}),
    },
    "inboundmessage": {
        "view": STAFF,
        "change": frozenset({ADMIN, MANAGER, DISPATCHER}),
    },
    "device": {
        "view": STAFF | {CUSTOMER_ADMIN},
        "add": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
        "change": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
        "delete": frozenset({ADMIN, MANAGER}),
    },
    "inventorychange": {
        "view": STAFF | {CUSTOMER_ADMIN},
    },
    "enrollmenttoken": {
        "view": STAFF,
        "add": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
        "change": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
    },
    "agent": {
        "view": STAFF,
        "change": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
    },
    "check": {
        "view": STAFF | {CUSTOMER_ADMIN},
        "add": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
        "change": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
        "delete": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
    },
    "checktemplate": {
        "view": STAFF,
        "add": frozenset({ADMIN, MANAGER}),
        "change": frozenset({ADMIN, MANAGER}),
        "delete": frozenset({ADMIN, MANAGER}),
    },
    "snmpcredential": {
        "view": STAFF,
        "add": frozenset({ADMIN, MANAGER}),
        "change": frozenset({ADMIN, MANAGER}),
        "delete": frozenset({ADMIN, MANAGER}),
    },
    "snmptrap": {"view": STAFF},
    "discoveryjob": {
        "view": STAFF,
        "add": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
    },
    "maintenancewindow": {
        "view": STAFF | {CUSTOMER_ADMIN},
        "add": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
        "change": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
        "delete": frozenset({ADMIN, MANAGER, DISPATCHER, ENGINEER}),
    },
    "notification": {
        "view": EVERYONE,
        "change": EVERYONE,
    },
    "preference": {
        "view": EVERYONE,
        "change": EVERYONE,
    },
    "channel": {
        "view": frozenset({ADMIN, MANAGER, DISPATCHER}),
        "add": frozenset({ADMIN, MANAGER}),
        "change": frozenset({ADMIN, MANAGER}),
        "delete": frozenset({ADMIN, MANAGER}),
    },
    "rule": {
        "view": frozenset({ADMIN, MANAGER, DISPATCHER}),
        "add": frozenset({ADMIN, MANAGER}),
        "change": frozenset({ADMIN, MANAGER}),
        "delete": frozenset({ADMIN, MANAGER}),
    },
    "delivery": {
        "view": STAFF,
    },
    "auditevent": {
        "view": STAFF,
    },
    "apitoken": {
        "view": EVERYONE,
        "add": EVERYONE,
        "delete": EVERYONE,
    },
}

RULES = {
    "user": "Only an administrator may create, change or delete an administrator account.",
    "apitoken": "Everyone manages only their own tokens.",
    "cannedreply": "Staff see global canned replies and those of their own teams; admins and "
    "managers see all. A reply can be shared only with one of its author's teams.",
    "savedticketview": "Everyone deletes only their own saved views; a shared view is seen by "
    "its owner's team-mates.",
    "visit": "An engineer checks in, signs off, moves or cancels only their own visits; "
    "dispatchers, managers and admins any visit they can see. A customer user sees the visits "
    "of the tickets they see.",
    "preference": "Everyone sets only their own notification preferences.",
    "channel": "A channel's URL and secret are write-only: stored encrypted, never shown again.",
    "delivery": "Staff see the deliveries about the customers they serve; admins and managers "
    "all. Nobody changes the log.",
    "mailbox": "Staff see the support addresses; their passwords and tokens are never shown.",
    "inboundmessage": "Staff see the received mail of the customers they serve; mail of no "
    "customer yet (the triage queue) is seen by admins, managers and dispatchers, who link "
    "it to a customer or discard it.",
    "device": "A customer administrator sees the company's devices; plain customer users none.",
    "enrollmenttoken": "A token is shown once, inside the enrol command; revoking it stops new "
    "enrolments, not the agents already enrolled.",
    "agent": "Revoking an agent refuses everything it sends from then on.",
    "check": "A customer administrator sees the checks and problems of the company's devices. "
    "A check made from a template cannot be deleted (it would come back): disable it instead.",
    "checktemplate": "Templates are the provider's policies: staff see those for every customer "
    "and those of the customers they serve; customer users none.",
    "snmpcredential": "The community and keys are stored encrypted and never shown again; "
    "customer users see no credentials.",
    "discoveryjob": "Engineers, dispatchers, managers and admins run discoveries for the "
    "customers they serve, with that customer's SNMP credentials or provider-wide ones; a job "
    "is a record of what was found and is neither changed nor deleted. Customer users see no "
    "discoveries.",
    "auditevent": "Events without a customer (staff and settings) are visible to admin and "
    "manager only; nobody may change or delete an event.",
}


def effective_role(user: User) -> str | None:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.role == Role.CUSTOMER:
        return CUSTOMER_ADMIN if user.is_customer_admin else CUSTOMER
    return str(user.role)


def resource_of(obj: Model | type[Model]) -> str:
    return obj._meta.model_name


def can(user: User, action: str, obj: Model | type[Model]) -> bool:
    """True if the user's role allows the action and, for a stored object, it is in scope."""
    role = effective_role(user)
    allowed = PERMISSIONS.get(resource_of(obj), {}).get(action, frozenset())
    if role is None or role not in allowed:
        return False
    if isinstance(obj, Model):
        if obj.pk is not None and not scoping.is_visible(user, obj):
            return False
        if isinstance(obj, User) and obj.role == Role.ADMIN and action != "view":
            return role == ADMIN
    return True


def require(user: User, action: str, obj: Model | type[Model]) -> None:
    """Raises PermissionDenied (403) unless `can` allows it."""
    if not can(user, action, obj):
        raise PermissionDenied(_("Your role may not do this."))


def allowed_actions(user: User, obj: Model | type[Model]) -> set[str]:
    actions = PERMISSIONS.get(resource_of(obj), {})
    return {action for action in actions if can(user, action, obj)}


def render_markdown_table() -> str:
    """The table as it appears in docs/permissions.md."""
    header = "| resource | action | " + " | ".join(ROLE_COLUMNS) + " |"
    rule = "|" + "---|" * (len(ROLE_COLUMNS) + 2)
    rows = [header, rule]
    for resource, actions in PERMISSIONS.items():
        for action, roles in actions.items():
            marks = " | ".join("✓" if role in roles else "" for role in ROLE_COLUMNS)
            rows.append(f"| {resource} | {action} | {marks} |")
    return "\n".join(rows)
