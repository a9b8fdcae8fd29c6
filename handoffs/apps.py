from django.apps import AppConfig


class HandoffsConfig(AppConfig):
    name = "handoffs"
    verbose_name = "Handoffs"

    def ready(self) -> None:
        """Connect the packages that must not import each other (see ``handoffs``)."""
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save

        from .customers.status import changed_panels
        from .desk.inbox import render_frames
        from .desk.shift_views import render_offers_for_user
        from .lifecycle.intake import on_handoff_memory_stored
        from .memory.signals import handoff_memory_stored
        from .models import Agent
        from .realtime import broadcast
        from .realtime import signals as rights_signals
        from .search.index import ensure_sqlite_index
        from .supervision.floor import render_floor_summary

        handoff_memory_stored.connect(on_handoff_memory_stored, dispatch_uid="handoff-intake")
        user_logged_out.connect(
            rights_signals.close_sockets_on_logout, dispatch_uid="close-sockets-on-logout"
        )
        # Rights that end when they end: the affected sockets re-check or close at once.
        user = get_user_model()
        m2m_changed.connect(
            rights_signals.on_agent_teams_changed,
            sender=Agent.teams.through,
            dispatch_uid="rights-teams",
        )
        post_save.connect(rights_signals.on_agent_saved, sender=Agent, dispatch_uid="rights-agent")
        post_delete.connect(
            rights_signals.on_agent_deleted, sender=Agent, dispatch_uid="rights-agent-gone"
        )
        post_save.connect(rights_signals.on_user_saved, sender=user, dispatch_uid="rights-user")
        post_delete.connect(
            rights_signals.on_user_deleted, sender=user, dispatch_uid="rights-user-gone"
        )
        # A table Django rebuilt (SQLite) loses its search triggers: restored after migrate.
        post_migrate.connect(ensure_sqlite_index, sender=self, dispatch_uid="search-index")
        broadcast.register_floor_renderer(render_floor_summary)
        broadcast.register_customer_status_renderer(changed_panels)
        broadcast.register_inbox_renderer(render_frames)
        broadcast.register_offers_renderer(render_offers_for_user)
