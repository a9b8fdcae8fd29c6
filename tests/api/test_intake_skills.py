"""The intake API's required skills (offer routing): ``skills`` and ``language``."""

from __future__ import annotations

import json

import pytest

from handoffs.models import Handoff

pytestmark = pytest.mark.django_db


def post(client, key, **fields):
    body = {
        "customer": "cust-sk",
        "from_agent": "tier1-bot",
        "to_agent": "billing-specialist",
        "summary": "Refund for a German-speaking customer",
        **fields,
    }
    return client.post(
        "/api/v1/handoffs",
        json.dumps(body),
        "application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def test_skills_and_language_become_the_hops_required_skills(client, bot_key, teams):
    response = post(client, bot_key, skills=["Refunds"], language="DE")
    assert response.status_code == 201, response.content
    assert response.json()["handoff"]["required_skills"] == ["de", "refunds"]
    assert Handoff.objects.get().required_skills == ["de", "refunds"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"skills": "refunds"}, "skills must be a list of strings"),
        ({"skills": [1]}, "skills must be a list of strings"),
        ({"skills": ["<script>"]}, "skills are short tokens"),
        ({"language": ""}, "language must be a language code"),
        ({"skills": [f"s{i}" for i in range(11)]}, "at most 10 skills"),
    ],
)
def test_bad_skills_are_a_400_and_change_nothing(client, bot_key, teams, fields, message):
    response = post(client, bot_key, **fields)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Handoff.objects.exists()
