"""The database layer every stage shares: a SQLite file by default, PostgreSQL by URL.

`Store.open(settings.database_url())` connects and migrates; its methods write and read records
(judgements, the gateway's API keys and audit events; attempts and decisions as those stages arrive).
"""

from safestack.store.db import Store
from safestack.store.judgements import StoredJudgement
from safestack.store.keys import SCOPES, ApiKey, Scope
from safestack.store.migrate import head_revision

__all__ = ["SCOPES", "ApiKey", "Scope", "Store", "StoredJudgement", "head_revision"]
