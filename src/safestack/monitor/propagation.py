"""How a decision reaches every gateway replica within seconds.

The store is the truth: each replica re-reads what is in force when the enforcement log grows.
To notice that without asking the store every second, a deployment with Redis
(SAFESTACK_REDIS_URL) has deciders increment a version key there (`announce`) and replicas poll
that key; they still check the store now and then, and only the store when Redis does not answer.
"""

from __future__ import annotations

import logging

log = logging.getLogger("safestack.monitor")

VERSION_KEY = "safestack:enforcement:version"
# A decision is recorded in the store first; announcing it must not hold the decider long.
ANNOUNCE_TIMEOUT_S = 1.0


def announce(redis_url: str | None) -> bool:
    """Bump the version key in Redis; False (logged, never raised) when there is no Redis or it
    does not answer: replicas then notice the decision at their next store check."""
    if not redis_url:
        return False
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        client = Redis.from_url(
            redis_url,
            socket_timeout=ANNOUNCE_TIMEOUT_S,
            socket_connect_timeout=ANNOUNCE_TIMEOUT_S,
        )
    except ValueError as exc:
        log.error("announcing a decision: the Redis URL is not valid (%s)", exc)
        return False
    try:
        client.incr(VERSION_KEY)
        return True
    except (RedisError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning(
            "announcing a decision in Redis failed (%s); gateways see it at their next store check",
            first,
        )
        return False
    finally:
        client.close()
