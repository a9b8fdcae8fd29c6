from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from . import broadcast


@receiver(user_logged_out)
def close_sockets_on_logout(sender, request, user, **kwargs) -> None:
    """Logging out closes every WebSocket of that user, in every tab and process."""
    if user is not None:
        broadcast.close_user_sockets(user.pk)
