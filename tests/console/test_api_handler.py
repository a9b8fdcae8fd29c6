"""The bot API's own ASGI handler (console/api_handler.py), driven as Daphne drives it.

Bot paths skip the page middleware (session, CSRF, user, messages, htmx, time zone,
lockout) but keep the edge's checks and headers; their synchronous parts run on a few
kept threads that keep their database connection; rights are read fresh each request.
"""

from __future__ import annotations

import httpx
import pytest
from asgiref.sync import sync_to_async
from csp.constants import NONE, SELF
from csp.utils import build_policy
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.db import connections
from django.test import override_settings

from console.api_handler import ApiASGIHandler, ApiEdgeMiddleware, SplitHttp
from handoffs.api.keys import bot_create, bot_revoke, bot_set_reach

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.pg]


def _client(api: ApiASGIHandler) -> httpx.AsyncClient:
    app = SplitHttp(ASGIHandler(), api)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


async def _db(fn, **kwargs):
    """``fn`` on a thread, its connection closed after (a connection left open in a
    helper thread would keep PostgreSQL from dropping the test database)."""

    def run():
        try:
            return fn(**kwargs)
        finally:
            connections.close_all()

    return await sync_to_async(run)()


def _store(agent_id: str = "user-1") -> dict:
    return {"agent_id": agent_id, "content": "Customer wants a refund", "importance": 0.5}


async def test_the_api_chain_is_the_edge_alone_and_the_pages_keep_theirs():
    api = ApiASGIHandler(threads=2)
    chain = api._middleware_chain.__wrapped__
    assert isinstance(chain, ApiEdgeMiddleware)
    names = [f"{type(p).__module__}.{type(p).__name__}" for p in chain.parts]
    assert names == settings.API_EDGE_MIDDLEWARE
    assert not any("session" in n.lower() or "csrf" in n.lower() for n in names)
    # Building the API chain leaves the pages' setting alone.
    assert "django.contrib.sessions.middleware.SessionMiddleware" in settings.MIDDLEWARE

    async with _client(api) as http:
        page = await http.get("/accounts/login/")
    assert page.status_code == 200
    assert "csrftoken" in page.headers.get("set-cookie", "")  # the page chain ran


async def test_a_store_through_the_api_handler_keeps_the_edge_headers_and_sets_no_cookie():
    _bot, key = await _db(bot_create, name="edge-bot")
    async with _client(ApiASGIHandler(threads=2)) as http:
        response = await http.post(
            "/v1/memory/store", json=_store(), headers={"Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 200, response.text
    assert response.json()["memory"]["agent_id"] == "user-1"
    assert response.headers["x-content-type-options"] == "nosniff"  # SecurityMiddleware
    assert response.headers["x-frame-options"] == "DENY"  # XFrameOptionsMiddleware
    assert "set-cookie" not in response.headers
    assert "cookie" not in response.headers.get("vary", "").lower()


async def test_api_answers_carry_the_policy_django_csp_builds_and_follow_its_settings():
    """``ApiCSPMiddleware`` builds the header once, not per answer: the same string
    django-csp builds, rebuilt when the policy settings change."""
    _bot, key = await _db(bot_create, name="csp-bot")
    auth = {"Authorization": f"Bearer {key}"}
    async with _client(ApiASGIHandler(threads=1)) as http:
        first = await http.post("/v1/memory/store", json=_store(), headers=auth)
        with override_settings(
            CONTENT_SECURITY_POLICY={"DIRECTIVES": {"default-src": [NONE]}},
            CONTENT_SECURITY_POLICY_REPORT_ONLY={"DIRECTIVES": {"img-src": [SELF]}},
        ):
            changed = await http.post("/v1/memory/store", json=_store(), headers=auth)
            expected = (build_policy(), build_policy(report_only=True))
        back = await http.get("/v1/sessions?agent_id=user-1", headers=auth)
    assert first.status_code == changed.status_code == back.status_code == 200
    assert first.headers["content-security-policy"] == build_policy()
    assert "frame-ancestors 'none'" in first.headers["content-security-policy"]
    assert "content-security-policy-report-only" not in first.headers
    assert changed.headers["content-security-policy"] == expected[0] == "default-src 'none'"
    assert changed.headers["content-security-policy-report-only"] == expected[1]
    assert "img-src 'self'" in expected[1]
    assert back.headers["content-security-policy"] == first.headers["content-security-policy"]
    assert "content-security-policy-report-only" not in back.headers


async def test_edge_refusals_still_answer_in_the_api_shape():
    _bot, key = await _db(bot_create, name="edge-bot")
    auth = {"Authorization": f"Bearer {key}"}
    async with _client(ApiASGIHandler(threads=2)) as http:
        nul = await http.get("/v1/sessions?agent_id=a%00b", headers=auth)
        host = await http.get("/v1/sessions", headers={**auth, "Host": "evil.example"})
        no_key = await http.post("/v1/memory/store", json=_store())
    assert nul.status_code == 400
    assert nul.json()["code"] == "INVALID_REQUEST"  # BoundaryMiddleware, inline
    assert host.status_code == 400  # ALLOWED_HOSTS (CommonMiddleware), inline
    assert no_key.status_code == 401
    assert no_key.json()["code"] == "AUTHENTICATION_REQUIRED"


async def test_a_revoked_or_narrowed_key_stops_working_on_the_very_next_request():
    bot, key = await _db(bot_create, name="edge-bot")
    auth = {"Authorization": f"Bearer {key}"}
    async with _client(ApiASGIHandler(threads=1)) as http:  # one kept thread and connection
        assert (await http.post("/v1/memory/store", json=_store(), headers=auth)).is_success
        await _db(bot_set_reach, bot=bot, namespaces=["vip-*"])
        narrowed = await http.post("/v1/memory/store", json=_store(), headers=auth)
        await _db(bot_revoke, bot=bot)
        revoked = await http.post("/v1/memory/store", json=_store("vip-1"), headers=auth)
    assert narrowed.status_code == 403
    assert narrowed.json()["code"] == "NAMESPACE_ACCESS_DENIED"
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "API_KEY_EXPIRED"


async def test_the_kept_threads_keep_their_sqlite_connection_between_requests():
    _bot, key = await _db(bot_create, name="edge-bot")
    api = ApiASGIHandler(threads=1)

    def open_connection():
        conn = connections["default"]
        return conn.connection

    async with _client(api) as http:
        auth = {"Authorization": f"Bearer {key}"}
        assert (await http.post("/v1/memory/store", json=_store(), headers=auth)).is_success
        first = api.executors[0].submit(open_connection).result()
        assert (await http.post("/v1/memory/store", json=_store(), headers=auth)).is_success
        second = api.executors[0].submit(open_connection).result()
    if connections["default"].vendor == "sqlite":
        assert first is not None  # still open after the request ended
        assert second is first  # and the next request used it again
    else:  # PostgreSQL: back to the pool at the end of each request, as before
        assert first is None and second is None
