"""The Store: the database every stage shares (`Database`) with one repository per record family.

A new family is a module here (a class taking the Database), its table in `tables.py`, a migration
in `migrations/versions/`, and one more attribute set in `Store.__init__`.
"""

from __future__ import annotations

from sqlalchemy import Engine

from safestack.store.attempts import RedteamRuns
from safestack.store.audit import AuditLog
from safestack.store.console import ConsoleRecords
from safestack.store.database import Database
from safestack.store.enforcement import EnforcementLog
from safestack.store.gate import GateRecords
from safestack.store.judgements import Judgements
from safestack.store.keys import ApiKeys
from safestack.store.lineage import ModelLineage
from safestack.store.media_banks import MediaBanks
from safestack.store.media_cases import MediaCases
from safestack.store.rounds import Rounds
from safestack.store.training_sets import TrainingSets


class Store(Database):
    """The database at head revision, with one repository per record family."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.judgements = Judgements(self)
        self.keys = ApiKeys(self)
        self.audit = AuditLog(self)
        self.runs = RedteamRuns(self)
        self.gate = GateRecords(self)
        self.training_sets = TrainingSets(self)
        self.media_banks = MediaBanks(self)
        self.media_cases = MediaCases(self)
        self.models = ModelLineage(self)
        self.console = ConsoleRecords(self)
        self.enforcement = EnforcementLog(self)
        self.rounds = Rounds(self)
