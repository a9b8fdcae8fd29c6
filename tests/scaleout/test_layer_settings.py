"""The Redis channel layer's settings, checked without a server."""

from __future__ import annotations

import pytest
from channels.layers import get_channel_layer

from .conftest import require_postgresql_and_redis

pytestmark = [pytest.mark.pg, pytest.mark.scaleout]


def test_socket_reads_outlast_the_layers_blocking_pop():
    """redis-py 8 defaults to a 5 s socket timeout, the length of channels_redis's blocking
    BZPOPMIN: the read then times out first, the consumer dies and every idle socket
    drops every few seconds. The settings give reads a longer timeout."""
    require_postgresql_and_redis()
    layer = get_channel_layer()
    pool = layer.create_pool(0)
    assert pool.connection_kwargs["socket_timeout"] > layer.brpop_timeout
    assert pool.connection_kwargs["socket_connect_timeout"] <= 5
