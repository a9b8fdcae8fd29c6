from django.apps import AppConfig


class HandoffsConfig(AppConfig):
    name = "handoffs"
    verbose_name = "Handoffs"

    def ready(self) -> None:
        """Connect the packages that must not import each other (see ``handoffs``)."""
        from django.contrib.auth.signals import user_logged_out

        from .customers.status import changed_panels
        from .lifecycle.intake import on_handoff_memory_stored
        from .memory.signals import handoff_memory_stored
        from .realtime import broadcast
        from .realtime.signals import close_sockets_on_logout
        from .supervision.floor import render_floor_summary

        handoff_memory_stored.connect(on_handoff_memory_stored, dispatch_uid="handoff-intake")
        user_logged_out.connect(close_sockets_on_logout, dispatch_uid="close-sockets-on-logout")
        broadcast.register_floor_renderer(render_floor_summary)
        broadcast.register_customer_status_renderer(changed_panels)
