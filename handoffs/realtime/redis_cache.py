"""Django's Redis cache on one bounded connection pool per process.

Django keeps a cache object per thread *and per asyncio context* (``caches`` is an
``asgiref.local.Local``), and each ``RedisCache`` object makes its own connection pool.
Under Daphne every consumer task is its own context, so each socket that touched the
cache left its own idle connection behind: 2,093 idle connections to Redis from one
Daphne after a 2,000-socket run (issue 19). Here every cache object of the process
shares one ``redis.BlockingConnectionPool`` per server: at most ``max_connections``
(``REDIS_CACHE_POOL_SIZE``), a caller waiting up to ``timeout`` seconds
(``REDIS_POOL_TIMEOUT``) for a free one instead of failing. The socket registry
(``registry.py``) and the health check use the same pool through ``shared_client``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.conf import settings
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_pools: dict[tuple[int, str], Any] = {}
_lock = threading.Lock()


def _pool(url: str, options: dict[str, Any]) -> Any:
    import redis

    key = (os.getpid(), url)  # a forked child makes its own
    pool = _pools.get(key)
    if pool is None:
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = redis.BlockingConnectionPool.from_url(url, **options)
                _pools[key] = pool
    return pool


def _pool_options(options: dict[str, Any]) -> dict[str, Any]:
    options = dict(options)
    options.pop("pool_class", None)
    options.setdefault("max_connections", settings.REDIS_CACHE_POOL_SIZE)
    options.setdefault("timeout", settings.REDIS_POOL_TIMEOUT)
    return options


class SharedPoolRedisCacheClient(RedisCacheClient):
    def _get_connection_pool(self, write: bool) -> Any:
        index = self._get_connection_pool_index(write)
        return _pool(self._servers[index], self._pool_options)


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
        self._options = _pool_options(self._options)


_clients: dict[int, Any] = {}


def shared_client() -> Any:
    """The process's ``redis.Redis`` on its shared cache pool (first server)."""
    client = _clients.get(os.getpid())
    if client is None:
        client = _clients[os.getpid()] = _new_client()
    return client


def _new_client() -> Any:
    import redis
    from django.core.cache import caches

    backend = caches["default"]
    if isinstance(backend, SharedPoolRedisCache):
        client = backend._cache
        return redis.Redis(connection_pool=client._get_connection_pool(True))
    # Scale-out settings always use SharedPoolRedisCache; anything else gets a small pool.
    return redis.Redis(
        connection_pool=_pool(
            settings.REDIS_URL,
            {
                "max_connections": settings.REDIS_CACHE_POOL_SIZE,
                "timeout": settings.REDIS_POOL_TIMEOUT,
                "socket_connect_timeout": 2,
                "socket_timeout": 5,
            },
        )
    )
