from django.contrib import admin, messages
from django.http import HttpRequest

from . import services
from .models import Agent, Bot, Event, Handoff, IdempotencyRecord, Team


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "is_default", "warn_after_secs", "breach_after_secs"]
    list_filter = ["is_default"]
    search_fields = ["slug", "name"]


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "capacity", "presence", "team_list"]
    list_filter = ["role", "presence", "teams"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email"]
    filter_horizontal = ["teams"]
    list_select_related = ["user"]

    @admin.display(description="Teams")
    def team_list(self, obj: Agent) -> str:
        return ", ".join(t.slug for t in obj.teams.all())


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    """Bots and their keys. A new bot's key is shown once, in the success message."""

    list_display = [
        "name",
        "key_prefix",
        "callback_url",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "key_prefix", "callback_url"]
    readonly_fields = ["key_prefix", "created_at", "last_used_at"]
    actions = ["revoke_keys"]

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

    @admin.action(description="Revoke the selected bots' keys")
    def revoke_keys(self, request: HttpRequest, queryset) -> None:
        for bot in queryset:
            services.bot_revoke(bot=bot)
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


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The audit trail is append-only: readable here, never edited."""

    list_display = ["created_at", "kind", "actor", "handoff"]
    list_filter = ["kind"]
    search_fields = ["actor", "kind", "handoff__customer"]
    date_hierarchy = "created_at"

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
