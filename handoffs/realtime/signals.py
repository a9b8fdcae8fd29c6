"""Receivers that end sockets when a right ends (connected in ``HandoffsConfig.ready``)."""

from . import broadcast


def close_sockets_on_logout(sender, request, user, **kwargs) -> None:
    """Logging out closes every WebSocket of that user, in every tab and process."""
    if user is not None:
        broadcast.close_user_sockets(user.pk)
