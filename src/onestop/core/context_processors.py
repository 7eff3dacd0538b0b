"""Template context shared by every page: the navigation the user may see."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from onestop.core.models import AuditEvent, Contact, Customer, Site, Team, User
from onestop.core.permissions import can

# (list URL name, label, model whose "view" permission shows the entry). A page belongs to the
# section whose URL names share its prefix: customer_detail is under customer_list.
SECTIONS = (
    ("customer_list", _("Customers"), Customer),
    ("site_list", _("Sites"), Site),
    ("contact_list", _("Contacts"), Contact),
    ("team_list", _("Teams"), Team),
    ("user_list", _("Users"), User),
    ("audit_list", _("Audit log"), AuditEvent),
)


def _section_of(request) -> str:
    match = getattr(request, "resolver_match", None)
    name = match.url_name if match else ""
    return (name or "").split("_", 1)[0]


def navigation(request):
    """The layout's links: only areas the user may view, plus the account and sign-out URLs."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": {"items": [], "home_url": reverse("home")}}
    current = _section_of(request)
    items = [
        {
            "label": label,
            "url": reverse(url_name),
            "active": url_name.split("_", 1)[0] == current,
        }
        for url_name, label, model in SECTIONS
        if can(user, "view", model)
    ]
    return {
        "nav": {
            "items": items,
            "home_url": reverse("home"),
            "account_url": reverse("account"),
            "logout_url": reverse("logout"),
            "api_docs_url": reverse("api-v1:openapi-view") if user.is_provider_staff else "",
            "user_label": str(user),
        }
    }
