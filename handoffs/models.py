"""The handoff console's records: teams, agents, bots, handoffs and their audit trail.

The database is the system of record: Dakera (remote mode) may decay or expire memories,
so a handoff keeps its own snapshot of the summary, sentiment and urgency.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class TeamQuerySet(models.QuerySet):
    def served_by(self, agent: Agent) -> TeamQuerySet:
        """The teams whose queues ``agent`` serves: their own, plus the default queue
        while no agent (role "agent") is a member of it, so an unknown target always
        reaches people. An admin who gives the default team agents makes it a named
        fallback team. Supervisors and admins see every queue anyway, so their
        membership doesn't count."""
        return (
            self.with_has_agents()
            .filter(models.Q(agents=agent) | models.Q(is_default=True, has_agents=False))
            .distinct()
        )

    def with_has_agents(self) -> TeamQuerySet:
        """Annotate ``has_agents``: whether any member has the plain agent role."""
        members = Team.agents.through.objects.filter(
            team_id=models.OuterRef("pk"), agent__role=Role.AGENT
        )
        return self.annotate(has_agents=models.Exists(members))


class Team(models.Model):
    """A human queue such as ``billing-specialist``; ``to_agent`` routes to its slug."""

    slug = models.SlugField(unique=True, max_length=100)
    name = models.CharField(max_length=200)
    is_default = models.BooleanField(
        default=False,
        help_text="Receives handoffs addressed to an unknown target. Every agent serves it "
        "while it has no members; give it members to make it a named fallback team.",
    )
    warn_after_secs = models.PositiveIntegerField(
        default=120, help_text="A waiting handoff turns amber after this many seconds."
    )
    breach_after_secs = models.PositiveIntegerField(
        default=300, help_text="A waiting handoff turns red (SLA breach) after this."
    )
    unanswered_after_secs = models.PositiveIntegerField(
        default=300,
        help_text="An accepted conversation the agent hasn't answered for this long alerts "
        "the supervisor.",
    )
    requeue_unanswered = models.BooleanField(
        default=False,
        help_text="Return an unanswered conversation to the queue (once) after alerting.",
    )
    default_capacity = models.PositiveSmallIntegerField(
        default=3,
        help_text="Open conversations per agent; the admin action applies it to the team.",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        help_text="The time zone of the opening hours and holidays, e.g. Europe/Berlin.",
    )
    away_message = models.CharField(
        max_length=500,
        blank=True,
        help_text="Told to customers outside opening hours, before when the team is back "
        "(a default text when empty).",
    )
    topic = models.CharField(
        max_length=120,
        blank=True,
        help_text="What this team helps with, said to customers when the bot stated no "
        'topic, e.g. "your invoice".',
    )
    opener_template = models.TextField(
        blank=True,
        help_text="The first message offered to an agent who accepts from this queue; "
        "empty for the console's default. Variables: {customer_name}, {agent_name}, "
        "{team_name}, {topic}. Never filled from summaries or notes.",
    )

    # Routing (handoffs.lifecycle.offers): pull (agents pick from the queue) or offer
    # (the console offers each waiting hop to one free agent, who accepts or declines).
    routing_mode = models.CharField(
        max_length=8,
        choices=[
            ("pull", "Pull: agents pick from the queue"),
            ("offer", "Offer: push to one agent"),
        ],
        default="pull",
        help_text="Offer: each waiting handoff is offered to one online agent of the team "
        "with free capacity, who accepts or declines before the offer times out.",
    )
    routing_policy = models.CharField(
        max_length=12,
        choices=[
            ("least_busy", "Least open conversations, then longest idle"),
            ("round_robin", "Round robin (longest since last offer)"),
        ],
        default="least_busy",
        help_text="Who gets the next offer (offer mode).",
    )
    offer_timeout_secs = models.PositiveIntegerField(
        default=30, help_text="An offer not answered within this moves to the next agent."
    )
    away_after_missed_offer = models.BooleanField(
        default=True,
        help_text="An agent who lets an offer time out is set to away (no more offers until "
        "they come back), as Omni-Channel and Flex do.",
    )
    skill_fallback_secs = models.PositiveIntegerField(
        default=120,
        help_text="A handoff needing a skill nobody free has is offered to (and queued for) "
        "anyone in the team after this many seconds; 0 = never.",
    )
    handover_after_offline_secs = models.PositiveIntegerField(
        default=900,
        help_text="An agent offline this long with open conversations has them handed over "
        "automatically (shift handover, marked automatic); 0 = never.",
    )
    shift_reminder_mins = models.PositiveSmallIntegerField(
        default=15,
        help_text="Remind an agent this many minutes before their shift end (if set).",
    )

    objects = TeamQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from django.core.exceptions import ValidationError

        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError({"time_zone": f"Unknown time zone {self.time_zone!r}."}) from None


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class OpeningHours(models.Model):
    """One open period of a team on a weekday, in the team's time zone.

    A team without any is open around the clock. ``closes`` 00:00 means midnight; a
    period past midnight is two rows (until 00:00, and from 00:00 the next day).
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField(help_text="00:00 means midnight (the end of the day).")

    class Meta:
        ordering = ["team", "weekday", "opens"]
        verbose_name_plural = "opening hours"

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"

    def clean(self) -> None:
        from datetime import time

        from django.core.exceptions import ValidationError

        if (
            self.opens is not None
            and self.closes is not None
            and self.closes != time(0)
            and self.closes <= self.opens
        ):
            raise ValidationError("A period must close after it opens (00:00 = midnight).")


class Holiday(models.Model):
    """A day a team is closed all day (in the team's time zone)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["team", "date"]
        constraints = [models.UniqueConstraint(fields=["team", "date"], name="holiday_team_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}".strip()


SKILL_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,39}$")


def parse_skills(value: object) -> list[str]:
    """Skills as a sorted list of lower-case tokens (commas or whitespace between)."""
    if isinstance(value, str):
        parts = re.split(r"[\s,]+", value)
    elif isinstance(value, list | tuple | set):
        parts = [str(v) for v in value]
    else:
        parts = []
    return sorted({p.strip().lower() for p in parts if p and p.strip()})


class Role(models.TextChoices):
    AGENT = "agent", "Agent"
    SUPERVISOR = "supervisor", "Supervisor"
    ADMIN = "admin", "Admin"


class Presence(models.TextChoices):
    ONLINE = "online", "Online"
    AWAY = "away", "Away"
    OFFLINE = "offline", "Offline"


class Agent(models.Model):
    """A human support agent: the console profile of a Django user."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent"
    )
    teams = models.ManyToManyField(Team, blank=True, related_name="agents")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.AGENT)
    capacity = models.PositiveSmallIntegerField(
        default=3, help_text="Open conversations this agent may hold at once."
    )
    presence = models.CharField(max_length=10, choices=Presence.choices, default=Presence.OFFLINE)
    presence_changed_at = models.DateTimeField(default=timezone.now)
    skills = models.CharField(
        max_length=500,
        blank=True,
        help_text="What this agent can take: skills and language codes, separated by commas "
        "or spaces, e.g. de, en, refunds. Handoffs may require some (bot metadata).",
    )
    shift_ends_at = models.TimeField(
        null=True,
        blank=True,
        help_text="When this agent's shift usually ends (the first team's time zone): the "
        "console reminds them to hand over before it. Empty: no rota.",
    )
    shift_ended_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Set by End shift: the agent stays offline until they start a shift again.",
    )
    last_routed_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When this agent was last offered work (longest idle / round robin).",
    )
    alerts_enabled = models.BooleanField(
        default=False,
        help_text="Sound (and desktop alerts where the browser allows) for new escalations; "
        "the agent turns it on once and it holds on every page.",
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text="IANA zone every console time is shown in (e.g. Europe/Paris); "
        "detected in the agent's browser on their first visit, changeable in their profile.",
    )

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return self.user.get_username()

    @property
    def display_name(self) -> str:
        """How colleagues read this agent: the full name, else the username."""
        return self.user.get_full_name().strip() or self.user.get_username()

    @property
    def public_name(self) -> str:
        """How customers read this agent: the first name (never the username, which may
        be an e-mail address or a staff id)."""
        user = self.user
        return user.first_name.strip() or user.get_full_name().strip() or "Support agent"

    @property
    def memory_name(self) -> str:
        """How this human appears as an agent in memory metadata."""
        return f"human:{self.user.get_username()}"

    @property
    def skill_set(self) -> set[str]:
        return set(parse_skills(self.skills))

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        tokens = parse_skills(self.skills)
        bad = [t for t in tokens if not SKILL_RE.match(t)]
        if bad:
            raise ValidationError(
                {"skills": f"not a skill: {', '.join(bad)} (letters, digits, _ . : -, short)"}
            )
        self.skills = ", ".join(tokens)

    @property
    def is_supervisor(self) -> bool:
        return self.role in (Role.SUPERVISOR, Role.ADMIN) or self.user.is_superuser

    @property
    def can_supervise(self) -> bool:
        """Supervisors and admins (staff or superusers with a profile): the floor, reports."""
        return self.is_supervisor or self.user.is_staff


KEY_PREFIX = "dk-"
ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
LOOKUP_LENGTH = 12


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


class Scope(models.TextChoices):
    """A key's reach, as Dakera's keys have it: each includes the ones before it."""

    READ = "read", "Read (recall, search, get, list)"
    WRITE = "write", "Write (also store, forget, start and end sessions, hand off)"
    ADMIN = "admin", "Admin (everything a key can do)"


NAMESPACE_PATTERN_RE = r"^[A-Za-z0-9_.*?\[\]!-]{1,241}$"


def split_namespaces(value: str) -> list[str]:
    """A key's namespace allowlist as a list of glob patterns (commas or whitespace)."""
    return [part for part in re.split(r"[\s,]+", value or "") if part]


def validate_namespaces(value: str) -> None:
    from django.core.exceptions import ValidationError

    bad = [p for p in split_namespaces(value) if not re.match(NAMESPACE_PATTERN_RE, p)]
    if bad:
        raise ValidationError(
            f"not a namespace pattern: {', '.join(bad)} (letters, digits, _ . - and the "
            "glob characters * ? [ ] !)"
        )


class Bot(models.Model):
    """An API client (a bot) with a hashed key: SHA-256 plus a lookup prefix.

    The raw key is shown once, when created; only its hash is stored.
    """

    name = models.SlugField(
        unique=True,
        max_length=100,
        help_text="The bot's agent name, e.g. tier1-bot; a to_agent naming it is a bot hop.",
    )
    key_prefix = models.CharField(max_length=LOOKUP_LENGTH, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    callback_url = models.URLField(blank=True, help_text="Where webhooks are delivered.")
    scope = models.CharField(
        max_length=8,
        choices=Scope.choices,
        default=Scope.WRITE,
        help_text="read ⊂ write ⊂ admin. A read key recalls and searches but never stores, "
        "forgets, ends sessions or hands off.",
    )
    namespaces = models.CharField(
        max_length=2000,
        blank=True,
        default="",
        validators=[validate_namespaces],
        help_text="Customer namespaces (agent_id) this key may touch: glob patterns separated "
        "by commas, e.g. user-*, acme-?. Empty means every namespace.",
    )
    webhook_secret = models.CharField(max_length=64, editable=False, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    widget_origins = models.TextField(
        blank=True,
        help_text="Sites allowed to show this bot's customer chats in a frame (the widget): "
        "one origin per line, e.g. https://www.example.com. The console's own origin is "
        "always allowed.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def set_new_key(self) -> str:
        """Give the bot a fresh key; returns the raw key (the only time it exists)."""
        lookup = secrets.token_hex(LOOKUP_LENGTH // 2)
        raw_key = f"{KEY_PREFIX}{lookup}{secrets.token_urlsafe(32)}"
        self.key_prefix = lookup
        self.key_hash = hash_key(raw_key)
        if not self.webhook_secret:
            self.webhook_secret = secrets.token_hex(32)
        return raw_key

    @property
    def namespace_patterns(self) -> list[str]:
        return split_namespaces(self.namespaces)

    def check_key(self, raw_key: str) -> bool:
        return hmac.compare_digest(self.key_hash, hash_key(raw_key))

    def frame_origins(self) -> list[str]:
        """The valid origins of ``widget_origins`` (``scheme://host[:port]``, no path)."""
        return [
            line.strip().rstrip("/")
            for line in self.widget_origins.splitlines()
            if ORIGIN_RE.match(line.strip().rstrip("/"))
        ]

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        bad = [
            line.strip()
            for line in self.widget_origins.splitlines()
            if line.strip() and not ORIGIN_RE.match(line.strip().rstrip("/"))
        ]
        if bad:
            raise ValidationError(
                {
                    "widget_origins": f"Not an origin (https://host[:port], no path): "
                    f"{', '.join(bad)}"
                }
            )

    @staticmethod
    def lookup_of(raw_key: str) -> str | None:
        if not raw_key.startswith(KEY_PREFIX) or len(raw_key) < len(KEY_PREFIX) + LOOKUP_LENGTH:
            return None
        return raw_key[len(KEY_PREFIX) : len(KEY_PREFIX) + LOOKUP_LENGTH]


def new_customer_token() -> str:
    return secrets.token_urlsafe(24)


class Channel(models.TextChoices):
    WEB = "web", "Web chat link"
    API = "api", "Bot API (webhooks)"


class Conversation(models.Model):
    """The human-side chat with one customer across the hops of one issue.

    ``token`` is the customer's unguessable web-chat link; it stops working once the
    conversation is closed. ``bot_muted`` is set while a human owns the conversation.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    token = models.CharField(max_length=64, unique=True, default=new_customer_token, editable=False)
    customer = models.CharField(max_length=241, db_index=True)
    customer_name = models.CharField(max_length=200, blank=True)
    bot = models.ForeignKey(
        Bot,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations",
        help_text="The bot that owns it (the one that started it): only this bot gets its "
        "customer link, its handoffs by id and its conversation API. Change it here to move "
        "the conversation to another bot.",
    )
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.WEB)
    bot_muted = models.BooleanField(default=False)
    last_seq = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Customer satisfaction (handoffs.lifecycle.satisfaction): the latest answer; the
    # last hop keeps a copy for the reports.
    csat_score = models.PositiveSmallIntegerField(null=True, blank=True)
    csat_comment = models.TextField(blank=True)
    csat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.customer} ({self.public_id})"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class Sentiment(models.TextChoices):
    POSITIVE = "positive", "Positive"
    NEUTRAL = "neutral", "Neutral"
    FRUSTRATED = "frustrated", "Frustrated"
    ANGRY = "angry", "Angry"


class Urgency(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


URGENCY_RANK = {Urgency.LOW: 0, Urgency.NORMAL: 1, Urgency.HIGH: 2, Urgency.CRITICAL: 3}
SENTIMENT_RANK = {  # how upset: higher is worse
    Sentiment.POSITIVE: 0,
    Sentiment.NEUTRAL: 1,
    Sentiment.FRUSTRATED: 2,
    Sentiment.ANGRY: 3,
}


class Source(models.TextChoices):
    BOT = "bot", "from bot"
    ESTIMATED = "estimated", "estimated"
    AGENT = "agent", "set by agent"


class Status(models.TextChoices):
    WAITING = "waiting", "Waiting"
    ACCEPTED = "accepted", "Accepted"
    RESOLVED = "resolved", "Resolved"
    TRANSFERRED = "transferred", "Transferred"
    HANDED_BACK = "handed_back", "Handed back"
    BOT_HOP = "bot_hop", "Bot to bot (not queued)"


class Handoff(models.Model):
    """One hop of a conversation from one agent to another.

    ``chain_id`` groups the consecutive hops of one customer issue; ``hop_index`` is the
    number of earlier hops in that chain.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.CharField(max_length=241, db_index=True, help_text="agent_id namespace")
    customer_name = models.CharField(max_length=200, blank=True)
    source_session_id = models.CharField(max_length=64, blank=True)
    from_agent = models.CharField(max_length=241)
    to_agent = models.CharField(max_length=241)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="handoffs"
    )
    misrouted = models.BooleanField(
        default=False, help_text="to_agent named no team or bot; routed to the default team."
    )
    to_bot = models.ForeignKey(
        Bot, null=True, blank=True, on_delete=models.SET_NULL, related_name="handoffs_in"
    )
    created_by_bot = models.ForeignKey(
        Bot, null=True, blank=True, on_delete=models.SET_NULL, related_name="handoffs_out"
    )
    summary = models.TextField()
    reason = models.CharField(max_length=500, blank=True)
    importance = models.FloatField(default=1.0)
    sentiment = models.CharField(max_length=12, choices=Sentiment.choices)
    sentiment_score = models.FloatField(default=0.0)
    sentiment_source = models.CharField(max_length=10, choices=Source.choices)
    urgency = models.CharField(max_length=10, choices=Urgency.choices)
    urgency_rank = models.PositiveSmallIntegerField(default=1, editable=False)
    urgency_source = models.CharField(max_length=10, choices=Source.choices)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.WAITING, db_index=True
    )
    accepted_by = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="accepted"
    )
    memory_id = models.CharField(max_length=40, blank=True, help_text="The handoff memory.")
    dedupe_key = models.CharField(max_length=64, unique=True, editable=False)
    chain_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    hop_index = models.PositiveSmallIntegerField(default=0)
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next_hops"
    )
    waiting_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the customer first asked for a human in this issue (the first "
        "hop's time, carried by every later hop).",
    )
    bounce = models.CharField(
        max_length=10,
        blank=True,
        choices=[("", "None"), ("loop", "Loop"), ("ping_pong", "Ping-pong")],
        help_text="The chain up to this hop came back to someone (loop) or went A → B → A.",
    )
    human_session_id = models.CharField(max_length=64, blank=True)
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="hops"
    )
    assigned_to = models.ForeignKey(
        Agent,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned",
        help_text="A transfer to one agent: only they (or a supervisor) may accept.",
    )
    rating = models.CharField(
        max_length=20,
        blank=True,
        choices=[
            ("accurate", "Summary accurate"),
            ("missing_info", "Missing information"),
            ("unnecessary", "Unnecessary escalation"),
        ],
        help_text="The receiving agent's rating of this handoff, given when closing.",
    )
    closing_note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Timer marks (handoffs.lifecycle.timers): each is set once by a conditional UPDATE, so an alert
    # or a requeue happens once however many workers run.
    sla_warned_at = models.DateTimeField(null=True, blank=True, editable=False)
    sla_breached_at = models.DateTimeField(null=True, blank=True, editable=False)
    unanswered_alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
    requeued_at = models.DateTimeField(null=True, blank=True, editable=False)
    reassigned_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Last moved by a supervisor."
    )
    arrived_out_of_hours = models.BooleanField(
        default=False, help_text="Queued while its team was closed (opening hours)."
    )
    # Offers (handoffs.lifecycle.offers): the live offer of a waiting hop is these two
    # columns, claimed by one conditional UPDATE (``offered_to IS NULL``); ``Offer`` rows
    # are its history.
    offered_to = models.ForeignKey(
        Agent,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="offers_held",
        editable=False,
    )
    offer_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    required_skills = models.JSONField(
        default=list,
        blank=True,
        help_text='Skills the bot asked for (metadata skills and language), e.g. ["de"].',
    )
    shift_handover = models.ForeignKey(
        "ShiftHandover",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="hops",
        help_text="The shift handover that made this hop.",
    )
    # Customer satisfaction asked about / given for this hop (the conversation's last).
    csat_asked_at = models.DateTimeField(null=True, blank=True)
    csat_score = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["status", "team", "-urgency_rank", "-importance", "created_at"],
                name="handoff_queue",
            ),
            models.Index(fields=["customer", "-created_at"], name="handoff_customer"),
            # Covers every column the transfer report reads (handoffs.supervision.reports): one
            # range scan of this narrow index instead of the wide table rows.
            models.Index(
                fields=[
                    "created_at",
                    "chain_id",
                    "hop_index",
                    "from_agent",
                    "to_agent",
                    "accepted_by",
                    "team",
                    "created_by_bot",
                    "rating",
                    "sentiment_score",
                    "conversation",
                    "accepted_at",
                    "closed_at",
                ],
                name="handoff_report",
            ),
            # The satisfaction part of the transfer report reads only the asked hops.
            models.Index(
                fields=["created_at"],
                name="handoff_csat",
                condition=models.Q(csat_asked_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer}: {self.from_agent} → {self.to_agent} ({self.status})"


class Event(models.Model):
    """The audit trail: every state change, who did it and when (append-only)."""

    handoff = models.ForeignKey(
        Handoff, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    kind = models.CharField(max_length=40, db_index=True)
    actor = models.CharField(max_length=255)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.kind}"


class IdempotencyRecord(models.Model):
    """The first answer to a POST with an ``Idempotency-Key``, replayed on retries."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bot", "key"], name="idempotency_bot_key")]

    def __str__(self) -> str:
        return f"{self.bot_id}:{self.key}"


class Sender(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    AGENT = "agent", "Agent"
    BOT = "bot", "Bot"
    SYSTEM = "system", "System"
    NOTE = "note", "Private note"


class Message(models.Model):
    """One chat message, ordered by ``seq`` within its conversation.

    ``client_id`` is generated by the sender, so a retried send is recognised and never
    stored twice. Private notes (``sender = note``) are never shown to the customer.
    """

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    seq = models.PositiveIntegerField()
    client_id = models.CharField(max_length=64)
    sender = models.CharField(max_length=10, choices=Sender.choices)
    author = models.CharField(max_length=255, blank=True, help_text="Memory agent name")
    author_name = models.CharField(max_length=150, blank=True, help_text="Shown to people")
    body = models.TextField()
    handoff = models.ForeignKey(Handoff, null=True, blank=True, on_delete=models.SET_NULL)
    sentiment_score = models.FloatField(null=True, blank=True)
    out_of_hours = models.BooleanField(
        default=False, help_text="A customer message that arrived while the team was closed."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq"),
            models.UniqueConstraint(fields=["conversation", "client_id"], name="message_client_id"),
        ]
        indexes = [
            # The customer's scored messages, newest first (the report's closing sentiment).
            models.Index(
                fields=["conversation", "-seq", "sentiment_score"],
                name="message_scores",
                condition=models.Q(sentiment_score__isnull=False),
            ),
            # The last message of a hop (access.agents.handover_seq), one index probe per
            # hop: search checks it for every match seen through a closed hop.
            models.Index(fields=["handoff", "seq"], name="message_hop_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.sender}: {self.body[:40]}"

    @property
    def is_public(self) -> bool:
        return self.sender != Sender.NOTE


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """A webhook to a bot, delivered by the outbox worker (never inside a request)."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="deliveries")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    event = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_error = models.TextField(blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.bot} ({self.status})"


class MemoryWrite(models.Model):
    """A memory write queued by the chat, applied in order by the outbox worker.

    Memory I/O may be remote and slow or down: chat messages are committed first and
    their memory copies follow, retried in order, so nothing is lost or duplicated.
    """

    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="memory_writes"
    )
    handoff = models.ForeignKey(Handoff, null=True, blank=True, on_delete=models.CASCADE)
    operation = models.CharField(max_length=20, default="store")
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    result_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.operation} #{self.pk} ({self.status})"


class ReadMark(models.Model):
    """How far one agent has read one conversation: the highest message ``seq`` they
    have seen (Chatwoot's ``agent_last_seen_at``, by sequence instead of time, so two
    messages in the same millisecond can't be confused). A customer message with a
    higher ``seq`` on the hop the agent owns is unread. Only ever moves forward
    (``lifecycle.reading``), so a slow device can't mark read messages unread again."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="read_marks")
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="read_marks"
    )
    last_read_seq = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "conversation"], name="read_mark_once"),
        ]

    def __str__(self) -> str:
        return f"{self.agent} read #{self.conversation_id} to {self.last_read_seq}"


def attachment_storage():
    """The storage attachments live in (``STORAGES["attachments"]``: the filesystem under
    MEDIA_ROOT, or an S3-compatible bucket); a callable so migrations don't freeze it."""
    from django.core.files.storage import storages

    return storages["attachments"]


class AttachmentKind(models.TextChoices):
    IMAGE = "image", "Image"
    PDF = "pdf", "PDF document"


class Attachment(models.Model):
    """The file of one chat message (an attachment is a message like any other).

    Stored through Django's storage API under an unguessable name and served only by the
    views that check rights (``handoffs.attachments``); images are re-encoded on upload
    (EXIF, GPS included, is gone) with a thumbnail beside them.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="attachment")
    kind = models.CharField(max_length=8, choices=AttachmentKind.choices)
    file = models.FileField(storage=attachment_storage, upload_to="files/", max_length=255)
    thumbnail = models.FileField(
        storage=attachment_storage, upload_to="thumbs/", max_length=255, blank=True
    )
    name = models.CharField(max_length=200, help_text="The file name shown (typed from content)")
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField(help_text="Bytes, as stored")
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.content_type}, {self.size} bytes)"

    @property
    def is_image(self) -> bool:
        return self.kind == AttachmentKind.IMAGE

    @property
    def describe(self) -> str:
        """What was attached, in words (memory copies, transcripts, webhooks)."""
        from django.template.defaultfilters import filesizeformat

        return f"{self.name} ({self.get_kind_display()}, {filesizeformat(self.size)})"


class SavedReply(models.Model):
    """A canned answer an agent inserts with ``/shortcut`` or from the picker.

    Personal (``owner``) or shared with a team (``team``): exactly one of them. The body
    may hold the variables of ``handoffs.lifecycle.saved_replies.VARIABLES``
    (``{{ customer.name }}``...), filled from the conversation on the server.
    """

    owner = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="saved_replies"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="saved_replies"
    )
    shortcut = models.SlugField(
        max_length=40, help_text="Typed after / in the composer, e.g. refund (letters, digits, -)"
    )
    title = models.CharField(max_length=120)
    body = models.TextField()
    use_count = models.PositiveIntegerField(default=0, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["shortcut", "pk"]
        verbose_name_plural = "saved replies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(owner__isnull=False, team__isnull=True)
                | models.Q(owner__isnull=True, team__isnull=False),
                name="saved_reply_owner_xor_team",
            ),
            models.UniqueConstraint(
                fields=["owner", "shortcut"],
                condition=models.Q(owner__isnull=False),
                name="saved_reply_owner_shortcut",
            ),
            models.UniqueConstraint(
                fields=["team", "shortcut"],
                condition=models.Q(team__isnull=False),
                name="saved_reply_team_shortcut",
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut} ({self.owner or self.team})"

    @property
    def scope_label(self) -> str:
        return f"Personal ({self.owner})" if self.owner_id else f"Team {self.team.name}"


class OfferStatus(models.TextChoices):
    LIVE = "live", "Live"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Timed out"
    WITHDRAWN = "withdrawn", "Withdrawn"


class Offer(models.Model):
    """One offer of a waiting hop to one agent (offer routing), and how it ended.

    At most one live offer per hop (a partial unique index, on top of the hop's own
    ``offered_to`` claim).
    """

    handoff = models.ForeignKey(Handoff, on_delete=models.CASCADE, related_name="offers")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="offers")
    team = models.ForeignKey(Team, null=True, on_delete=models.SET_NULL, related_name="offers")
    status = models.CharField(
        max_length=10, choices=OfferStatus.choices, default=OfferStatus.LIVE, db_index=True
    )
    skill_fallback = models.BooleanField(
        default=False, help_text="Offered without the required skills (fallback)."
    )
    reason = models.CharField(max_length=300, blank=True, help_text="Why it was declined.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["handoff"],
                condition=models.Q(status="live"),
                name="offer_one_live_per_hop",
            )
        ]
        indexes = [models.Index(fields=["agent", "status"], name="offer_agent_status")]

    def __str__(self) -> str:
        return f"{self.handoff_id} → {self.agent_id} ({self.status})"


class ShiftHandover(models.Model):
    """One agent's end of shift: the conversations it handed over (``hops``)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="shift_handovers")
    automatic = models.BooleanField(
        default=False, help_text="Made by the timer: the agent went offline with open work."
    )
    shift_started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(default=timezone.now, db_index=True)
    conversations = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-ended_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.agent} {self.ended_at:%Y-%m-%d %H:%M}"
