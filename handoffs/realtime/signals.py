"""Receivers that end or narrow sockets when a right ends (connected in
``HandoffsConfig.ready``). What a socket may still do is decided by ``access.agents``
when it is rung; these only ring, after the change commits."""

from __future__ import annotations

from typing import Any

from . import broadcast


def close_sockets_on_logout(sender, request, user, **kwargs) -> None:
    """Logging out closes every WebSocket of that user, in every tab and process."""
    if user is not None:
        broadcast.close_user_sockets(user.pk)


def on_agent_teams_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    """An agent joined or left a team (from either side of the relation): their queue
    sockets move to the new teams, their card sockets re-check."""
    if action not in {"post_add", "post_remove", "pre_clear"}:
        return
    from ..models import Agent

    if not reverse:  # agent.teams.add(...): ``instance`` is the agent
        user_ids = [instance.user_id]
    elif action == "pre_clear":  # team.agents.clear(): who is in it before it empties
        user_ids = list(instance.agents.values_list("user_id", flat=True))
    else:
        user_ids = list(Agent.objects.filter(pk__in=pk_set or ()).values_list("user_id", flat=True))
    for user_id in user_ids:
        broadcast.rights_changed_on_commit(user_id=user_id)


def on_agent_saved(sender, instance, created: bool, **kwargs: Any) -> None:
    """A role change may widen or narrow what the agent sees."""
    if not created:
        broadcast.rights_changed_on_commit(user_id=instance.user_id)


def on_agent_deleted(sender, instance, **kwargs: Any) -> None:
    broadcast.close_user_sockets_on_commit(user_id=instance.user_id)


def on_user_saved(sender, instance, created: bool, update_fields=None, **kwargs: Any) -> None:
    """Deactivation closes every socket of the user; a staff or superuser change re-checks."""
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    if not instance.is_active:
        broadcast.close_user_sockets_on_commit(user_id=instance.pk)
    else:
        broadcast.rights_changed_on_commit(user_id=instance.pk)


def on_user_deleted(sender, instance, **kwargs: Any) -> None:
    broadcast.close_user_sockets_on_commit(user_id=instance.pk)
