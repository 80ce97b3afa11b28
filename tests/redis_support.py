"""Redis for the tests that use the machine's Redis server (marked `redis`)."""

from __future__ import annotations


def redis_available(url: str) -> bool:
    """Whether a Redis server answers PING at `url` within a second."""
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False
