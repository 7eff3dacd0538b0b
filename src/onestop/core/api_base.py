"""What every API router shares: problem+json errors, authentication, pagination, and the
standard endpoints of a resource.

Errors follow RFC 9457 (problem details) with an `errors` list of {field, code, message}, so
a client can point at the field at fault.
"""

from __future__ import annotations

import builtins
import inspect
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Query, Router, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import CursorPagination, PaginationBase, paginate
from ninja.security import APIKeyCookie, HttpBearer
from pydantic import ConfigDict

from onestop.core.errors import ConflictError
from onestop.core.models import User
from onestop.core.permissions import require
from onestop.core.services import api_token_authenticate, object_keyword

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


class InputSchema(Schema):
    """Base of every input schema: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ProblemError(Schema):
    field: str | None
    code: str
    message: str


class Problem(Schema):
    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError] = []


def problem_response(
    status: int,
    detail: str = "",
    *,
    errors: Iterable[dict[str, Any]] = (),
    title: str | None = None,
    code: str | None = None,
) -> HttpResponse:
    phrase = HTTPStatus(status).phrase
    body = {
        "type": f"urn:onestop:problem:{code or phrase.lower().replace(' ', '-')}",
        "title": title or phrase,
        "status": status,
        "detail": detail or phrase,
        "errors": list(errors),
    }
    return HttpResponse(
        json.dumps(body, ensure_ascii=False), status=status, content_type=PROBLEM_CONTENT_TYPE
    )


_LOCATION_PREFIXES = {"body", "query", "path", "payload", "filters", "header", "cookie", "form"}


def _field_of(loc: Iterable[Any]) -> str | None:
    parts = [str(part) for part in loc]
    while parts and parts[0] in _LOCATION_PREFIXES:
        parts.pop(0)
    return ".".join(parts) or None


def django_validation_errors(exc: DjangoValidationError) -> list[dict[str, Any]]:
    if hasattr(exc, "error_dict"):
        errors = []
        for field, field_errors in exc.error_dict.items():
            for error in field_errors:
                message = error.message % error.params if error.params else error.message
                errors.append(
                    {
                        "field": None if field == "__all__" else field,
                        "code": error.code or "invalid",
                        "message": str(message),
                    }
                )
        return errors
    return [{"field": None, "code": "invalid", "message": str(m)} for m in exc.messages]


def install_problem_handlers(api: NinjaAPI) -> None:
    """Every error the API can raise becomes problem+json."""

    @api.exception_handler(NinjaValidationError)
    def _validation(request, exc):
        errors = [
            {
                "field": _field_of(error.get("loc", ())),
                "code": str(error.get("type", "invalid")),
                "message": str(error.get("msg", "invalid")),
            }
            for error in exc.errors
        ]
        return problem_response(
            422, _("The request has invalid fields."), errors=errors, code="validation"
        )

    @api.exception_handler(DjangoValidationError)
    def _model_validation(request, exc):
        return problem_response(
            422,
            _("The request has invalid fields."),
            errors=django_validation_errors(exc),
            code="validation",
        )

    @api.exception_handler(ConflictError)
    def _conflict(request, exc):
        errors = [{"field": exc.field, "code": "conflict", "message": exc.message}]
        return problem_response(409, exc.message, errors=errors, code="conflict")

    @api.exception_handler(IntegrityError)
    def _integrity(request, exc):
        logger.warning("integrity error on %s: %s", request.path, exc)
        return problem_response(409, _("The change conflicts with stored data."), code="conflict")

    @api.exception_handler(Http404)
    def _not_found(request, exc):
        return problem_response(404, _("No such object."), code="not-found")

    @api.exception_handler(PermissionDenied)
    def _forbidden(request, exc):
        return problem_response(403, str(exc) or _("Your role may not do this."), code="forbidden")

    @api.exception_handler(AuthenticationError)
    def _unauthenticated(request, exc):
        response = problem_response(
            401, _("Log in or send a valid API token."), code="unauthenticated"
        )
        response["WWW-Authenticate"] = 'Bearer realm="onestop"'
        return response

    @api.exception_handler(HttpError)
    def _http_error(request, exc):
        return problem_response(exc.status_code, str(exc))

    @api.exception_handler(Exception)
    def _unexpected(request, exc):
        logger.exception("unhandled API error on %s %s", request.method, request.path)
        return problem_response(
            500, _("Something went wrong on the server; it has been logged."), code="server-error"
        )


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>` with a personal API token."""

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = api_token_authenticate(token)
        if user is not None:
            request.user = user
        return user


class SessionAuth(APIKeyCookie):
    """The browser session, with CSRF on unsafe methods and the two-factor step passed."""

    param_name = "sessionid"

    def __init__(self) -> None:
        super().__init__(csrf=True)

    def _get_key(self, request: HttpRequest) -> str | None:
        # No session cookie means this is not a session request: answer 401, not a CSRF 403.
        if self.param_name not in request.COOKIES:
            return None
        return super()._get_key(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if user.totp_enabled and not request.session.get("otp_verified"):
            return None
        return user


class ProblemJsonMiddleware:
    """Turns any other error answer under /api/ (unknown path, 405, CSRF) into problem+json."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)
        ):
            detail = ""
            if response.status_code == 405:
                detail = _("Method not allowed; allowed: %(methods)s") % {
                    "methods": response.get("Allow", "")
                }
            elif response.status_code == 404:
                detail = _("No such API path.")
            elif response.status_code == 403:
                detail = _("Forbidden (check the CSRF token for session requests).")
            replaced = problem_response(response.status_code, detail)
            if response.has_header("Allow"):
                replaced["Allow"] = response["Allow"]
            return replaced
        return response


# Pagination and the standard endpoints -------------------------------------------------------


class Cursor(CursorPagination):
    """Cursor pagination on the primary key: stable, and never counts the table."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ordering=("id",), **kwargs)


class NewestFirst(CursorPagination):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ordering=("-id",), **kwargs)


def crud_endpoints(
    router: Router,
    path: str,
    *,
    module: str,
    name: str,
    plural: str,
    tag: str,
    model: type[Model],
    out: type[Schema],
    filters: type[Schema] | None = None,
    create_in: type[Schema] | None = None,
    patch_in: type[Schema] | None = None,
    list: Callable[..., Any] | None = None,
    get: Callable[..., Any] | None = None,
    create: Callable[..., Any] | None = None,
    update: Callable[..., Any] | None = None,
    delete: Callable[..., Any] | None = None,
    refs: Callable[[User, dict[str, Any]], dict[str, Any]] | None = None,
    require_view: Collection[str] = (),
    refetch: bool = False,
    pagination: type[PaginationBase] = Cursor,
    docs: Mapping[str, str] | None = None,
) -> None:
    """Adds to `router` the standard endpoints of a resource, each only if its callable is given:

    - GET `path`: `list(user=, **filters)`, paginated; `filters` is the query schema, if any;
    - GET `path/{id}`: `get(user=, pk=)`, the selector that 404s outside the user's scope;
    - POST `path`: `require(user, "add", model)`, then `create(actor=, **data)`; 201;
    - PATCH `path/{id}`: `require(user, "change", obj)`, then `update(actor=, <its keyword>=obj,
      **data)` with the fields sent;
    - DELETE `path/{id}`: `require(user, "delete", obj)`, then `delete(actor=, <its keyword>=obj)`;
      204.

    `refs(user, data)` turns the payload's id fields into objects the user may see (create and
    patch). `require_view` names the reads ("list", "get") that also require "view".
    The keyword the services take the object by is read from their signatures
    (`core.services.object_keyword`). With `refetch`,
    create and patch answer with `get` rather than the service's object. `docs` holds the
    endpoints' docstrings ({"create": ...}), which ninja shows as their descriptions. Endpoints
    that do more are written by hand beside the declaration.

    The views are named as hand-written ones would be (list_<plural>, get_<name>, ...) in
    `module`: ninja derives operationId, summary and URL name from that.
    """
    if get is None and (update or delete or refetch):
        raise TypeError("update, delete and refetch need the `get` selector")
    if not set(require_view) <= {"list", "get"}:
        raise ValueError(f"require_view takes 'list' and 'get', not {require_view!r}")
    item = f"{path}/{{int:id}}"

    def resolve(user: User, data: dict[str, Any]) -> dict[str, Any]:
        return refs(user, data) if refs else data

    def register(
        method: str, route: str, op: str, view: Callable, response: Any, **params: Any
    ) -> None:
        view.__name__ = view.__qualname__ = f"{op}_{plural if op == 'list' else name}"
        view.__module__ = module
        view.__doc__ = (docs or {}).get(op)
        # ninja builds the parameters from the signature; the views' own annotations are
        # generic (and strings, in this module), so it gets one with the real schema classes.
        view.__signature__ = inspect.Signature(
            [
                inspect.Parameter(key, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=value)
                for key, value in {"request": HttpRequest, **params}.items()
            ]
        )
        if op == "list":
            view = paginate(pagination)(view)
        router.api_operation([method], route, response=response, tags=[tag])(view)

    if list is not None:

        def list_view(request: HttpRequest, filters: Schema | None = None) -> Any:
            if "list" in require_view:
                require(request.user, "view", model)
            criteria = filters.dict() if filters is not None else {}
            return list(user=request.user, **criteria)

        params = {"filters": Query[filters]} if filters is not None else {}
        # `list`, the parameter, hides the builtin here.
        register("GET", path, "list", list_view, builtins.list[out], **params)

    if create is not None:

        def create_view(request: HttpRequest, payload: Schema) -> Any:
            require(request.user, "add", model)
            obj = create(actor=request.user, **resolve(request.user, payload.dict()))
            return Status(201, get(user=request.user, pk=obj.pk) if refetch else obj)

        register("POST", path, "create", create_view, {201: out}, payload=create_in)

    if get is not None:

        def get_view(request: HttpRequest, id: int) -> Any:
            obj = get(user=request.user, pk=id)
            if "get" in require_view:
                require(request.user, "view", obj)
            return obj

        register("GET", item, "get", get_view, out, id=int)

    if update is not None:
        update_keyword = object_keyword(update)

        def update_view(request: HttpRequest, id: int, payload: Schema) -> Any:
            obj = get(user=request.user, pk=id)
            require(request.user, "change", obj)
            data = resolve(request.user, payload.dict(exclude_unset=True))
            obj = update(actor=request.user, **{update_keyword: obj}, **data)
            return get(user=request.user, pk=id) if refetch else obj

        register("PATCH", item, "update", update_view, out, id=int, payload=patch_in)

    if delete is not None:
        delete_keyword = object_keyword(delete)

        def delete_view(request: HttpRequest, id: int) -> Any:
            obj = get(user=request.user, pk=id)
            require(request.user, "delete", obj)
            delete(actor=request.user, **{delete_keyword: obj})
            return Status(204, None)

        register("DELETE", item, "delete", delete_view, {204: None}, id=int)
