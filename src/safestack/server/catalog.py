"""The models a request may name: the upstream's list (cached briefly) and the key's allowlist.

A key's `models` lists model ids or shell-style patterns (`llama-*`); empty allows every model the
upstream serves. A model the key may not use is answered exactly like one that does not exist
(404), so a key cannot probe what others may use.
"""

from __future__ import annotations

import time
from fnmatch import fnmatchcase
from typing import Any

from safestack.server.errors import ApiError
from safestack.server.upstream import Upstream
from safestack.store import ApiKey

# A miss refreshes the list at most this often, so a newly loaded upstream model is found soon.
_REFRESH_ON_MISS_S = 5.0


class ModelCatalog:
    def __init__(self, upstream: Upstream, ttl: float = 60.0):
        self._upstream = upstream
        self._ttl = ttl
        self._models: list[dict[str, Any]] | None = None
        self._fetched = 0.0

    async def models(self, *, max_age: float | None = None) -> list[dict[str, Any]]:
        """The upstream's model objects, fetched again when older than `max_age` (default ttl)."""
        age = time.monotonic() - self._fetched
        if self._models is None or age > (self._ttl if max_age is None else max_age):
            self._models = await self._upstream.models()
            self._fetched = time.monotonic()
        return self._models

    async def visible(self, key: ApiKey | None) -> list[dict[str, Any]]:
        return [m for m in await self.models() if allowed(key, m["id"])]

    async def check(self, key: ApiKey | None, model: str) -> None:
        """404 unless the upstream serves `model` and the key may use it."""
        if allowed(key, model):
            if any(m["id"] == model for m in await self.models()):
                return
            if any(m["id"] == model for m in await self.models(max_age=_REFRESH_ON_MISS_S)):
                return
        raise ApiError(
            404,
            f"the model '{model}' does not exist or this key may not use it; "
            "GET /v1/models lists the models available to it",
            param="model",
            code="model_not_found",
        )


def allowed(key: ApiKey | None, model: str) -> bool:
    if key is None or not key.models:
        return True
    return any(fnmatchcase(model, pattern) for pattern in key.models)
