"""The gateway (`safestack serve`): OpenAI-compatible endpoints in front of any OpenAI-compatible
model server, with the guard applied, API keys, rate limits, an audit log and metrics.

`create_app(settings, store=..., limiter=..., policies=..., upstream=...)` builds the FastAPI app;
see docs/server.md.
"""

from safestack.server.app import create_app
from safestack.server.policies import LoadedPolicy, PolicyCache
from safestack.server.upstream import Upstream

__all__ = ["LoadedPolicy", "PolicyCache", "Upstream", "create_app"]
