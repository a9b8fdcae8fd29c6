"""Querysets compiled once per shape (``handoffs.compiled``) give what the ORM gives."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Q

from handoffs.compiled import Compiled
from handoffs.models import Agent, Team

pytestmark = [pytest.mark.pg]


def _teams_with_counts(team_ids, *, slug_prefix=""):
    return (
        Team.objects.filter(Q(pk__in=team_ids) | Q(slug__startswith=slug_prefix or "~none~"))
        .annotate(members=Count("agents"))
        .order_by("pk")
        .values_list("slug", "members", "pk")
    )


@pytest.fixture
def crew(make_agent, teams) -> list[Agent]:
    extra = [Team.objects.create(slug=f"extra-{n}", name=f"Extra {n}") for n in range(5)]
    return [
        make_agent("alice", teams=[teams["billing-specialist"], extra[0]]),
        make_agent("bob", teams=[teams["tech-support"]]),
        make_agent("carol", teams=extra[1:4]),
    ]


@pytest.mark.django_db
def test_each_list_size_and_constant_gives_the_orms_rows_and_compiles_once_per_shape(crew):
    compiled = Compiled(_teams_with_counts)
    ids = list(Team.objects.order_by("pk").values_list("pk", flat=True))
    for size in (1, 2, 3, 5, 7):  # 3 and 5 to 7 are padded: one shape for 5, 6, 7 and 8
        picked = ids[:size]
        assert compiled(picked) == list(_teams_with_counts(picked))
        assert compiled(picked, slug_prefix="extra") == list(
            _teams_with_counts(picked, slug_prefix="extra")
        )
    assert len(compiled._shapes) == 2 * 4  # sizes 1, 2, 4, 8 without and with the prefix
    if connection.vendor == "postgresql":  # one array parameter, whatever the list's size
        for shape in compiled._shapes.values():
            assert "= ANY(%s)" in shape.sql and " IN (" not in shape.sql
            assert len(shape.params) == shape.sql.count("%s") == 2  # the ids, the prefix
    # Repeated ids mean what they mean in an IN list; an empty list goes through the ORM.
    assert compiled([ids[2], ids[0], ids[2]]) == list(_teams_with_counts([ids[0], ids[2]]))
    assert compiled([]) == [] and len(compiled._shapes) == 8


@pytest.mark.django_db
def test_model_rows_keep_their_related_objects_and_strings_work_as_ids(
    crew, django_assert_num_queries
):
    agents = Compiled(
        lambda user_ids: (
            Agent.objects.select_related("user").filter(user_id__in=user_ids).order_by("pk")
        )
    )
    wanted = [crew[2].user_id, crew[0].user_id]
    agents(wanted)  # compiled
    with django_assert_num_queries(1):
        found = agents(wanted)
        assert [(a.pk, a.user.username) for a in found] == [
            (crew[0].pk, "alice"),
            (crew[2].pk, "carol"),
        ]
    by_name = Compiled(
        lambda names: (
            get_user_model()
            .objects.filter(username__in=names)
            .order_by("username")
            .values_list("username", flat=True)
        )
    )
    assert by_name(["carol", "bob", "nobody"]) == ["bob", "carol"]
    assert by_name(["alice"]) == ["alice"]


@pytest.mark.django_db
def test_a_build_that_hides_its_ids_goes_through_the_orm(crew):
    # Only the largest id reaches the SQL: its stand-in can't say which real id it was.
    hidden = Compiled(lambda ids: Agent.objects.filter(pk=max(ids)).values_list("pk", flat=True))
    assert hidden([crew[0].pk, crew[2].pk]) == [crew[2].pk]
    assert list(hidden._shapes.values()) == [None]  # known not to compile this way
    assert hidden([crew[0].pk, crew[1].pk]) == [crew[1].pk]


@pytest.mark.django_db(transaction=True)
def test_a_shape_compiled_on_one_thread_runs_on_another(crew):
    compiled = Compiled(_teams_with_counts)
    ids = [t.pk for t in Team.objects.order_by("pk")[:3]]
    here = compiled(ids)
    there: list = []

    def run() -> None:
        try:
            there.append(compiled(ids))
        finally:
            from django.db import connections

            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert there == [here] and len(compiled._shapes) == 1
