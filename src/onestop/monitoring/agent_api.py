"""The agent API under /api/agent/v1 (docs/agent-protocol.md): its own NinjaAPI, versioned apart
from the user API, authenticated by `Authorization: Agent <agent_id>:<secret>`.

Errors are problem+json like the user API's, plus a `code` the agent acts on: `token_invalid`,
`credential_invalid`, `reenroll`.
"""

import json
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.security import APIKeyHeader
from pydantic import ConfigDict

from onestop.core.api_base import PROBLEM_CONTENT_TYPE, InputSchema, install_problem_handlers
from onestop.core.errors import ConflictError
from onestop.monitoring import services
from onestop.monitoring.models import Agent

MAX_BODY_BYTES = 1024 * 1024


def agent_problem(status: int, detail: str, code: str) -> HttpResponse:
    body = {
        "type": f"urn:onestop:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "errors": [],
    }
    return HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)


class AgentAuth(APIKeyHeader):
    """`Authorization: Agent <agent_id>:<secret>`."""

    param_name = "Authorization"

    def authenticate(self, request: HttpRequest, key: str | None) -> Agent | None:
        # Checked before the body is read: an oversized report is refused unparsed.
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
            raise HttpError(413, "A report is at most 1 MiB; send fewer samples per report.")
        scheme, _space, credential = (key or "").partition(" ")
        if scheme != "Agent":
            return None
        agent_id, _colon, secret = credential.partition(":")
        agent = services.agent_authenticate(agent_id=agent_id, secret=secret)
        if agent is not None:
            request.agent = agent  # type: ignore[attr-defined]
        return agent


agent_api = NinjaAPI(
    title="OneStop agent API",
    version="agent-1",
    description="What onestop-agent and the server say to each other (docs/agent-protocol.md).",
    auth=AgentAuth(),
    urls_namespace="api-agent-v1",
)
install_problem_handlers(agent_api)


@agent_api.exception_handler(ConflictError)
def _reenroll(request: HttpRequest, exc: ConflictError) -> HttpResponse:
    return agent_problem(
        409,
        "This report comes from a copy of an enrolled agent (a cloned machine): enrol it again.",
        "reenroll",
    )


@agent_api.exception_handler(AuthenticationError)
def _unauthorised(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return agent_problem(
        401, "The agent's credential is unknown, wrong or revoked.", "credential_invalid"
    )


class Config(Schema):
    version: str
    interval: int
    inventory_interval: int
    watch_services: list[str]
    watch_processes: list[str]


def _config(agent: Agent) -> dict[str, Any]:
    return {"version": agent.config_version, **agent.config}


class EnrollIn(InputSchema):
    token: str = Field(max_length=200)
    hostname: str = Field(max_length=255)
    machine_id: str = Field("", max_length=64)
    os: str = Field("", max_length=200)
    agent_version: str = Field("", max_length=20)


class EnrollOut(Schema):
    agent_id: int
    secret: str
    device_id: int
    config: Config


@agent_api.post("/enroll", auth=None, response={201: EnrollOut})
def enroll(request: HttpRequest, payload: EnrollIn):
    try:
        agent, secret = services.agent_enroll(**payload.dict())
    except PermissionDenied:
        return agent_problem(
            401, "The enrolment token is unknown, expired or revoked.", "token_invalid"
        )
    return Status(
        201,
        {
            "agent_id": agent.pk,
            "secret": secret,
            "device_id": agent.device_id,
            "config": _config(agent),
        },
    )


class ReportIn(Schema):
    # Not InputSchema: a newer agent may send fields this server does not know yet.
    report_id: str = Field(min_length=8, max_length=32, pattern="^[0-9a-fA-F-]+$")
    seq: int = Field(ge=1)
    sent_at: float | None = None
    dropped: int = Field(0, ge=0)
    heartbeat: dict[str, Any] = {}
    samples: list[list[Any]] = []


class ReportOut(Schema):
    accepted: int
    rejected: int
    config_version: str


@agent_api.post("/report", response=ReportOut)
def report(request: HttpRequest, payload: ReportIn):
    agent: Agent = request.auth
    result = services.agent_report(
        agent=agent,
        report_id=payload.report_id.replace("-", "").lower(),
        seq=payload.seq,
        samples=payload.samples,
        dropped=payload.dropped,
        heartbeat=payload.heartbeat,
    )
    return {
        "accepted": result.accepted,
        "rejected": result.rejected,
        "config_version": result.config_version,
    }


class InventoryIn(Schema):
    """The inventory as the agent read it; fields it could not read are left out, and fields
    a newer agent adds are kept."""

    model_config = ConfigDict(extra="allow")

    hostname: str = Field("", max_length=255)
    machine_id: str = Field("", max_length=64)
    os: dict[str, Any] = {}
    cpu: dict[str, Any] = {}
    memory_bytes: int | None = Field(None, ge=0)
    vendor: str = Field("", max_length=100)
    model: str = Field("", max_length=100)
    serial: str = Field("", max_length=100)
    disks: list[dict[str, Any]] = Field([], max_length=200)
    nics: list[dict[str, Any]] = Field([], max_length=200)
    software: list[dict[str, Any]] = Field([], max_length=20_000)
    users: list[str] = Field([], max_length=1000)


class InventoryOut(Schema):
    changes: int


@agent_api.post("/inventory", response=InventoryOut)
def inventory(request: HttpRequest, payload: InventoryIn):
    data = payload.model_dump(exclude_unset=True)
    return {"changes": services.agent_inventory(agent=request.auth, inventory=data)}


@agent_api.get("/config", response=Config)
def config(request: HttpRequest):
    return _config(request.auth)


class RotateOut(Schema):
    secret: str


@agent_api.post("/rotate", response=RotateOut)
def rotate(request: HttpRequest):
    return {"secret": services.agent_rotate(agent=request.auth)}
