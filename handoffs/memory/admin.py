from django.contrib import admin
from django.http import HttpRequest

from .models import Memory, MemorySession


class MemoryInline(admin.TabularInline):
    model = Memory
    extra = 0
    fields = ["uid", "created_at", "memory_type", "importance", "content", "tags"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(MemorySession)
class MemorySessionAdmin(admin.ModelAdmin):
    list_display = ["id", "agent_id", "started_at", "ended_at", "ended_reason", "memory_count"]
    list_filter = ["ended_reason", ("ended_at", admin.EmptyFieldListFilter)]
    search_fields = ["id", "agent_id", "summary"]
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in MemorySession._meta.fields]
    inlines = [MemoryInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    """Memories are written through the memory API only (that keeps the text index true)."""

    list_display = ["uid", "agent_id", "memory_type", "importance", "short_content", "created_at"]
    list_filter = ["memory_type", "created_at"]
    search_fields = ["uid", "agent_id", "content", "session__id"]
    readonly_fields = [f.name for f in Memory._meta.fields]
    list_select_related = ["session"]

    @admin.display(description="Content")
    def short_content(self, obj: Memory) -> str:
        return obj.content[:80]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.method == "GET"
