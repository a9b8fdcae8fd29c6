"""Socket authentication in one database round trip of the consumer thread.

Channels' ``AuthMiddlewareStack`` loads the session and then the user (one thread hop,
two queries), and every agent socket then loaded its ``Agent`` (another hop and query).
Here one hop loads the session and, in one query, the signed-in user *with* their
console profile: ``scope["user"]`` as Channels sets it (or ``AnonymousUser``) and
``scope["agent"]`` (the active user's ``Agent``, or None). The checks are the ones
Channels' ``get_user`` makes: the session's backend must be configured, the user active
(``ModelBackend.user_can_authenticate``), and the session's auth hash must match the
user's (a password change signs every other session out), else the session is flushed.
Sessions whose backend isn't ``ModelBackend`` go through that backend's ``get_user``.
"""

from __future__ import annotations

from channels.auth import AuthMiddleware, UserLazyObject
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
)
from django.contrib.auth.models import AnonymousUser
from django.utils.crypto import constant_time_compare

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def authenticate_scope(session) -> tuple[object, object | None]:
    """(user, agent) for a session, as Channels' ``get_user`` decides the user."""
    from ..models import Agent

    try:
        user_id = get_user_model()._meta.pk.to_python(session[SESSION_KEY])
        backend_path = session[BACKEND_SESSION_KEY]
    except (KeyError, ValueError, TypeError):
        return AnonymousUser(), None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser(), None
    agent = None
    if backend_path == MODEL_BACKEND:
        agent = (
            Agent.objects.select_related("user")
            .filter(user_id=user_id, user__is_active=True)
            .first()
        )
        user = (
            agent.user
            if agent is not None
            else get_user_model()._default_manager.filter(pk=user_id, is_active=True).first()
        )
    else:
        user = load_backend(backend_path).get_user(user_id)
    if user is None:
        return AnonymousUser(), None
    session_hash = session.get(HASH_SESSION_KEY)
    if not (session_hash and constant_time_compare(session_hash, user.get_session_auth_hash())):
        session.flush()
        return AnonymousUser(), None
    if agent is None and backend_path != MODEL_BACKEND and user.is_active:
        agent = Agent.objects.select_related("user").filter(user=user).first()
    return user, agent


class SocketAuthMiddleware(AuthMiddleware):
    """``scope["user"]`` and ``scope["agent"]`` in one hop (see the module's docstring)."""

    def populate_scope(self, scope) -> None:
        super().populate_scope(scope)
        scope.setdefault("agent", None)

    async def resolve_scope(self, scope) -> None:
        user, agent = await database_sync_to_async(authenticate_scope)(scope["session"])
        if isinstance(scope["user"], UserLazyObject):
            scope["user"]._wrapped = user
        scope["agent"] = agent


def SocketAuthMiddlewareStack(inner):  # noqa: N802 - named like Channels' AuthMiddlewareStack
    return CookieMiddleware(SessionMiddleware(SocketAuthMiddleware(inner)))
