"""The demo: people, teams, a bot, and escalations made through the memory API.

Used by ``manage.py demo`` (``make run``). The escalations go through the real ``dakera``
SDK against the running console, exactly as a bot would send them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .api import keys
from .lifecycle import accept, endings, messages
from .models import (
    Agent,
    Bot,
    Conversation,
    Event,
    Handoff,
    Message,
    Role,
    SavedReply,
    Sender,
    Team,
)

DEMO_PASSWORD = "demo-pass-123"  # noqa: S105 - printed to the person running the demo
# slug, name, topic (what the team helps with: said to customers and filled into
# {{ topic }} when the bot stated none)
TEAMS = [
    ("billing-specialist", "Billing specialists", "your bill"),
    ("tech-support", "Technical support", "the technical problem"),
]
PEOPLE = [
    # username, role, teams, is_staff/superuser
    ("admin", "admin", [], True),
    ("sam", Role.SUPERVISOR, ["billing-specialist", "tech-support"], False),
    ("alice", Role.AGENT, ["billing-specialist"], False),
    ("bob", Role.AGENT, ["billing-specialist", "tech-support"], False),
]

SEED_CUSTOMER = "user-dave"
SEED_QUERY = "handoff summary billing issue"
SEED_SUMMARY = (
    "Customer ACC-4521 (since 2024) reports $100 billing overcharge. Verified plan is "
    "$199/mo but last invoice shows $299. Customer tone: frustrated but polite. Needs "
    "refund or explanation."
)


@dataclass
class DemoSetup:
    bot_key: str
    logins: list[tuple[str, str, str]]
    webhook_secret: str = ""


# Team saved replies for the walkthrough (type /refund in a billing conversation).
SAVED_REPLIES = [
    (
        "billing-specialist",
        "refund",
        "Refund on its way",
        "Hi {{ customer.first_name }}, this is {{ agent.name }} from {{ team.name }}. I've "
        "looked into {{ topic }} and issued the refund: you'll see it on your statement "
        "within 5 business days.",
    ),
    (
        "billing-specialist",
        "invoice",
        "Where to find invoices",
        "You can download every invoice under Account → Billing → Invoices "
        "(https://example.com/account/billing).",
    ),
]


@transaction.atomic
def ensure_people_and_bot(bot_name: str = "tier1-bot", callback_url: str = "") -> DemoSetup:
    """Create (or refresh) the demo's teams, people and bot; returns a fresh bot key."""
    teams = {
        slug: Team.objects.get_or_create(slug=slug, defaults={"name": name, "topic": topic})[0]
        for slug, name, topic in TEAMS
    }
    User = get_user_model()
    logins = []
    for username, role, team_slugs, is_admin in PEOPLE:
        user, _ = User.objects.get_or_create(
            username=username, defaults={"first_name": username.title()}
        )
        user.set_password(DEMO_PASSWORD)
        user.is_staff = user.is_superuser = is_admin
        user.save()
        agent, _ = Agent.objects.get_or_create(user=user)
        agent.role = Role.SUPERVISOR if is_admin else role
        agent.save()
        agent.teams.set([teams[s] for s in team_slugs])
        logins.append((username, DEMO_PASSWORD, str(role)))
    for slug, shortcut, title, body in SAVED_REPLIES:
        SavedReply.objects.get_or_create(
            team=teams[slug], shortcut=shortcut, defaults={"title": title, "body": body}
        )
    bot = Bot.objects.filter(name=bot_name).first()
    if bot is None:
        bot, key = keys.bot_create(name=bot_name, callback_url=callback_url)
    else:
        key = bot.set_new_key()
        bot.revoked_at = None
        bot.callback_url = callback_url
        bot.save()
    return DemoSetup(bot_key=key, logins=logins, webhook_secret=bot.webhook_secret)


def run_seed_scenario(client, customer: str = SEED_CUSTOMER) -> list:
    """The brief's seed scenario, through a ``dakera.DakeraClient``; returns the recall."""
    session = client.start_session(customer, metadata={"agent": "tier1-bot", "channel": "chat"})
    client.store_memory(
        customer,
        "User reports billing discrepancy: charged $299 but plan is $199/mo",
        importance=0.9,
        metadata={"type": "issue"},
        session_id=session["id"],
    )
    client.store_memory(
        customer,
        "User has been a customer since 2024. Account ID: ACC-4521.",
        importance=0.8,
        metadata={"type": "context"},
        session_id=session["id"],
    )
    client.store_memory(
        customer,
        SEED_SUMMARY,
        importance=1.0,
        metadata={
            "type": "handoff",
            "from_agent": "tier1-bot",
            "to_agent": "billing-specialist",
            "channel": "web",  # the customer chats on the console's link (or the widget)
        },
        session_id=session["id"],
    )
    client.end_session(session["id"], summary="Bot->human handoff: billing overcharge")
    client.start_session(customer, metadata={"agent": "billing-specialist"})
    return client.recall(customer, SEED_QUERY, top_k=3).memories


MORE_ESCALATIONS = [
    {
        "customer": "user-erin",
        "name": "Erin Park",
        "facts": ["Customer on the Team plan, 12 seats. Account ID: ACC-7730."],
        "said": (
            "The mobile app crashes on login since yesterday's update; reinstalling did not help."
        ),
        "summary": (
            "Customer ACC-7730 (Team plan, 12 seats): iOS app crashes on login since the "
            "latest update. Tried reinstall and password reset. Customer says the team has "
            "a client demo today and needs it working urgently."
        ),
        "to": "tech-support",
        "metadata": {"sentiment": "frustrated"},
    },
    {
        "customer": "user-frank",
        "name": "Frank Ortiz",
        "facts": ["Customer since 2021, annual plan renewed last week. Account ID: ACC-1198."],
        "said": (
            "I was charged twice for the renewal and nobody answers my emails. I want to cancel."
        ),
        "summary": (
            "Customer ACC-1198 was charged twice for the annual renewal and threatens to "
            "cancel. Bot confirmed two identical charges on the card. Needs a refund of the "
            "duplicate charge and a retention offer."
        ),
        "to": "billing-specialist",
        "metadata": {"urgency": "high"},
    },
]


PAST = {
    "customer": "user-frank",
    "name": "Frank Ortiz",
    "to": "billing-specialist",
    "facts": [],
    "metadata": {},
    "said": "My card was declined at renewal but the money left my account.",
    "summary": (
        "Customer ACC-1198: renewal payment declined but the amount was debited. Needs the "
        "pending charge explained."
    ),
    "agent": "bob",
    "reply": "The debit is a pending authorisation; it drops off within 3 days. Sorry for "
    "the worry!",
    "resolution": "Explained the pending authorisation; customer satisfied.",
    "days_ago": 12,
}


def run_past_conversation(client) -> None:
    """A conversation Frank had 12 days ago, escalated by the bot, answered by bob and
    resolved, so History, search and "The customer's past" have something to show on
    his new escalation. Escalated through the API like the others; answered and resolved
    through the same services the console's buttons call; then its times are moved back
    (demo data only: nothing else ever rewrites a timestamp)."""
    item = PAST
    _escalate(client, item)
    hop = Handoff.objects.filter(customer=item["customer"]).latest("created_at")
    agent = Agent.objects.get(user__username=item["agent"])
    accept.handoff_accept(handoff_id=hop.pk, agent=agent)
    hop.refresh_from_db()
    messages.message_post(
        conversation=hop.conversation,
        sender=Sender.AGENT,
        body=item["reply"],
        client_id="demo-past-reply",
        agent=agent,
    )
    endings.conversation_resolve(handoff_id=hop.pk, agent=agent, summary=item["resolution"])
    back = timedelta(days=item["days_ago"])
    with transaction.atomic():
        hop.refresh_from_db()
        now = timezone.now()
        Handoff.objects.filter(pk=hop.pk).update(
            created_at=hop.created_at - back,
            accepted_at=(hop.accepted_at or now) - back,
            closed_at=(hop.closed_at or now) - back,
        )
        Conversation.objects.filter(pk=hop.conversation_id).update(
            created_at=hop.conversation.created_at - back,
            closed_at=(hop.conversation.closed_at or now) - back,
        )
        Message.objects.filter(conversation_id=hop.conversation_id).update(
            created_at=F("created_at") - back
        )
        Event.objects.filter(handoff=hop).update(created_at=F("created_at") - back)


def _escalate(client, item: dict) -> None:
    """One escalation through the SDK: a bot session with the facts it learned, what
    the customer said and the handoff summary, then the session ends."""
    session = client.start_session(item["customer"], metadata={"agent": "tier1-bot"})
    for fact in item["facts"]:
        client.store_memory(
            item["customer"],
            fact,
            importance=0.8,
            metadata={"type": "context"},
            session_id=session["id"],
        )
    client.store_memory(
        item["customer"],
        item["said"],
        importance=0.7,
        metadata={"type": "customer_message"},
        tags=["user"],
        session_id=session["id"],
    )
    client.store_memory(
        item["customer"],
        item["summary"],
        importance=1.0,
        metadata={
            "type": "handoff",
            "from_agent": "tier1-bot",
            "to_agent": item["to"],
            "customer_name": item["name"],
            "channel": "web",
            **item["metadata"],
        },
        session_id=session["id"],
    )
    client.end_session(session["id"], summary=f"Bot->human handoff to {item['to']}")


def run_more_escalations(client) -> None:
    for item in MORE_ESCALATIONS:
        if item["customer"] == PAST["customer"]:
            run_past_conversation(client)
        _escalate(client, item)
