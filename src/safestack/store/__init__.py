"""The database layer every stage shares: a SQLite file by default, PostgreSQL by URL.

`Store.open(settings.database_url())` connects and migrates; one repository per record family writes
and reads them: `store.judgements`, `store.keys`, `store.audit`, `store.runs` (red-team attempts),
`store.training_sets` (break-fix training sets), `store.models` (the fine-tuned models' lineage),
`store.rounds` (break-fix rounds), `store.gate` (the gate's evidence and decision log),
`store.enforcement` (monitoring's enforcement decisions), `store.media_banks` (hash banks for images)
and `store.media_cases` (their matches, for review). `AuditJournal` is the gateway's write-ahead
log of audit events on local disk, drained into `store.audit`.
"""

from safestack.store.attempts import RedteamRuns, StoredRun
from safestack.store.audit import AuditLog
from safestack.store.database import Database, Timeouts, create_database
from safestack.store.db import Store
from safestack.store.enforcement import ActiveMeasures, EnforcementLog
from safestack.store.gate import (
    GateRecords,
    StoredEvidence,
    StoredLogEntry,
    StoredModelVersion,
    StoredSigner,
)
from safestack.store.journal import AuditJournal
from safestack.store.judgements import Judgements, StoredJudgement
from safestack.store.keys import SCOPES, ApiKey, ApiKeys, KeyLimits, Scope
from safestack.store.lineage import ModelLineage, StoredModel
from safestack.store.media_banks import (
    ActiveHash,
    BankEntry,
    HashKind,
    ImportCount,
    MediaBanks,
    StoredBank,
)
from safestack.store.media_cases import CaseMatch, CaseStatus, MediaCase, MediaCases
from safestack.store.migrate import head_revision
from safestack.store.rounds import Rounds, StoredRound
from safestack.store.training_sets import StoredTrainingSet, TrainingSets

__all__ = [
    "SCOPES",
    "ActiveHash",
    "ActiveMeasures",
    "ApiKey",
    "ApiKeys",
    "AuditJournal",
    "AuditLog",
    "BankEntry",
    "CaseMatch",
    "CaseStatus",
    "Database",
    "EnforcementLog",
    "GateRecords",
    "HashKind",
    "ImportCount",
    "Judgements",
    "KeyLimits",
    "MediaBanks",
    "MediaCase",
    "MediaCases",
    "ModelLineage",
    "RedteamRuns",
    "Rounds",
    "Scope",
    "Store",
    "StoredBank",
    "StoredEvidence",
    "StoredJudgement",
    "StoredLogEntry",
    "StoredModel",
    "StoredModelVersion",
    "StoredRound",
    "StoredRun",
    "StoredSigner",
    "StoredTrainingSet",
    "Timeouts",
    "TrainingSets",
    "create_database",
    "head_revision",
]
