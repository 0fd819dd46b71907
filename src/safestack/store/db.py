"""The Store: the one database every stage shares, and a repository per record family.

`Store.open(url)` connects and migrates (`store.database.Database`); callers read and write through
`store.judgements`, `store.keys`, `store.audit` and `store.runs`. A new stage's family is a module
here with its table in `tables.py`, a migration in `migrations/versions/`, and a class taking the
Database, attached below as one more attribute.
"""

from __future__ import annotations

from sqlalchemy import Engine

from safestack.store.attempts import RedteamRuns
from safestack.store.audit import AuditLog
from safestack.store.database import Database
from safestack.store.judgements import Judgements
from safestack.store.keys import ApiKeys


class Store(Database):
    """The database at head revision, with one repository per record family."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.judgements = Judgements(self)
        self.keys = ApiKeys(self)
        self.audit = AuditLog(self)
        self.runs = RedteamRuns(self)
