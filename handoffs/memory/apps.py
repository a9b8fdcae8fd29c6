from django.apps import AppConfig


class MemoryConfig(AppConfig):
    """The memory bounded context: the embedded Dakera-compatible store and clients."""

    name = "handoffs.memory"
    label = "memory"
    verbose_name = "Memory (Dakera)"
