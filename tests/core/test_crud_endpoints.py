"""`crud_endpoints` documents its endpoints exactly as the hand-written views it replaces:
parameters, schemas, tags, descriptions, summaries and operation ids."""

from __future__ import annotations

import pytest
from django.http import HttpRequest
from ninja import NinjaAPI, Router
from ninja.pagination import paginate

from onestop.core import selectors, services
from onestop.core.api import TeamIn, TeamOut, TeamPatch
from onestop.core.api_base import NewestFirst, crud_endpoints
from onestop.core.models import Team

hand_written = Router()


@hand_written.get("/teams", response=list[TeamOut], tags=["teams"])
@paginate(NewestFirst)
def list_teams(request: HttpRequest): ...


@hand_written.post("/teams", response={201: TeamOut}, tags=["teams"])
def create_team(request: HttpRequest, payload: TeamIn):
    """Adds a team.

    With its members."""


@hand_written.get("/teams/{int:id}", response=TeamOut, tags=["teams"])
def get_team(request: HttpRequest, id: int): ...


@hand_written.patch("/teams/{int:id}", response=TeamOut, tags=["teams"])
def update_team(request: HttpRequest, id: int, payload: TeamPatch): ...


@hand_written.delete("/teams/{int:id}", response={204: None}, tags=["teams"])
def delete_team(request: HttpRequest, id: int):
    """Deletes a team."""


declared = Router()
crud_endpoints(
    declared,
    "/teams",
    module=__name__,
    name="team",
    plural="teams",
    tag="teams",
    model=Team,
    out=TeamOut,
    create_in=TeamIn,
    patch_in=TeamPatch,
    list=selectors.team_list,
    get=selectors.team_get,
    create=services.team_create,
    update=services.team_update,
    delete=services.team_delete,
    pagination=NewestFirst,
    docs={
        "create": """
            Adds a team.

            With its members.
        """,
        "delete": "Deletes a team.",
    },
)


def _openapi(router: Router, namespace: str) -> dict:
    api = NinjaAPI(urls_namespace=namespace)
    api.add_router("/", router)
    return api.get_openapi_schema(path_prefix="")


def test_declared_endpoints_document_like_hand_written_ones():
    declared_schema = _openapi(declared, "crud-declared")
    assert declared_schema == _openapi(hand_written, "crud-hand-written")
    operations = [op for item in declared_schema["paths"].values() for op in item.values()]
    assert {op["operationId"] for op in operations} == {
        f"tests_core_test_crud_endpoints_{verb}"
        for verb in ("list_teams", "create_team", "get_team", "update_team", "delete_team")
    }


def test_update_and_delete_need_the_get_selector():
    with pytest.raises(TypeError):
        crud_endpoints(
            Router(),
            "/teams",
            module=__name__,
            name="team",
            plural="teams",
            tag="teams",
            model=Team,
            out=TeamOut,
            delete=services.team_delete,
        )
