"""Search (issue 14): the database's own full-text index, kept by the database on every
write, queried with the viewer's rights inside the query, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.endings import conversation_resolve, handoff_transfer
from handoffs.lifecycle.messages import message_post
from handoffs.models import Agent, Conversation, Handoff, Role, Sender
from handoffs.search import finder, index
from tests import factories

pytestmark = pytest.mark.pg


@pytest.fixture
def people(make_agent, teams) -> dict[str, Agent]:
    billing, tech = teams["billing-specialist"], teams["tech-support"]
    return {
        "alice": make_agent("alice", teams=[billing]),
        "dan": make_agent("dan", teams=[billing]),
        "bob": make_agent("bob", teams=[billing, tech]),
        "tina": make_agent("tina", teams=[tech]),
        "sam": make_agent("sam", role=Role.SUPERVISOR),
    }


def say(hop: Handoff, body: str, sender: str = Sender.CUSTOMER, agent: Agent | None = None):
    conversation = Conversation.objects.get(pk=hop.conversation_id)
    return message_post(
        conversation=conversation,
        sender=sender,
        body=body,
        client_id=uuid.uuid4().hex,
        agent=agent,
    ).message


def taken(team: str, agent: Agent, **fields) -> Handoff:
    hop = factories.escalate(team, **fields)
    handoff_accept(handoff_id=hop.pk, agent=agent)
    hop.refresh_from_db()
    return hop


def found(agent: Agent, query: str) -> finder.SearchResults:
    return finder.search_for_agent(agent=agent, query=query)


def message_bodies(results: finder.SearchResults) -> list[str]:
    return [str(hit.snippet) for hit in results.messages]


def test_a_resolved_conversation_is_found_by_a_word_of_its_messages(people):
    hop = taken("billing-specialist", people["alice"], customer_name="Maria Lopez")
    say(hop, "My parcel arrived crumpled and the vase inside is broken")
    conversation_resolve(handoff_id=hop.pk, agent=people["alice"])

    results = found(people["alice"], "crumpled vase")
    assert len(results.messages) == 1
    hit = results.messages[0]
    assert "<mark>crumpled</mark>" in str(hit.snippet)
    assert "<mark>vase</mark>" in str(hit.snippet)
    assert hit.target.read_only
    assert hit.target.url.startswith(f"/history/{hop.pk}/")
    assert hit.title == "Maria Lopez"
    # Stemming: another form of the word finds it too; every word must occur.
    assert found(people["alice"], "crumpling").messages
    assert not found(people["alice"], "crumpled giraffe").messages
    # The team's history: a colleague finds it; the supervisor too; another team not.
    assert len(found(people["dan"], "crumpled vase").messages) == 1
    assert len(found(people["sam"], "crumpled vase").messages) == 1
    assert found(people["tina"], "crumpled vase").count == 0


def test_search_never_returns_another_teams_conversation(people):
    hop = taken(
        "tech-support",
        people["tina"],
        customer_name="Zed Quux",
        summary="Router firmware zebrafish crashes nightly",
    )
    say(hop, "zebrafish firmware again, please help")

    for who in ("alice", "dan"):
        results = found(people[who], "zebrafish")
        assert results.count == 0, who
        assert found(people[who], "Quux").count == 0
    # An open conversation is its owner's: a team mate doesn't find it until it closes.
    assert found(people["bob"], "zebrafish").count == 0
    owner = found(people["tina"], "zebrafish")
    assert len(owner.messages) == 1 and len(owner.summaries) == 1
    assert owner.messages[0].target.url == f"/conversations/{hop.pk}/"
    assert not owner.messages[0].target.read_only
    assert len(found(people["tina"], "Quux").customers) == 1

    conversation_resolve(handoff_id=hop.pk, agent=people["tina"])
    assert len(found(people["bob"], "zebrafish").messages) == 1  # tech's history now
    for who in ("alice", "dan"):
        assert found(people[who], "zebrafish").count == 0, who
        assert found(people[who], "Quux").count == 0, who


def test_a_waiting_card_is_found_by_its_team_only(people):
    hop = factories.escalate("billing-specialist", summary="Customer disputes a quokka fee")
    for who in ("alice", "dan", "bob", "sam"):
        results = found(people[who], "quokka fee")
        assert len(results.summaries) == 1, who
        assert results.summaries[0].target.url == f"/handoffs/{hop.pk}/"
    assert found(people["tina"], "quokka").count == 0


def test_after_a_transfer_the_former_team_finds_nothing_written_later(people):
    hop = taken("billing-specialist", people["alice"])
    say(hop, "the walrus invoice is wrong")
    nxt = handoff_transfer(
        handoff_id=hop.pk, agent=people["alice"], to="tech-support", note="Needs tech: walrus"
    )
    handoff_accept(handoff_id=nxt.pk, agent=people["tina"])
    say(nxt, "also my narwhal modem blinks")
    say(nxt, "narwhal private detail", sender=Sender.NOTE, agent=people["tina"])

    for who in ("alice", "dan"):
        assert len(found(people[who], "walrus invoice").messages) == 1, who
        assert found(people[who], "narwhal").count == 0, who
    tina = found(people["tina"], "narwhal")
    assert len(tina.messages) == 2
    assert all(hit.target.url == f"/conversations/{nxt.pk}/" for hit in tina.messages)
    # The transfer note is the next hop's summary: tech's (and the owner's) to find.
    assert len(found(people["tina"], "needs tech walrus").summaries) >= 1
    # The bot's summary of alice's (closed) hop opens that hop's card in its transcript.
    card = found(people["dan"], "charged twice").summaries
    assert [h.target.url for h in card] == [f"/history/{hop.pk}/#hop-{hop.pk}"]
    assert len(found(people["sam"], "narwhal").messages) == 2


def test_the_index_follows_every_write(people):
    hop = taken("billing-specialist", people["alice"], customer_name="Pim Platypus")
    message = say(hop, "the platypus blender hums")
    assert len(found(people["alice"], "blender").messages) == 1
    # Written outside the lifecycle (the admin, a data fix): the database re-indexes.
    type(message).objects.filter(pk=message.pk).update(body="the platypus toaster hums")
    assert not found(people["alice"], "blender").messages
    assert len(found(people["alice"], "toaster").messages) == 1
    Conversation.objects.filter(pk=hop.conversation_id).update(customer_name="Pim Wombat")
    assert len(found(people["alice"], "wombat").customers) == 1
    assert not found(people["alice"], "platypus").customers
    Handoff.objects.filter(pk=hop.pk).update(summary="about a kettle")
    assert len(found(people["alice"], "kettle").summaries) == 1
    Conversation.objects.filter(pk=hop.conversation_id).delete()
    assert found(people["sam"], "toaster").count == 0
    assert found(people["sam"], "kettle").count == 0  # a hop without its conversation


def test_the_index_survives_a_table_rebuild(people):
    """SQLite: Django rebuilds a table for some schema changes, which drops its triggers;
    ``post_migrate`` restores them and re-indexes. PostgreSQL's generated column can't be
    lost that way (a rebuild copies it with the table)."""
    hop = taken("billing-specialist", people["alice"])
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER search_message_fts_ai")
        say(hop, "an ocelot message written while the trigger was gone")
        assert not found(people["alice"], "ocelot").messages
        assert index.ensure_sqlite_index() is True
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT is_generated FROM information_schema.columns "
                "WHERE table_name = 'handoffs_message' AND column_name = 'search'"
            )
            assert cursor.fetchone() == ("ALWAYS",)
        say(hop, "an ocelot message")
    assert len(found(people["alice"], "ocelot").messages) == 1
    say(hop, "a second ocelot")
    assert len(found(people["alice"], "ocelot").messages) == 2
    assert index.ensure_sqlite_index() is False


def test_hostile_text_is_escaped_and_only_our_marks_are_markup(people):
    hop = taken("billing-specialist", people["alice"], customer_name="<b>Eve</b>")
    say(hop, '<img src=x onerror="alert(1)"> refund <script>alert(2)</script> "refund"')
    hit = found(people["alice"], "refund").messages[0]
    html = str(hit.snippet)
    assert "<img" not in html and "<script" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert html.count("<mark>refund</mark>") == 2
    assert "<b>" not in str(found(people["alice"], "eve").customers[0].snippet)


def test_highlight_windows_long_text_around_the_first_match():
    text = ("word " * 100) + "the refund was approved " + ("tail " * 100)
    snippet = str(finder.highlight(text, ["refunds"], width=80))
    assert snippet.startswith("…") and snippet.endswith("…")
    assert "<mark>refund</mark>" in snippet
    assert len(snippet) < 140
    assert str(finder.highlight("a & b", ["zzz"])) == "a &amp; b"


@pytest.mark.parametrize(
    ("query", "message"),
    [("x" * 201, "at most 200"), ("the and of", "Type a word")],
)
def test_a_query_that_cannot_run_says_why(people, query, message):
    with pytest.raises(finder.SearchError) as error:
        found(people["alice"], query)
    assert message in error.value.message


def test_fts_syntax_in_a_query_is_just_words(people):
    hop = taken("billing-specialist", people["alice"])
    say(hop, "near the lobster tank")
    for query in ('lobster"', "lobster AND OR", "lobster*", "NEAR(lobster)", "lobster:*"):
        assert len(found(people["alice"], query).messages) == 1, query


def test_an_inactive_agent_finds_nothing(people):
    hop = taken("billing-specialist", people["alice"])
    say(hop, "a heron question")
    people["alice"].user.is_active = False
    people["alice"].user.save()
    assert found(people["alice"], "heron").count == 0


def test_rights_are_applied_before_the_limit(people):
    """Many newer matches the agent may not see must not crowd out the one they may: the
    rights are a condition inside the full-text query, not a filter on its results."""
    mine = taken("billing-specialist", people["alice"])
    say(mine, "the gecko ate my invoice")
    conversation_resolve(handoff_id=mine.pk, agent=people["alice"])
    theirs = taken("tech-support", people["tina"])
    for i in range(finder.LIMITS["messages"] + 10):
        say(theirs, f"gecko number {i}")
    for _ in range(finder.LIMITS["summaries"] + 5):
        factories.escalate("tech-support", summary="A gecko in the server room")
    results = found(people["alice"], "gecko")
    assert [hit.target.url.split("#")[0] for hit in results.messages] == [f"/history/{mine.pk}/"]
    assert results.summaries == []
    assert len(found(people["tina"], "gecko").messages) == finder.LIMITS["messages"]
