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

Connects are authenticated in batches (``batching.GroupCommit``): the sockets opening
together share one trip to that thread, one query for their sessions (database
sessions) and one for their users with their profiles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from channels.auth import AuthMiddleware, UserLazyObject
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
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from ..compiled import Compiled
from . import batching

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _load_sessions(sessions: Sequence) -> None:
    """Load the database sessions among ``sessions`` in one query, as each one's
    ``load()`` would (unknown or expired: an empty session without a key)."""
    stores = [
        s
        for s in sessions
        if type(s) is DatabaseSessionStore
        and not hasattr(s, "_session_cache")
        and s.session_key is not None
    ]
    if not stores:
        return
    now = timezone.now()
    rows = {
        key: data
        for key, data, expires in _sessions(
            sorted({s.session_key for s in stores}), model=stores[0].model
        )
        if expires > now
    }
    for store in stores:
        data = rows.get(store.session_key)
        if data is None:
            store._session_key = None
            store._session_cache = {}
        else:
            store._session_cache = store.decode(data)


# Compiled once (``handoffs.compiled``): a batch of connects runs them with its own keys.
_sessions = Compiled(
    lambda keys, model: model.objects.filter(session_key__in=keys).values_list(
        "session_key", "session_data", "expire_date"
    )
)


def _agents_of_users(user_ids):
    from ..models import Agent

    return Agent.objects.select_related("user").filter(user_id__in=user_ids, user__is_active=True)


_active_agents = Compiled(_agents_of_users)


def _model_backend_user_id(session) -> object:
    try:
        if session[BACKEND_SESSION_KEY] != MODEL_BACKEND:
            return None
        return get_user_model()._meta.pk.to_python(session[SESSION_KEY])
    except (KeyError, ValueError, TypeError):
        return None


def authenticate_scopes(sessions: Sequence) -> list[tuple[object, object | None]]:
    """``authenticate_scope`` for several sessions: one query for their sessions, one
    for their users with their console profiles."""
    sessions = [getattr(s, "_wrapped", s) for s in sessions]
    _load_sessions(sessions)
    user_ids = [_model_backend_user_id(s) for s in sessions]
    counts = Counter(uid for uid in user_ids if uid is not None)
    agents = {a.user_id: a for a in _active_agents(list(counts))} if counts else {}
    # A user with two sockets in one batch gets a profile object per socket (each
    # consumer keeps and updates its own): the second one is loaded on its own.
    return batching.each(
        lambda pair: authenticate_scope(pair[0], agents=agents if counts[pair[1]] == 1 else None),
        list(zip(sessions, user_ids, strict=True)),
    )


def authenticate_scope(session, *, agents: dict | None = None) -> tuple[object, object | None]:
    """(user, agent) for a session, as Channels' ``get_user`` decides the user;
    ``agents``: the active users' profiles by user id, already loaded."""
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
            agents.get(user_id)
            if agents is not None
            else Agent.objects.select_related("user")
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
        user, agent = await _authenticate(scope["session"])
        if isinstance(scope["user"], UserLazyObject):
            scope["user"]._wrapped = user
        scope["agent"] = agent


_authenticate = batching.GroupCommit(authenticate_scopes)


def SocketAuthMiddlewareStack(inner):  # noqa: N802 - named like Channels' AuthMiddlewareStack
    return CookieMiddleware(SessionMiddleware(SocketAuthMiddleware(inner)))
