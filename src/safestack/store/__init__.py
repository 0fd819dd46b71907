"""The database layer every stage shares: a SQLite file by default, PostgreSQL by URL.

`Store.open(settings.database_url())` connects and migrates; one repository per record family writes
and reads them: `store.judgements`, `store.keys`, `store.audit`, `store.runs` (red-team attempts),
`store.training_sets` (break-fix training sets), `store.media_banks` (hash banks for images), `store.media_cases` (their matches, for review).
"""

from safestack.store.attempts import RedteamRuns, StoredRun
from safestack.store.audit import AuditLog
from safestack.store.database import Database
from safestack.store.db import Store
from safestack.store.judgements import Judgements, StoredJudgement
from safestack.store.keys import SCOPES, ApiKey, ApiKeys, Scope
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
from safestack.store.training_sets import StoredTrainingSet, TrainingSets

__all__ = [
    "SCOPES",
    "ActiveHash",
    "ApiKey",
    "ApiKeys",
    "AuditLog",
    "BankEntry",
    "CaseMatch",
    "CaseStatus",
    "Database",
    "HashKind",
    "ImportCount",
    "Judgements",
    "MediaBanks",
    "MediaCase",
    "MediaCases",
    "RedteamRuns",
    "Scope",
    "Store",
    "StoredBank",
    "StoredJudgement",
    "StoredRun",
    "StoredTrainingSet",
    "TrainingSets",
    "head_revision",
]
