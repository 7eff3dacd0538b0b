"""Template context shared by every page: the navigation the user may see."""

from __future__ import annotations

from django.urls import reverse

from onestop.core.navigation import items_for


def navigation(request):
    """The layout's links: only areas the user may view, plus the account and sign-out URLs."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": {"items": [], "home_url": reverse("home")}}
    match = getattr(request, "resolver_match", None)
    current = (match.url_name if match else "") or ""
    items = [
        {"label": item.label, "url": reverse(item.url_name), "active": item.covers(current)}
        for item in items_for(user)
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
