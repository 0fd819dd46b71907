"""Store calls made while serving: in a thread pool of their own, each with a deadline.

The store's drivers block, so calls run in threads. A frozen database (a stopped PostgreSQL, a
network that drops packets) cannot enforce its own statement timeout, so each call also has a
deadline here: past it the request gets a StoreError (503) instead of waiting. Its thread may stay
stuck until the database answers; the pool is separate from the one the guard's detectors use, so
a stuck database never starves the guard, and bounded, so stuck calls cannot pile up threads.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from safestack.errors import StoreError
from safestack.settings import Settings
from safestack.store import Timeouts

P = ParamSpec("P")
T = TypeVar("T")


def database_timeouts(settings: Settings) -> Timeouts:
    """The gateway's timeouts toward the database, from its settings."""
    return Timeouts(
        connect=settings.db_connect_timeout,
        statement=settings.db_statement_timeout,
        pool=settings.db_pool_timeout,
        busy=settings.db_busy_timeout,
    )


class StoreCalls:
    """Run store methods off the event loop, each within `deadline` seconds."""

    @classmethod
    def for_settings(cls, settings: Settings) -> StoreCalls:
        """Calls that give up a second after a connection and a statement would have timed out."""
        waits = max(settings.db_statement_timeout, settings.db_busy_timeout)
        return cls(settings.db_connect_timeout + waits + 1.0)

    def __init__(self, deadline: float, threads: int = 8) -> None:
        self.deadline = deadline
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="safestack-store")

    async def run(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args, **kwargs)` in the pool; a StoreError after the deadline."""
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self._pool, functools.partial(function, *args, **kwargs))
        try:
            return await asyncio.wait_for(call, self.deadline)
        except TimeoutError:
            raise StoreError(
                f"the database did not answer within {self.deadline:g} s "
                "(SAFESTACK_DB_CONNECT_TIMEOUT + SAFESTACK_DB_STATEMENT_TIMEOUT + 1); retry shortly"
            ) from None

    async def run_unbounded(
        self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """The same without a deadline, for background work (the journal's drain) that must not
        give up halfway and is not waited for by a request."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(function, *args, **kwargs))

    def close(self) -> None:
        """Stop taking calls; threads stuck on a frozen database are not waited for."""
        self._pool.shutdown(wait=False, cancel_futures=True)
