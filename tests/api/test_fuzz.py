"""Schemathesis fuzzes every operation of the published schema against a live console.

Each example is the generated request, or (drawn alongside) the same request made
hostile: a lone surrogate or a NUL put into one of its strings, or a body nested
thousands of levels deep. Asserted for every answer: no 5xx, a documented status and
content type, a body that matches the schema, and no row written when it was refused.
Runs in both passes of ``make test`` (SQLite, then PostgreSQL); the number of examples
per operation is ``FUZZ_EXAMPLES`` (default 12) so the suite stays short.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.specs.openapi import checks as openapi_checks

from handoffs.api.keys import bot_create
from handoffs.api.schema import openapi
from handoffs.memory.models import Memory, MemorySession
from handoffs.models import Conversation, Event, Handoff, IdempotencyRecord, Message

pytestmark = [pytest.mark.pg, pytest.mark.django_db(transaction=True)]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
# Which hostile variants are drawn beside the generated body (comma-separated).
HOSTILE = set(os.environ.get("FUZZ_HOSTILE", "surrogate,nul,deep").split(","))
WATCHED = [Memory, MemorySession, Handoff, Event, IdempotencyRecord, Conversation, Message]
DEEP = "__nest_this_deep__"
CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


def poison(value: Any, bad: str) -> tuple[Any, bool]:
    """``value`` with ``bad`` put into its first string (or first key); done flag."""
    if isinstance(value, str):
        return value + bad, True
    if isinstance(value, list):
        for i, item in enumerate(value):
            new, done = poison(item, bad)
            if done:
                return [*value[:i], new, *value[i + 1 :]], True
    if isinstance(value, dict):
        for key, item in value.items():
            new, done = poison(item, bad)
            if done:
                return {**value, key: new}, True
        if value:
            key = next(iter(value))
            return {**{k: v for k, v in value.items() if k != key}, key + bad: value[key]}, True
    return value, False


def hostile_bodies(context, body):
    """The generated body, or it with a lone surrogate, a NUL, or 5,000 levels of nesting."""
    if not isinstance(body, dict | list):
        return st.just(body)
    variants = [body]
    if "surrogate" in HOSTILE:
        variants.append(poison(body, "\ud800")[0])
    if "nul" in HOSTILE:
        variants.append(poison(body, "\x00")[0])
    if "deep" in HOSTILE and isinstance(body, dict):
        variants.append({**body, "metadata": {DEEP: 5000}})
    return st.sampled_from(variants)


def serialize(body: Any) -> bytes:
    """JSON text; a ``{DEEP: n}`` marker becomes ``n`` nested objects (json.dumps can't)."""
    text = json.dumps(body)
    marker = json.dumps({DEEP: 5000})
    if marker in text:
        text = text.replace(marker, '{"a": ' * 5000 + "1" + "}" * 5000)
    return text.encode()


def state() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in WATCHED}


def load_schema():
    schema = schemathesis.openapi.from_dict(openapi())
    schema.hook("flatmap_body")(hostile_bodies)
    return schema


OPERATIONS = {op.ok().label: op.ok() for op in load_schema().get_all_operations()}


@pytest.fixture
def bot_key(transactional_db, teams) -> str:
    return bot_create(name="fuzz-bot")[1]


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_operation_fails_on_generated_or_hostile_input(label, live_console, bot_key):
    operation = OPERATIONS[label]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def example(case):
        check_one(case, live_console.url, bot_key)

    example()


def check_one(case, base_url: str, bot_key: str) -> None:
    kwargs = case.as_transport_kwargs(
        base_url=base_url, headers={"Authorization": f"Bearer {bot_key}"}
    )
    content = None
    if "json" in kwargs:
        content = serialize(kwargs.pop("json"))
        kwargs["headers"] = {**kwargs.get("headers", {}), "Content-Type": "application/json"}
    before = state()
    response = httpx.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=kwargs.get("headers"),
        content=content if content is not None else kwargs.get("data"),
        timeout=30,
    )
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        assert state() == before, f"a refused {case.method} {case.path} wrote rows"
