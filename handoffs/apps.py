from django.apps import AppConfig


class HandoffsConfig(AppConfig):
    name = "handoffs"
    verbose_name = "Handoffs"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - connects the receivers
