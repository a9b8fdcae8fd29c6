"""Random frames on every socket a browser opens: none breaks a consumer or writes a row.

Hypothesis draws text frames (JSON of any shape, typing frames with odd values, huge
strings, NUL and lone surrogates) and binary frames; after each the socket must still be
open (it answers the next frame) and the watched tables unchanged.
"""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handoffs.lifecycle.accept import handoff_accept
from handoffs.models import Conversation, Event, Handoff, Message
from tests import factories
from tests.lifecycle.test_chat import _socket

pytestmark = [pytest.mark.pg, pytest.mark.django_db(transaction=True)]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
text_frames = st.one_of(
    json_values.map(json.dumps),
    st.dictionaries(st.just("typing"), json_values).map(json.dumps),
    st.text(max_size=300),
    st.text(alphabet=st.sampled_from(["\x00", "\ud800", "a", "{", "}"]), max_size=100),
    st.integers(min_value=10_000, max_value=200_000).map(
        lambda n: '{"typing": true, "x": "' + "y" * n + '"}'
    ),
)
frames = st.one_of(
    text_frames.map(lambda t: ("text", t)), st.binary(max_size=2000).map(lambda b: ("bytes", b))
)


def examples() -> list[tuple[str, object]]:
    """40 frames drawn by Hypothesis (derandomized), replayed on each socket."""
    drawn: list[tuple[str, object]] = []

    @given(frame=frames)
    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def draw(frame):
        drawn.append(frame)

    draw()
    # The test client can't send an empty frame (a browser can't either).
    return [(kind, payload) for kind, payload in drawn if payload]


EXAMPLES = examples()


def counts() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in (Handoff, Conversation, Message, Event)}


@pytest.mark.asyncio
async def test_random_frames_break_no_socket_and_write_nothing(teams, make_agent):
    @database_sync_to_async
    def setup():
        alice = make_agent("alice", teams=[teams["billing-specialist"]])
        hop = factories.escalate("billing-specialist")
        handoff_accept(handoff_id=hop.pk, agent=alice)
        waiting = factories.escalate("billing-specialist")
        return alice, hop, Conversation.objects.get(pk=hop.conversation_id), waiting

    alice, hop, conversation, waiting = await setup()
    paths = [
        (f"/ws/chat/{conversation.token}/", None),
        (f"/ws/conversations/{hop.pk}/", alice.user),
        ("/ws/queue/", alice.user),
        (f"/ws/handoffs/{waiting.pk}/", alice.user),
    ]
    for path, user in paths:
        socket = _socket(path, user=user)
        try:
            assert (await socket.connect())[0], path
            await socket.receive_from()  # the snapshot
            before = await database_sync_to_async(counts)()
            for kind, payload in EXAMPLES:
                if kind == "text":
                    await socket.send_to(text_data=payload)
                else:
                    await socket.send_to(bytes_data=payload)
            # Still open and serving: drain what it forwarded (typing frames), then
            # nothing more; a closed socket would have sent websocket.close.
            while not await socket.receive_nothing(timeout=0.3):
                output = await socket.receive_output()
                assert output["type"] == "websocket.send", (path, output)
            assert await database_sync_to_async(counts)() == before, path
        finally:
            await socket.disconnect()
