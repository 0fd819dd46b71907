"""What every route of one gateway shares: settings, the store (and the thread pool its calls run
in), the audit trail, the rate limiter, the policies, the upstream, the key cache, the metrics,
the media gate (images hashed and matched) and the enforcement state. Built by `create_app()`; a route finds it on
`request.app.state.gateway`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from safestack.server.audit import AuditTrail
from safestack.server.auth import KeyCache
from safestack.server.catalog import ModelCatalog
from safestack.server.enforcement import EnforcementState
from safestack.server.errors import upstream_unavailable
from safestack.server.metrics import Metrics
from safestack.server.policies import PolicyCache
from safestack.server.ratelimit import RateLimiter
from safestack.server.storecalls import StoreCalls
from safestack.server.upstream import Upstream
from safestack.settings import Settings
from safestack.store import Store

if TYPE_CHECKING:
    from safestack.server.images import MediaGate


@dataclass(slots=True)
class Gateway:
    settings: Settings
    store: Store
    calls: StoreCalls
    audit: AuditTrail
    limiter: RateLimiter
    policies: PolicyCache
    upstream: Upstream | None
    catalog: ModelCatalog | None
    keys: KeyCache
    metrics: Metrics
    require_auth: bool
    media: MediaGate
    enforcement: EnforcementState

    def require_upstream(self) -> tuple[Upstream, ModelCatalog]:
        """The upstream and its model list; 503 with how to configure one when there is none."""
        if self.upstream is None or self.catalog is None:
            raise upstream_unavailable()
        return self.upstream, self.catalog


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway
