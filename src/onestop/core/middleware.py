"""Request plumbing: client address behind trusted proxies, the acting context, language, 2FA."""

from __future__ import annotations

import ipaddress
import uuid

from django.conf import settings
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from onestop.core import context
from onestop.core.api_base import problem_response


def _is_trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.ONESTOP_TRUSTED_PROXIES)


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


class TrustedProxyMiddleware:
    """Takes the client address and scheme from X-Forwarded-* only when a trusted proxy sent them.

    Walks X-Forwarded-For from the right, skipping our own proxies, so a client cannot forge
    its address by sending the header itself.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        peer = request.META.get("REMOTE_ADDR", "")
        if settings.ONESTOP_TRUSTED_PROXIES and _is_trusted(peer):
            forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
            hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
            while hops and _is_trusted(hops[-1]):
                hops.pop()
            if hops:
                request.META["REMOTE_ADDR"] = hops[-1]
            proto = request.META.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip()
            if proto in {"http", "https"}:
                request.META["wsgi.url_scheme"] = proto
        return self.get_response(request)


class RequestContextMiddleware:
    """Opens the acting context (UI or API, client address, request id) for the audit trail."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        source = "api" if request.path.startswith("/api/") else "ui"
        request_id = request.META.get("HTTP_X_REQUEST_ID", "")[:36] or str(uuid.uuid4())
        with context.acting(source, ip_address=client_ip(request) or None, request_id=request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class UserLanguageMiddleware:
    """A user's saved language wins over the browser's; the switch's cookie wins over both."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and user.language
            and settings.LANGUAGE_COOKIE_NAME not in request.COOKIES
        ):
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
        return self.get_response(request)


class TwoFactorMiddleware:
    """Staff with two-factor enabled must pass the code step before any page but the login."""

    EXEMPT_PREFIXES = ("/login", "/logout", "/static/", "/healthz", "/api/", "/i18n/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and user.totp_enabled
            and not request.session.get("otp_verified")
            and not request.path.startswith(self.EXEMPT_PREFIXES)
        ):
            return redirect(reverse("login_otp"))
        return self.get_response(request)


def lockout_response(request, credentials=None, *args, **kwargs):
    """What django-axes answers after too many failed logins: problem+json on the API."""
    if request.path.startswith("/api/"):
        return problem_response(
            429, _("Too many failed logins; try again later."), code="locked-out"
        )
    return render(request, "core/locked_out.html", status=429)
