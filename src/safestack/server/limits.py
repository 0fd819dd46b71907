"""Limits on the work a request asks for: messages in a chat, strings to moderate, characters to
judge per request and per minute. The routes check them once the body is parsed and before any
guard or judge work, so a 10,000-message chat costs what reading it cost (docs/server.md, "Limits").

Each limit is the key's own (`safestack keys create --max-messages ...`) or else the server's
setting. The per-minute character budget is a token bucket in the same rate limiter as requests
(memory or Redis), under the key id + ":chars".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from safestack.server.auth import limiter_unavailable
from safestack.server.calls import Call
from safestack.server.errors import ApiError, bad_request
from safestack.server.gateway import Gateway
from safestack.settings import Settings
from safestack.store import ApiKey


@dataclass(frozen=True, slots=True)
class WorkLimits:
    """The limits in force for one request: the key's own where it has them, else the server's."""

    max_messages: int
    max_inputs: int
    max_chars: int
    chars_per_minute: int | None  # None: characters are not counted over time
    whose: str  # "this key's" or "the gateway's" (no key: --no-auth), for error messages

    @classmethod
    def of(cls, key: ApiKey | None, settings: Settings) -> WorkLimits:
        if key is None:  # --no-auth: the server's limits; no key, so no per-minute budget
            return cls(
                settings.max_messages,
                settings.max_inputs,
                settings.max_chars,
                None,
                "the gateway's",
            )
        own = key.limits
        return cls(
            max_messages=own.max_messages or settings.max_messages,
            max_inputs=own.max_inputs or settings.max_inputs,
            max_chars=own.max_chars or settings.max_chars,
            chars_per_minute=own.chars_per_minute or settings.chars_per_minute,
            whose="this key's",
        )

    def check_messages(self, messages: Any) -> None:
        """400 when a chat's `messages` list is longer than allowed (anything else is left to
        the request's own validation)."""
        if isinstance(messages, list) and len(messages) > self.max_messages:
            raise self._exceeded("messages", len(messages), self.max_messages, "per request")

    def check_inputs(self, count: int) -> None:
        """400 when a moderation request has more strings than allowed."""
        if count > self.max_inputs:
            raise self._exceeded("input", count, self.max_inputs, "per request")

    async def charge_characters(self, gateway: Gateway, call: Call, chars: int, param: str) -> None:
        """400 when a request has more characters to judge than allowed; otherwise take them from
        the key's per-minute budget, if it has one (429 with Retry-After when it is spent)."""
        if chars > self.max_chars:
            raise self._exceeded("characters", chars, self.max_chars, "per request", param)
        budget = self.chars_per_minute
        if budget is None or call.key is None:
            return
        if chars > budget:  # more than a full bucket: waiting would never help
            raise self._exceeded("characters", chars, budget, "per minute", param)
        try:
            decision = await gateway.limiter.acquire(
                f"{call.key.id}:chars", budget, budget, cost=chars
            )
        except Exception as exc:
            raise limiter_unavailable(exc) from None
        headers = {
            "x-ratelimit-limit-characters": str(budget),
            "x-ratelimit-remaining-characters": str(max(0, math.floor(decision.remaining))),
        }
        call.headers.update(headers)
        if not decision.allowed:
            retry = max(1, math.ceil(decision.retry_after))
            raise ApiError(
                429,
                f"characters: {chars:,} would exceed this key's limit of {budget:,} per minute "
                f"({math.floor(decision.remaining):,} left for now); retry after {retry} s",
                type="rate_limit_error",
                code="rate_limit_exceeded",
                param=param,
                headers={**headers, "retry-after": str(retry)},
            )

    def _exceeded(
        self, name: str, figure: int, limit: int, per: str, param: str | None = None
    ) -> ApiError:
        return bad_request(
            f"{name}: {figure:,} exceeds {self.whose} limit of {limit:,} {per}; send less, or "
            "ask the gateway's administrator for a higher limit (docs/server.md, Limits)",
            param=param or name,
            code="request_limit_exceeded",
        )
