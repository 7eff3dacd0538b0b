"""SLA policies through the API: escalation levels name their team and person by id."""

from __future__ import annotations

import pytest

from onestop.contracts import services
from tests.apitest import api_client, call

pytestmark = pytest.mark.django_db


def _policy():
    return services.sla_policy_create(
        actor=None,
        name="标准 SLA",
        targets=[{"priority": "P2", "first_response_minutes": 30, "resolution_minutes": 240}],
    )


def test_patch_sets_an_escalation_team(world):
    policy = _policy()
    escalations = [{"percent": 100, "action": "reassign", "team_id": world.team_a.pk}]
    response = call(
        api_client(world.admin),
        "patch",
        f"/api/v1/sla-policies/{policy.pk}",
        {"escalations": escalations},
    )
    assert response.status_code == 200, response.body
    assert response.body["escalations"] == [{**escalations[0], "assignee_id": None}]


def test_patch_refuses_an_unknown_escalation_team(world):
    policy = _policy()
    response = call(
        api_client(world.admin),
        "patch",
        f"/api/v1/sla-policies/{policy.pk}",
        {"escalations": [{"percent": 100, "action": "reassign", "team_id": 999_999}]},
    )
    assert response.status_code == 422
    assert [error["field"] for error in response.body["errors"]] == ["escalations.0.team_id"]
    assert not policy.escalations.exists()
