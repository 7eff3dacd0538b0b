"""The user API under /api/v1: one NinjaAPI, one router per app."""

from __future__ import annotations

from ninja import NinjaAPI

from onestop import __version__
from onestop.assets.api import router as assets_router
from onestop.contracts.api import router as contracts_router
from onestop.core.api import router as core_router
from onestop.core.api_base import SessionAuth, TokenAuth, install_problem_handlers
from onestop.monitoring.api import router as monitoring_router
from onestop.notify.api import router as notify_router
from onestop.servicedesk.api import router as servicedesk_router

api = NinjaAPI(
    title="OneStop API",
    version="1",
    description=(
        "OneStop's user API. Authenticate with a browser session (CSRF token required on "
        "writes) or a personal token: `POST /api/v1/auth/tokens`, then "
        "`Authorization: Bearer <token>`. Errors are `application/problem+json`."
    ),
    auth=[TokenAuth(), SessionAuth()],
    urls_namespace="api-v1",
    openapi_extra={"info": {"x-onestop-version": __version__}},
)
install_problem_handlers(api)
api.add_router("/", core_router)
api.add_router("/", contracts_router)
api.add_router("/", servicedesk_router)
api.add_router("/", notify_router)
api.add_router("/", assets_router)
api.add_router("/", monitoring_router)
