"""Every write to core objects. Each service validates, saves and audits in one transaction."""

from __future__ import annotations

import datetime
import hashlib
import inspect
import re
import secrets
from collections.abc import Callable, Iterable
from typing import Any

import pyotp
from django.contrib.auth import password_validation
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _

from onestop.core import audit, crypto, scoping
from onestop.core.errors import ConflictError
from onestop.core.models import (
    ApiToken,
    AuditEvent,
    Contact,
    Customer,
    Role,
    ServiceLine,
    Site,
    Team,
    User,
)
from onestop.core.search import search_key

TOKEN_PREFIX = "ost_"  # noqa: S105 -- a visible marker, not a secret


def _save_validated(obj: models.Model) -> None:
    obj.full_clean()
    obj.save()


def _apply(obj: models.Model, fields: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on {type(obj).__name__}")
    for name, value in fields.items():
        setattr(obj, name, value)


def object_keyword(service: Callable[..., Any]) -> str:
    """The keyword a service takes its object by: `site` in `site_delete(actor=, site=)` and
    `site_update(actor=, site=, **fields)`; declared pages and endpoints call services so."""
    names = [
        parameter.name
        for parameter in inspect.signature(service).parameters.values()
        if parameter.kind is parameter.KEYWORD_ONLY
        and parameter.default is parameter.empty
        and parameter.name != "actor"
    ]
    if len(names) != 1:
        raise ImproperlyConfigured(
            f"{service.__qualname__} should take actor= and one object keyword"
        )
    return names[0]


def object_delete(*, actor: User | None, obj: models.Model) -> None:
    """Deletes any audited object; refused with ConflictError while others depend on it."""
    before = audit.snapshot(obj)
    pk = obj.pk
    try:
        with transaction.atomic():
            obj.delete()
    except ProtectedError as exc:
        blocking = {type(o)._meta.verbose_name_plural for o in exc.protected_objects}
        raise ConflictError(
            _("Cannot delete %(obj)s: it still has %(what)s.")
            % {"obj": obj, "what": ", ".join(sorted(str(b) for b in blocking))}
        ) from None
    audit.record_deleted(actor=actor, obj=obj, before=before, object_id=pk)


# Customers -----------------------------------------------------------------------------------

CUSTOMER_FIELDS = (
    "name",
    "short_code",
    "industry",
    "status",
    "service_lines",
    "parent",
    "phone",
    "website",
    "mail_domains",
    "notes",
)
# A mail domain as people type it: letters, digits and dashes in dot-separated labels.
_MAIL_DOMAIN = re.compile(r"^(?=.{3,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _check_mail_domains(customer: Customer) -> None:
    """Lower-cases and de-duplicates the domains; each must be a domain name and belong to no
    other customer, or mail from it could not be filed under one customer."""
    domains = []
    for raw in customer.mail_domains or []:
        domain = str(raw).strip().lower().lstrip("@")
        if not _MAIL_DOMAIN.match(domain):
            raise ValidationError(
                {"mail_domains": _("“%(domain)s” is not a domain name.") % {"domain": raw}}
            )
        if domain not in domains:
            domains.append(domain)
    others = Customer.objects.exclude(pk=customer.pk).exclude(mail_domains=[])
    for other in others.only("pk", "name", "mail_domains"):
        taken = set(domains) & set(other.mail_domains)
        if taken:
            raise ValidationError(
                {
                    "mail_domains": _("%(domain)s is already a mail domain of %(customer)s.")
                    % {"domain": ", ".join(sorted(taken)), "customer": other.name}
                }
            )
    customer.mail_domains = domains


def _check_customer(customer: Customer) -> None:
    customer.short_code = (customer.short_code or "").strip().upper()
    lines = list(dict.fromkeys(customer.service_lines or []))
    bad = [line for line in lines if line not in ServiceLine.values]
    if bad:
        raise ValidationError(
            {"service_lines": _("Unknown service line: %(lines)s") % {"lines": ", ".join(bad)}}
        )
    customer.service_lines = lines
    ancestor = customer.parent
    depth = 0
    while ancestor is not None:
        if customer.pk and ancestor.pk == customer.pk:
            raise ValidationError({"parent": _("A company cannot be its own group company.")})
        ancestor = ancestor.parent
        depth += 1
        if depth > scoping.MAX_GROUP_DEPTH:
            raise ValidationError({"parent": _("Group structures are limited to six levels.")})
    _check_mail_domains(customer)
    customer.search_text = search_key(customer.name, customer.short_code)


@transaction.atomic
def customer_create(
    *,
    actor: User | None,
    name: str,
    short_code: str,
    industry: str = "other",
    status: str = Customer.Status.ACTIVE,
    service_lines: list[str] | None = None,
    parent: Customer | None = None,
    phone: str = "",
    website: str = "",
    mail_domains: list[str] | None = None,
    notes: str = "",
) -> Customer:
    """Adds a customer company."""
    customer = Customer(
        name=name.strip(),
        short_code=short_code,
        industry=industry,
        status=status,
        service_lines=service_lines or [],
        parent=parent,
        phone=phone,
        website=website,
        mail_domains=mail_domains or [],
        notes=notes,
    )
    _check_customer(customer)
    _save_validated(customer)
    audit.record_created(actor=actor, obj=customer)
    return customer


@transaction.atomic
def customer_update(*, actor: User | None, customer: Customer, **fields: Any) -> Customer:
    """Changes a customer's fields (any of CUSTOMER_FIELDS)."""
    before = audit.snapshot(customer)
    _apply(customer, fields, CUSTOMER_FIELDS)
    _check_customer(customer)
    _save_validated(customer)
    audit.record_updated(actor=actor, obj=customer, before=before)
    return customer


@transaction.atomic
def customer_delete(*, actor: User | None, customer: Customer) -> None:
    """Deletes a customer without dependent records; otherwise set its status to ended."""
    object_delete(actor=actor, obj=customer)


# Sites ---------------------------------------------------------------------------------------

SITE_FIELDS = ("name", "address", "city", "time_zone", "notes")


@transaction.atomic
def site_create(
    *,
    actor: User | None,
    customer: Customer,
    name: str,
    address: str = "",
    city: str = "",
    time_zone: str = "Asia/Shanghai",
    notes: str = "",
) -> Site:
    """Adds a site to a customer."""
    site = Site(
        customer=customer,
        name=name.strip(),
        address=address,
        city=city,
        time_zone=time_zone,
        notes=notes,
    )
    _save_validated(site)
    audit.record_created(actor=actor, obj=site)
    return site


@transaction.atomic
def site_update(*, actor: User | None, site: Site, **fields: Any) -> Site:
    """Changes a site's fields (any of SITE_FIELDS); a site never moves to another customer."""
    before = audit.snapshot(site)
    _apply(site, fields, SITE_FIELDS)
    _save_validated(site)
    audit.record_updated(actor=actor, obj=site, before=before)
    return site


@transaction.atomic
def site_delete(*, actor: User | None, site: Site) -> None:
    """Deletes a site; its contacts stay with the customer."""
    object_delete(actor=actor, obj=site)


# Contacts ------------------------------------------------------------------------------------

CONTACT_FIELDS = ("name", "title", "phone", "email", "is_vip", "is_active", "notes", "site")


def _check_contact(contact: Contact) -> None:
    if contact.site is not None and contact.site.customer_id != contact.customer_id:
        raise ValidationError({"site": _("The site belongs to another customer.")})
    contact.email = (contact.email or "").strip().lower()
    contact.search_text = search_key(contact.name, contact.email, contact.phone, contact.title)


@transaction.atomic
def contact_create(
    *,
    actor: User | None,
    customer: Customer,
    name: str,
    title: str = "",
    phone: str = "",
    email: str = "",
    is_vip: bool = False,
    is_active: bool = True,
    site: Site | None = None,
    notes: str = "",
) -> Contact:
    """Adds a contact person to a customer."""
    contact = Contact(
        customer=customer,
        site=site,
        name=name.strip(),
        title=title,
        phone=phone,
        email=email,
        is_vip=is_vip,
        is_active=is_active,
        notes=notes,
    )
    _check_contact(contact)
    _save_validated(contact)
    audit.record_created(actor=actor, obj=contact)
    return contact


@transaction.atomic
def contact_update(*, actor: User | None, contact: Contact, **fields: Any) -> Contact:
    """Changes a contact's fields (any of CONTACT_FIELDS). A new email address clears the mark
    of a bounced one."""
    before = audit.snapshot(contact)
    _apply(contact, fields, CONTACT_FIELDS)
    _check_contact(contact)
    if contact.email != before["email"]:
        contact.email_bounced_at = None
    _save_validated(contact)
    audit.record_updated(actor=actor, obj=contact, before=before)
    return contact


@transaction.atomic
def contact_delete(*, actor: User | None, contact: Contact) -> None:
    """Deletes a contact."""
    object_delete(actor=actor, obj=contact)


# Teams ---------------------------------------------------------------------------------------

TEAM_FIELDS = ("name", "description", "lead")


def _check_team_people(members: Iterable[User] | None, lead: User | None) -> None:
    people = list(members or []) + ([lead] if lead else [])
    if any(not person.is_provider_staff for person in people):
        raise ValidationError({"members": _("Teams are made of the provider's staff only.")})


@transaction.atomic
def team_create(
    *,
    actor: User | None,
    name: str,
    description: str = "",
    lead: User | None = None,
    members: Iterable[User] | None = None,
    customers: Iterable[Customer] | None = None,
) -> Team:
    """Adds a team of staff and the customers it serves."""
    _check_team_people(members, lead)
    team = Team(name=name.strip(), description=description, lead=lead)
    _save_validated(team)
    team.members.set(list(members or []))
    team.customers.set(list(customers or []))
    audit.record_created(actor=actor, obj=team)
    return team


@transaction.atomic
def team_update(
    *,
    actor: User | None,
    team: Team,
    members: Iterable[User] | None = None,
    customers: Iterable[Customer] | None = None,
    **fields: Any,
) -> Team:
    """Changes a team's fields; `members` and `customers`, when given, replace the sets."""
    before = audit.snapshot(team)
    _apply(team, fields, TEAM_FIELDS)
    _check_team_people(members, team.lead)
    _save_validated(team)
    if members is not None:
        team.members.set(list(members))
    if customers is not None:
        team.customers.set(list(customers))
    audit.record_updated(actor=actor, obj=team, before=before)
    return team


@transaction.atomic
def team_delete(*, actor: User | None, team: Team) -> None:
    """Deletes a team; its members keep their accounts."""
    object_delete(actor=actor, obj=team)


# Users ---------------------------------------------------------------------------------------

USER_FIELDS = (
    "email",
    "display_name",
    "phone",
    "role",
    "customer",
    "is_customer_admin",
    "language",
    "time_zone",
    "is_active",
    "first_name",
    "last_name",
)


def _check_user(user: User, *, actor: User | None) -> None:
    if user.role != Role.CUSTOMER:
        if user.customer_id is not None:
            raise ValidationError({"customer": _("Only customer users belong to a customer.")})
        user.is_customer_admin = False
    elif user.customer_id is None:
        raise ValidationError({"customer": _("A customer user needs a customer.")})
    if user.role == Role.ADMIN and actor is not None and actor.role != Role.ADMIN:
        raise ValidationError({"role": _("Only an administrator may grant the admin role.")})
    user.email = (user.email or "").strip().lower()
    user.is_staff = False  # the Django admin is not used; roles decide
    user.search_text = search_key(user.username, user.display_name, user.email, user.phone)


def _check_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    username: str,
    password: str | None,
    role: str,
    email: str = "",
    display_name: str = "",
    phone: str = "",
    customer: Customer | None = None,
    is_customer_admin: bool = False,
    customers: Iterable[Customer] | None = None,
    language: str = "",
    time_zone: str = "Asia/Shanghai",
    is_active: bool = True,
) -> User:
    """Adds a staff member or a customer's portal user; without a password it cannot log in."""
    user = User(
        username=username.strip(),
        role=role,
        email=email,
        display_name=display_name.strip(),
        phone=phone,
        customer=customer,
        is_customer_admin=is_customer_admin,
        language=language,
        time_zone=time_zone,
        is_active=is_active,
    )
    _check_user(user, actor=actor)
    if password:
        _check_password(password, user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    if customers and user.is_provider_staff:
        user.customers.set(list(customers))
    audit.record_created(actor=actor, obj=user)
    return user


@transaction.atomic
def user_update(
    *,
    actor: User | None,
    user: User,
    customers: Iterable[Customer] | None = None,
    **fields: Any,
) -> User:
    """Changes a user's profile, role or scope; `customers` replaces the customers served."""
    before = audit.snapshot(user)
    if before["role"] == Role.ADMIN and actor is not None and actor.role != Role.ADMIN:
        raise ValidationError({"role": _("Only an administrator may change an administrator.")})
    _apply(user, fields, USER_FIELDS)
    _check_user(user, actor=actor)
    user.full_clean(exclude=["password"])
    user.save()
    if customers is not None:
        user.customers.set(list(customers) if user.is_provider_staff else [])
    scoping.forget(user)
    audit.record_updated(actor=actor, obj=user, before=before)
    return user


@transaction.atomic
def user_set_password(*, actor: User | None, user: User, password: str) -> User:
    """Sets a new password after checking it against the password rules."""
    before = audit.snapshot(user)
    _check_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    audit.record_updated(actor=actor, obj=user, before=before)
    return user


@transaction.atomic
def user_delete(*, actor: User | None, user: User) -> None:
    """Deletes an account; accounts with history are better deactivated (is_active=False)."""
    if actor is not None and actor.pk == user.pk:
        raise ConflictError(_("You cannot delete your own account."))
    object_delete(actor=actor, obj=user)


@transaction.atomic
def user_totp_begin(*, user: User) -> str:
    """Starts two-factor setup: stores a new secret (not yet enabled) and returns it."""
    if user.totp_enabled:
        raise ConflictError(_("Two-factor authentication is already on."))
    before = audit.snapshot(user)
    secret = pyotp.random_base32()
    user.totp_secret = crypto.encrypt(secret)
    user.save(update_fields=["totp_secret"])
    audit.record_updated(actor=user, obj=user, before=before)
    return secret


def totp_verify(*, user: User, code: str) -> bool:
    """Checks a six-digit code against the user's secret, allowing one step of clock drift."""
    if not user.totp_secret or not code:
        return False
    secret = crypto.decrypt(user.totp_secret)
    return pyotp.TOTP(secret).verify(code.strip().replace(" ", ""), valid_window=1)


@transaction.atomic
def user_totp_enable(*, actor: User | None, user: User, code: str) -> User:
    """Turns two-factor on once the user proves their authenticator shows the right code."""
    if not totp_verify(user=user, code=code):
        raise ValidationError({"code": _("The code does not match. Check the phone's clock.")})
    before = audit.snapshot(user)
    user.totp_enabled = True
    user.save(update_fields=["totp_enabled"])
    audit.record_updated(actor=actor, obj=user, before=before)
    return user


@transaction.atomic
def user_totp_disable(*, actor: User | None, user: User) -> User:
    """Turns two-factor off and forgets the secret."""
    before = audit.snapshot(user)
    user.totp_enabled = False
    user.totp_secret = ""
    user.save(update_fields=["totp_enabled", "totp_secret"])
    audit.record_updated(actor=actor, obj=user, before=before)
    return user


@transaction.atomic
def user_record_login(*, user: User, success: bool) -> None:
    """Leaves a login (or failed login) in the audit trail."""
    action = AuditEvent.Action.LOGIN if success else AuditEvent.Action.LOGIN_FAILED
    audit.record(actor=user if success else None, action=action, obj=user, changes={})


@transaction.atomic
def user_record_logout(*, user: User) -> None:
    """Leaves a logout in the audit trail."""
    audit.record(actor=user, action=AuditEvent.Action.LOGOUT, obj=user, changes={})


# API tokens ----------------------------------------------------------------------------------


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def api_token_create(
    *, user: User, name: str = "", expires_in_days: int | None = None
) -> tuple[ApiToken, str]:
    """Creates a personal API token; the raw token is returned once and never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = (
        timezone.now() + datetime.timedelta(days=expires_in_days) if expires_in_days else None
    )
    token = ApiToken(
        user=user,
        name=name.strip(),
        prefix=raw[:10],
        key_hash=hash_token(raw),
        expires_at=expires_at,
    )
    _save_validated(token)
    audit.record_created(actor=user, obj=token)
    return token, raw


@transaction.atomic
def api_token_revoke(*, actor: User, token: ApiToken) -> ApiToken:
    """Revokes a token at once; requests carrying it are refused from now on."""
    if token.revoked_at is None:
        before = audit.snapshot(token)
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record_updated(actor=actor, obj=token, before=before)
    return token


def api_token_authenticate(raw: str) -> User | None:
    """The active user behind a token that is neither expired nor revoked, else None."""
    if not raw or not raw.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_token(raw), revoked_at__isnull=True)
        .first()
    )
    now = timezone.now()
    if token is None or (token.expires_at and token.expires_at <= now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > datetime.timedelta(minutes=5):
        # Coarse on purpose: one write every few minutes per token, not one per request.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
