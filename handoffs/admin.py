from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.tokens import default_token_generator
from django.http import HttpRequest
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from .api import keys
from .delivery import outbox
from .desk import opener
from .models import (
    Agent,
    Attachment,
    Bot,
    Conversation,
    Event,
    Handoff,
    Holiday,
    IdempotencyRecord,
    MemoryWrite,
    Message,
    OpeningHours,
    Role,
    SavedReply,
    Team,
    WebhookDelivery,
)


class OpeningHoursInline(admin.TabularInline):
    """Weekly hours in the team's time zone; none at all means open around the clock."""

    model = OpeningHours
    extra = 0


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    """Teams and their policies; every change is audited (``team.policy_changed``)."""

    list_display = [
        "slug",
        "name",
        "is_default",
        "warn_after_secs",
        "breach_after_secs",
        "unanswered_after_secs",
        "requeue_unanswered",
        "default_capacity",
        "routing_mode",
    ]
    list_filter = ["is_default", "requeue_unanswered", "routing_mode"]
    search_fields = ["slug", "name"]
    fieldsets = [
        (None, {"fields": ["slug", "name", "is_default"]}),
        ("Waiting handoffs (SLA)", {"fields": ["warn_after_secs", "breach_after_secs"]}),
        (
            "Accepted conversations",
            {"fields": ["unanswered_after_secs", "requeue_unanswered", "default_capacity"]},
        ),
        (
            "Opening hours",
            {
                "fields": ["time_zone", "away_message"],
                "description": "Weekly hours and holidays below are in this time zone. "
                "Without any hours the team is open around the clock. Outside them "
                "customers are told when the team is back, their messages are marked "
                "'arrived out of hours', and the SLA timers pause.",
            },
        ),
        ("The first message to the customer", {"fields": ["topic", "opener_template"]}),
        (
            "Routing: who gets the work",
            {
                "fields": [
                    "routing_mode",
                    "routing_policy",
                    "offer_timeout_secs",
                    "away_after_missed_offer",
                    "skill_fallback_secs",
                ],
                "description": "Pull: agents pick from the queue. Offer: each waiting "
                "handoff is offered to one online agent with free capacity and the "
                "required skills (least open conversations, then longest idle; or round "
                "robin), who accepts or declines before the offer times out.",
            },
        ),
        (
            "Shifts",
            {"fields": ["handover_after_offline_secs", "shift_reminder_mins"]},
        ),
    ]
    inlines = [OpeningHoursInline, HolidayInline]
    actions = ["apply_default_capacity"]

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)

        def clean_opener_template(self) -> str:
            template = self.cleaned_data.get("opener_template", "")
            errors = opener.template_errors(template)
            if errors:
                raise forms.ValidationError(errors)
            return template

        form.clean_opener_template = clean_opener_template
        return form

    def save_model(self, request: HttpRequest, obj: Team, form, change: bool) -> None:
        before = Team.objects.filter(pk=obj.pk).values().first() if change else {}
        super().save_model(request, obj, form, change)
        changes = {
            name: [before.get(name) if change else None, getattr(obj, name)]
            for name in form.changed_data
        }
        if changes or not change:
            team_audit(request, obj, "team.policy_changed", changes=changes, created=not change)

    def delete_model(self, request: HttpRequest, obj: Team) -> None:
        slug = obj.slug
        super().delete_model(request, obj)
        team_audit(request, obj, "team.deleted", slug=slug)

    @admin.action(description="Apply the team's default capacity to its agents")
    def apply_default_capacity(self, request: HttpRequest, queryset) -> None:
        for team in queryset:
            agents = list(team.agents.select_related("user"))
            changed = {
                a.user.get_username(): [a.capacity, team.default_capacity]
                for a in agents
                if a.capacity != team.default_capacity
            }
            Agent.objects.filter(pk__in=[a.pk for a in agents]).update(
                capacity=team.default_capacity
            )
            team_audit(request, team, "team.capacity_applied", agents=changed)
        self.message_user(request, f"Applied the default capacity of {queryset.count()} team(s).")


def team_audit(request: HttpRequest, team: Team, kind: str, **data) -> None:
    """An audit row for a change made in admin, with who made it."""
    username = request.user.get_username()
    Event.objects.create(
        kind=kind,
        actor=f"human:{username}",
        data={"team": team.slug, "by": username, "via": "admin", **data},
    )


class AgentAddForm(forms.ModelForm):
    """One form for a new agent: the sign-in account and the console profile together.

    Without a password the account gets none, and admin shows a one-time link where the
    agent sets their own.
    """

    username = forms.CharField(max_length=150, help_text="What they sign in with.")
    first_name = forms.CharField(
        max_length=150, help_text='Shown to customers ("Alice joined the conversation").'
    )
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(required=False)
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to get a link where the agent sets their own password.",
    )

    class Meta:
        model = Agent
        fields = ["teams", "role", "capacity", "skills", "shift_ends_at"]

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("An account with this username exists already.")
        return username

    def clean_password(self) -> str:
        password = self.cleaned_data.get("password") or ""
        if password:
            user = get_user_model()(
                username=self.data.get("username", ""), first_name=self.data.get("first_name", "")
            )
            password_validation.validate_password(password, user)
        return password


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    """Agents. "Add agent" makes the account and the profile in one form; presence is
    the console's to set (sockets and the agent's own menu), so it is read-only here."""

    list_display = ["user", "name", "role", "capacity", "skills", "presence", "team_list"]
    list_filter = ["role", "presence", "teams"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email"]
    filter_horizontal = ["teams"]
    list_select_related = ["user"]
    readonly_fields = ["presence", "presence_changed_at"]

    @admin.display(description="Teams")
    def team_list(self, obj: Agent) -> str:
        return ", ".join(t.slug for t in obj.teams.all())

    @admin.display(description="Name")
    def name(self, obj: Agent) -> str:
        return obj.user.get_full_name()

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = AgentAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return [
                "username",
                "first_name",
                "last_name",
                "email",
                "password",
                "teams",
                "role",
                "capacity",
                "skills",
                "shift_ends_at",
            ]
        return [
            "user",
            "teams",
            "role",
            "capacity",
            "skills",
            "shift_ends_at",
            "alerts_enabled",
            *self.readonly_fields,
        ]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [*self.readonly_fields, "user"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Agent, form, change: bool) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        user = get_user_model()(
            username=data["username"],
            first_name=data["first_name"],
            last_name=data.get("last_name", ""),
            email=data.get("email", ""),
            is_staff=data.get("role") in (Role.SUPERVISOR, Role.ADMIN),
        )
        if data.get("password"):
            user.set_password(data["password"])
        else:
            user.set_unusable_password()
        user.save()
        obj.user = user
        super().save_model(request, obj, form, change)
        Event.objects.create(
            kind="agent.created",
            actor=f"human:{request.user.get_username()}",
            data={"agent": user.get_username(), "role": obj.role, "via": "admin"},
        )
        if not data.get("password"):
            link = request.build_absolute_uri(
                reverse(
                    "password_reset_confirm",
                    args=[
                        urlsafe_base64_encode(force_bytes(user.pk)),
                        default_token_generator.make_token(user),
                    ],
                )
            )
            messages.warning(
                request,
                f"Send {user.first_name} this link to set their password (it works once, "
                f"until they sign in): {link}",
            )


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    """Bots and their keys. A new bot's key is shown once, in the success message."""

    list_display = [
        "name",
        "key_prefix",
        "scope",
        "namespace_list",
        "callback_url",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "key_prefix", "callback_url"]
    readonly_fields = ["key_prefix", "created_at", "last_used_at"]
    fields = ["name", "scope", "namespaces", "callback_url", "revoked_at", *readonly_fields]
    actions = ["revoke_keys", "rotate_webhook_secrets"]

    @admin.display(description="Namespaces")
    def namespace_list(self, obj: Bot) -> str:
        return obj.namespaces or "all"

    def save_model(self, request: HttpRequest, obj: Bot, form, change: bool) -> None:
        raw_key = None
        if not change:
            raw_key = obj.set_new_key()
        super().save_model(request, obj, form, change)
        if raw_key:
            messages.warning(
                request,
                f"API key for {obj.name} (copy it now, it is not stored and will not be "
                f"shown again): {raw_key}",
            )
            messages.warning(
                request,
                f"Webhook signing secret for {obj.name} (copy it now; it verifies "
                f"X-Handoff-Signature and is shown only once, rotate it to get a new "
                f"one): {obj.webhook_secret}",
            )

    @admin.action(description="Rotate the selected bots' webhook secrets (shown once)")
    def rotate_webhook_secrets(self, request: HttpRequest, queryset) -> None:
        for bot in queryset:
            secret = keys.bot_rotate_webhook_secret(bot=bot)
            messages.warning(
                request,
                f"New webhook signing secret for {bot.name} (copy it now; the old one no "
                f"longer verifies): {secret}",
            )

    @admin.action(description="Revoke the selected bots' keys")
    def revoke_keys(self, request: HttpRequest, queryset) -> None:
        for bot in queryset:
            keys.bot_revoke(bot=bot)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


class EventInline(admin.TabularInline):
    model = Event
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "actor", "data"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Handoff)
class HandoffAdmin(admin.ModelAdmin):
    list_display = [
        "customer",
        "from_agent",
        "to_agent",
        "team",
        "status",
        "urgency",
        "sentiment",
        "hop_index",
        "accepted_by",
        "created_at",
    ]
    list_filter = ["status", "team", "urgency", "sentiment", "misrouted", "sentiment_source"]
    search_fields = ["customer", "customer_name", "summary", "from_agent", "to_agent", "memory_id"]
    date_hierarchy = "created_at"
    list_select_related = ["team", "accepted_by__user"]
    readonly_fields = ["public_id", "dedupe_key", "chain_id", "hop_index", "previous"]
    raw_id_fields = ["previous", "accepted_by"]
    inlines = [EventInline]


class EventKindFilter(admin.SimpleListFilter):
    """Filter by kind; presence changes (most rows, rarely what an audit is after) are
    left out unless asked for."""

    title = "kind"
    parameter_name = "kind"
    EVERYTHING = "__all__"
    NOISE = ("agent.presence",)

    def lookups(self, request: HttpRequest, model_admin):
        kinds = Event.objects.order_by("kind").values_list("kind", flat=True).distinct()
        return [(self.EVERYTHING, "Everything (presence included)"), *((k, k) for k in kinds)]

    def choices(self, changelist):
        value = self.value()
        yield {
            "selected": value is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "All but presence changes",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset):
        value = self.value()
        if value is None:
            return queryset.exclude(kind__in=self.NOISE)
        if value == self.EVERYTHING:
            return queryset
        return queryset.filter(kind=value)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The audit trail is append-only: readable here, never edited. Newest first."""

    list_display = ["created_at", "kind", "actor", "handoff"]
    list_filter = [EventKindFilter]
    search_fields = ["actor", "kind", "handoff__customer"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-pk"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["key", "bot", "status_code", "created_at"]
    list_filter = ["bot"]
    search_fields = ["key"]
    readonly_fields = ["bot", "key", "request_hash", "status_code", "response", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = ["seq", "created_at", "sender", "author_name", "body"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "customer",
        "customer_name",
        "channel",
        "bot",
        "bot_muted",
        "created_at",
        "closed_at",
    ]
    list_filter = ["channel", "bot_muted", ("closed_at", admin.EmptyFieldListFilter)]
    search_fields = ["customer", "customer_name", "public_id"]
    readonly_fields = ["public_id", "token", "last_seq"]
    inlines = [MessageInline]

    def save_model(self, request: HttpRequest, obj: Conversation, form, change: bool) -> None:
        """Moving a conversation to another bot (its owner) is audited with who did it."""
        before = Conversation.objects.filter(pk=obj.pk).values_list("bot__name", flat=True)
        old_bot = before.first() if change else None
        super().save_model(request, obj, form, change)
        if change and "bot" in form.changed_data:
            username = request.user.get_username()
            Event.objects.create(
                handoff=obj.hops.order_by("-created_at", "-pk").first(),
                kind="conversation.bot_changed",
                actor=f"human:{username}",
                data={
                    "conversation": str(obj.public_id),
                    "from_bot": old_bot,
                    "to_bot": obj.bot.name if obj.bot else None,
                    "by": username,
                    "via": "admin",
                },
            )


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["conversation", "seq", "sender", "author_name", "created_at"]
    list_filter = ["sender"]
    search_fields = ["body", "conversation__customer", "client_id"]
    readonly_fields = [f.name for f in Message._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The webhook delivery log; "Retry now" queues a new attempt for the worker."""

    list_display = [
        "event",
        "bot",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["status", "event", "bot"]
    search_fields = ["event", "bot__name", "last_error"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["retry_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry now")
    def retry_now(self, request: HttpRequest, queryset) -> None:
        count = outbox.webhook_retry_now(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request, f"Queued {count} deliver{'y' if count == 1 else 'ies'} for retry."
        )


@admin.register(MemoryWrite)
class MemoryWriteAdmin(admin.ModelAdmin):
    list_display = ["pk", "operation", "conversation", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", "operation"]
    readonly_fields = [f.name for f in MemoryWrite._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class SavedReplyForm(forms.ModelForm):
    class Meta:
        model = SavedReply
        fields = ["shortcut", "title", "body", "owner", "team"]

    def clean(self):
        from .lifecycle import saved_replies

        data = super().clean()
        if bool(data.get("owner")) == bool(data.get("team")):
            raise forms.ValidationError("Choose either an owner (personal) or a team, not both.")
        unknown = saved_replies.unknown_variables(data.get("body") or "")
        if unknown:
            known = ", ".join("{{ " + v + " }}" for v in saved_replies.VARIABLES)
            raise forms.ValidationError(
                {"body": f"Unknown variable(s) {', '.join(unknown)}; use {known}."}
            )
        if data.get("shortcut"):
            data["shortcut"] = data["shortcut"].lower()
        return data


@admin.register(SavedReply)
class SavedReplyAdmin(admin.ModelAdmin):
    form = SavedReplyForm
    list_display = ("shortcut", "title", "owner", "team", "use_count", "last_used_at")
    list_filter = ("team",)
    search_fields = ("shortcut", "title", "body", "owner__user__username")
    readonly_fields = ("use_count", "last_used_at", "created_by", "created_at", "updated_at")
    ordering = ("-use_count", "shortcut")

    def save_model(self, request, obj, form, change):
        from django.utils import timezone

        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    """Read-only: files arrive as chat messages; the link opens them through the
    rights-checking view (never a public media path)."""

    list_display = ("name", "kind", "content_type", "size", "conversation", "created_at")
    list_filter = ("kind", "content_type")
    search_fields = ("name", "sha256", "message__conversation__customer")
    readonly_fields = (
        "open_link",
        "message",
        "kind",
        "name",
        "content_type",
        "size",
        "width",
        "height",
        "sha256",
        "created_at",
    )
    exclude = ("file", "thumbnail")

    @admin.display(description="Conversation")
    def conversation(self, obj):
        return obj.message.conversation

    @admin.display(description="File")
    def open_link(self, obj):
        from django.utils.html import format_html

        url = reverse("agent-file", args=[obj.public_id])
        return format_html('<a href="{}" target="_blank" rel="noopener">Open {}</a>', url, obj.name)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
