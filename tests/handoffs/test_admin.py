"""Django admin: every changelist searches and filters; bot keys are shown once, stored
hashed, and revocable."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.contrib.admin.utils import quote
from django.contrib.messages import get_messages

from handoffs.api.keys import bot_create, bot_revoke
from handoffs.lifecycle.intake import handoff_intake
from handoffs.memory.embedded import EmbeddedStore
from handoffs.memory.services import memory_store
from handoffs.models import Bot, Event, Handoff

KEY_RE = re.compile(r"dk-[A-Za-z0-9_-]{20,}")


@pytest.fixture
def data(teams, make_agent, bot):
    make_agent("alice", teams=[teams["billing-specialist"]])
    make_agent("bob", teams=[teams["tech-support"]])
    triage, _ = bot_create(name="triage-bot")
    bot_revoke(bot=triage)
    store = EmbeddedStore()
    dave = store.start_session(agent_id="user-dave")["session"]["id"]
    erin = store.start_session(agent_id="user-erin")["session"]["id"]
    store.end_session(session_id=erin, summary="closed by bot")
    memory_store(
        bot=bot,
        agent_id="user-dave",
        content="Customer ACC-4521 reports a billing overcharge.",
        importance=1.0,
        metadata={"type": "handoff", "to_agent": "billing-specialist"},
        session_id=dave,
    )
    memory_store(
        bot=bot, agent_id="user-erin", content="App crashes on login.", memory_type="semantic"
    )
    handoff_intake(
        customer="user-erin",
        source_session_id=erin,
        from_agent="tier1-bot",
        to_agent="tech-support",
        summary="App crashes on login after the update.",
        sentiment="angry",
    )
    return {"dave": dave, "erin": erin}


# url, query, text that must appear, text that must not
CHANGELISTS = [
    ("handoffs/team", {"q": "billing"}, "billing-specialist", "tech-support"),
    ("handoffs/team", {"is_default__exact": "0"}, "tech-support", "General queue"),
    ("handoffs/agent", {"q": "alice"}, "alice", "bob"),
    ("handoffs/agent", {"role__exact": "agent", "q": "bo"}, "bob", "alice"),
    ("handoffs/bot", {"q": "triage"}, "triage-bot", "tier1-bot"),
    ("handoffs/bot", {"revoked_at__isempty": "1"}, "tier1-bot", "triage-bot"),
    ("memory/memorysession", {"q": "user-erin"}, "user-erin", "user-dave"),
    ("memory/memorysession", {"ended_reason": "client"}, "user-erin", "user-dave"),
    ("memory/memory", {"q": "overcharge"}, "billing overcharge", "crashes"),
    ("memory/memory", {"memory_type__exact": "semantic"}, "App crashes", "overcharge"),
    ("handoffs/handoff", {"q": "ACC-4521"}, "user-dave", "user-erin"),
    ("handoffs/handoff", {"sentiment__exact": "angry"}, "user-erin", "user-dave"),
    ("handoffs/handoff", {"status__exact": "waiting", "misrouted__exact": "0"}, "user-dave", "?"),
    ("handoffs/event", {"q": "user-erin"}, "handoff.created", "bot:tier1-bot"),
    ("handoffs/event", {"kind": "handoff.created"}, "bot:tier1-bot", "handoff.accepted"),
]


@pytest.mark.parametrize(
    "path,query,present,absent",
    CHANGELISTS,
    ids=[f"{p}?{'&'.join(q)}" for p, q, _, _ in CHANGELISTS],
)
def test_changelists_search_and_filter(admin_client, data, path, query, present, absent):
    response = admin_client.get(f"/admin/{path}/", query)
    # An unknown filter makes the admin redirect with ?e=1 instead of answering 200.
    assert response.status_code == 200
    html = response.content.decode()
    assert present in html
    if absent != "?":
        assert absent not in html


@pytest.mark.parametrize(
    "path",
    ["handoffs/team", "handoffs/agent", "handoffs/bot", "memory/memorysession", "memory/memory"]
    + ["handoffs/handoff", "handoffs/event", "handoffs/idempotencyrecord"],
)
def test_changelists_and_change_pages_load(admin_client, data, path):
    response = admin_client.get(f"/admin/{path}/")
    assert response.status_code == 200
    objects = response.context["cl"].result_list
    if path != "handoffs/idempotencyrecord":
        assert len(objects) >= 1
        # As the admin links it: quote() escapes "_" so ids like "sess_22ab..." survive
        # unquote() (a raw "_22" would decode to '"'); the raw id fails ~2 % of the time.
        detail = admin_client.get(f"/admin/{path}/{quote(str(objects[0].pk))}/change/")
        assert detail.status_code == 200


def test_admin_pages_need_a_staff_login(client, data):
    response = client.get("/admin/handoffs/handoff/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_memory_and_events_are_read_only(admin_client, data):
    assert admin_client.get("/admin/memory/memory/add/").status_code == 403
    assert admin_client.get("/admin/memory/memorysession/add/").status_code == 403
    assert admin_client.get("/admin/handoffs/event/add/").status_code == 403
    event = Event.objects.first()
    response = admin_client.post(f"/admin/handoffs/event/{event.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Event.objects.filter(pk=event.pk).exists()


def test_creating_a_bot_shows_the_key_once_and_stores_only_its_hash(admin_client, client, db):
    response = admin_client.post(
        "/admin/handoffs/bot/add/",
        {
            "name": "web-bot",
            "scope": "write",  # the form's preselected default
            "namespaces": "",
            "callback_url": "",
            "revoked_at_0": "",
            "revoked_at_1": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in get_messages(response.wsgi_request)] or [
        str(m) for m in response.context["messages"]
    ]
    keys = [key for message in messages for key in KEY_RE.findall(message)]
    assert len(keys) == 1
    raw_key = keys[0]
    assert raw_key in response.content.decode()

    bot = Bot.objects.get(name="web-bot")
    assert bot.key_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    assert raw_key[3:15] == bot.key_prefix
    stored = " ".join(str(getattr(bot, f.attname)) for f in Bot._meta.concrete_fields)
    assert raw_key not in stored
    assert raw_key[15:] not in stored

    # Not shown again: neither the changelist nor the change page carries it.
    assert raw_key not in admin_client.get("/admin/handoffs/bot/").content.decode()
    change = admin_client.get(f"/admin/handoffs/bot/{bot.pk}/change/").content.decode()
    assert raw_key not in change
    # Saving the bot again keeps its key.
    admin_client.post(
        f"/admin/handoffs/bot/{bot.pk}/change/",
        {"name": "web-bot", "scope": "write", "callback_url": "https://example.com/hook"},
    )
    bot.refresh_from_db()
    assert bot.check_key(raw_key)

    works = client.get("/v1/sessions", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert works.status_code == 200


def test_revoke_action_makes_the_next_request_401(admin_client, client, bot_and_key):
    bot, raw_key = bot_and_key
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}
    assert client.get("/v1/sessions", **auth).status_code == 200
    other, other_key = bot_create(name="other-bot")

    response = admin_client.post(
        "/admin/handoffs/bot/",
        {"action": "revoke_keys", "_selected_action": [bot.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Revoked 1 key(s)." in response.content.decode()
    bot.refresh_from_db()
    assert bot.revoked_at is not None

    denied = client.get("/v1/sessions", **auth)
    assert denied.status_code == 401
    assert denied.json()["error"] == "authentication_error"
    assert denied.json()["code"] == "API_KEY_EXPIRED"
    intake = client.post(
        "/api/v1/handoffs",
        {
            "customer": "user-dave",
            "from_agent": "tier1-bot",
            "to_agent": "billing-specialist",
            "summary": "x",
        },
        "application/json",
        **auth,
    )
    assert intake.status_code == 401
    assert Handoff.objects.count() == 0
    # Other bots are untouched.
    assert client.get("/v1/sessions", HTTP_X_API_KEY=other_key).status_code == 200


def test_admin_narrows_a_key_and_refuses_a_bad_pattern(admin_client, client, bot_and_key):
    bot, key = bot_and_key
    url = f"/admin/handoffs/bot/{bot.pk}/change/"
    form = {"name": bot.name, "scope": "read", "namespaces": "user-*", "callback_url": ""}
    assert admin_client.post(url, form).status_code == 302
    bot.refresh_from_db()
    assert (bot.scope, bot.namespaces) == ("read", "user-*")
    assert "user-*" in admin_client.get("/admin/handoffs/bot/").content.decode()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    stored = client.post(
        "/v1/memory/store", {"agent_id": "user-dave", "content": "x"}, "application/json", **headers
    )
    assert (stored.status_code, stored.json()["code"]) == (403, "INSUFFICIENT_SCOPE")

    bad = admin_client.post(url, {**form, "namespaces": "user-*, <script>"})
    assert bad.status_code == 200
    assert "not a namespace pattern" in bad.content.decode()
    assert "<script>" not in bad.content.decode().split("not a namespace pattern")[1][:200]
    bot.refresh_from_db()
    assert bot.namespaces == "user-*"


def test_admin_pages_carry_the_console_icon(admin_client, client, db):
    """Without a <link rel="icon"> the browser asks every admin page for /favicon.ico,
    which is a 404; the admin shows the console's icon like every other page."""
    icon = '<link rel="icon" href="/static/handoffs/favicon.svg">'
    assert icon in client.get("/admin/login/").content.decode()
    assert icon in admin_client.get("/admin/").content.decode()
    assert icon in admin_client.get("/admin/handoffs/team/add/").content.decode()
