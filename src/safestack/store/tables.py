"""The ORM models: one class per table, in the shape the newest migration leaves the database.

The migrations in `migrations/versions/` create and change these tables; the classes here only
describe them for queries. A new table is a new class here plus a new migration in the chain.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    true,
)
from sqlalchemy import Text as TextType
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Explicit constraint names, so later migrations can drop or alter them by name on every backend
# (SQLite's batch mode needs named constraints).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON everywhere, JSONB on PostgreSQL so later issues can index and query inside it.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")
# The same, but Python None is SQL NULL rather than the JSON value null: "IS NULL" finds it.
NullableJSONDocument = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL keeps the offset (timestamptz); SQLite stores text without one, so values are
    converted to UTC on the way in and marked as UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store a naive datetime ({value}); give it a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _without_nul(value: Any) -> Any:
    """`value` with NUL (U+0000) in its strings, keys included, replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


class ClientText(TypeDecorator[str]):
    """Text a client chose (a model name, an error quoting a field), as close as the backend can
    keep it: PostgreSQL refuses NUL in text, so there it becomes U+FFFD; elsewhere it is kept.

    Without this, a request naming the model "a\u0000b" could not be audited on PostgreSQL and was
    answered 503 audit_unavailable: a client's mistake as a server error.
    """

    impl = TextType()
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return _without_nul(value) if dialect.name == "postgresql" else value


class ClientJSON(TypeDecorator[Any]):
    """JSON (JSONB on PostgreSQL) holding a client's values; PostgreSQL's jsonb refuses the
    escape \u0000, so NUL in its strings becomes U+FFFD there (ClientText)."""

    impl = JSON()
    cache_ok = True

    def __init__(self, *, none_as_null: bool = False) -> None:
        super().__init__()
        self.none_as_null = none_as_null

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB(none_as_null=self.none_as_null))
        return dialect.type_descriptor(JSON(none_as_null=self.none_as_null))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return _without_nul(value) if dialect.name == "postgresql" else value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JudgementRow(Base):
    """One Verdict on one input, with the columns reports filter on pulled out of the JSON."""

    __tablename__ = "judgements"
    __table_args__ = (CheckConstraint("kind IN ('prompt', 'response')", name="kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    run_id: Mapped[str] = mapped_column(String(128), index=True)
    input_digest: Mapped[str] = mapped_column(String(64), index=True)
    input_text: Mapped[str | None] = mapped_column(TextType())
    kind: Mapped[str] = mapped_column(String(16))
    flagged: Mapped[bool] = mapped_column(Boolean(), index=True)
    action: Mapped[str] = mapped_column(String(16))
    severity: Mapped[int] = mapped_column(Integer())
    categories: Mapped[list[str]] = mapped_column(JSONDocument)
    verdict: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    policy: Mapped[str] = mapped_column(String(200))
    schema_version: Mapped[int] = mapped_column(Integer())


class ApiKeyRow(Base):
    """One gateway API key: its public id, what it may do, and only a hash of its secret."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(TextType())
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSONDocument)
    policy: Mapped[str | None] = mapped_column(TextType())
    models: Mapped[list[str]] = mapped_column(JSONDocument)
    rate_per_minute: Mapped[int | None] = mapped_column(Integer())
    burst: Mapped[int | None] = mapped_column(Integer())
    limits: Mapped[dict[str, int | None]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEventRow(Base):
    """One request the guard handled (an AuditEvent), its JSON fields as JSON columns.

    `key_id` is deliberately not a foreign key: a request is audited even when the key it
    presented is unknown, and events outlive the keys they mention.
    """

    __tablename__ = "audit_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    key_id: Mapped[str | None] = mapped_column(ClientText(), index=True)
    endpoint: Mapped[str] = mapped_column(TextType())
    model: Mapped[str | None] = mapped_column(ClientText())
    action: Mapped[str | None] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer())
    latency_ms: Mapped[float] = mapped_column(Double())
    categories: Mapped[list[str]] = mapped_column(JSONDocument)
    scores: Mapped[dict[str, float]] = mapped_column(JSONDocument)
    policy: Mapped[str | None] = mapped_column(TextType())
    input_digest: Mapped[str | None] = mapped_column(String(64))
    output_digest: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[dict[str, Any] | None] = mapped_column(ClientJSON(none_as_null=True))
    error: Mapped[str | None] = mapped_column(ClientText())
    stream: Mapped[bool] = mapped_column(Boolean())
    # False: the request was accepted and not (yet) answered; its completion replaces the row.
    completed: Mapped[bool] = mapped_column(Boolean(), server_default=true())
    schema_version: Mapped[int] = mapped_column(Integer())
    # The hashed end user (never the raw identifier) and the enforcement applied (0011).
    end_user: Mapped[str | None] = mapped_column(String(64), index=True)
    enforcement: Mapped[str | None] = mapped_column(TextType())


class RedteamRunRow(Base):
    """One red-team run: a campaign (as loaded, and its hash) applied to its targets."""

    __tablename__ = "redteam_runs"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(TextType())
    campaign_hash: Mapped[str] = mapped_column(String(64))
    campaign: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    schema_version: Mapped[int] = mapped_column(Integer())


class AttemptRow(Base):
    """One Attempt; the columns runs filter and resume on are pulled out of the JSON record."""

    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("run_id", "target", "probe_id", "sample", name="uq_attempts_probe"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(128), index=True)
    target: Mapped[str] = mapped_column(String(200))
    probe_id: Mapped[str] = mapped_column(String(64))
    sample: Mapped[int] = mapped_column(Integer())
    attack: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    record: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    schema_version: Mapped[int] = mapped_column(Integer())


class GateModelVersionRow(Base):
    """One model version the gate assesses, with its pre- and post-mitigation target names."""

    __tablename__ = "gate_model_versions"
    __table_args__ = (UniqueConstraint("model", "version", name="uq_gate_model_versions_model"),)

    id: Mapped[str] = mapped_column(String(320), primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    pre_target: Mapped[str] = mapped_column(String(200))
    post_target: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(TextType())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GateEvidenceRow(Base):
    """One piece of evidence pinned to a model version: a run's target, an imported log, a finding."""

    __tablename__ = "gate_evidence"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_version_id: Mapped[str] = mapped_column(String(320), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(TextType())
    content_hash: Mapped[str] = mapped_column(String(64))
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    record_hash: Mapped[str] = mapped_column(String(64))
    schema_version: Mapped[int] = mapped_column(Integer())


class GateSignerRow(Base):
    """A person's Ed25519 public key and role; the private key never reaches the database."""

    __tablename__ = "gate_signers"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    person: Mapped[str] = mapped_column(String(200), index=True)
    role: Mapped[str] = mapped_column(String(32))
    public_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GateLogRow(Base):
    """One signed entry of the decision log, in order; rows are only ever appended."""

    __tablename__ = "gate_log"

    seq: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=False)
    entry: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TrainingSetRow(Base):
    """One break-fix training set (`safestack align data`): its content hash, what it was built
    from and how many rows of each kind, so later rounds can name it by id or hash."""

    __tablename__ = "training_sets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    runs: Mapped[list[str]] = mapped_column(JSONDocument)
    policy: Mapped[str] = mapped_column(String(200))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    path: Mapped[str] = mapped_column(TextType())
    manifest: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    schema_version: Mapped[int] = mapped_column(Integer())


class MediaBankRow(Base):
    """One hash bank (`safestack media bank import`): a named list of hashes of known material."""

    __tablename__ = "media_banks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(TextType())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    schema_version: Mapped[int] = mapped_column(Integer())


class MediaHashRow(Base):
    """One hash in a bank. Never deleted: a withdrawn hash gets `disabled_at` (a tombstone), so a
    past match can always be traced to the entry it hit."""

    __tablename__ = "media_hashes"
    __table_args__ = (
        CheckConstraint("kind IN ('pdq', 'md5', 'sha256')", name="kind"),
        UniqueConstraint("bank_id", "kind", "value", name="uq_media_hashes_entry"),
        Index("ix_media_hashes_kind_value", "kind", "value"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    bank_id: Mapped[str] = mapped_column(String(32), ForeignKey("media_banks.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(64))
    quality: Mapped[int | None] = mapped_column(Integer())
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MediaCaseRow(Base):
    """One image that matched a bank: the case a reviewer confirms or dismisses and a report is
    made from. The image itself is never here, only its hashes and what matched."""

    __tablename__ = "media_cases"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'confirmed', 'dismissed', 'reported')", name="status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    md5: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    pdq: Mapped[str | None] = mapped_column(String(64))
    quality: Mapped[int | None] = mapped_column(Integer())
    matches: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    context: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    reviewer: Mapped[str | None] = mapped_column(TextType())
    decision_note: Mapped[str | None] = mapped_column(TextType())
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    schema_version: Mapped[int] = mapped_column(Integer())


class ModelRow(Base):
    """One model in the break-fix lineage: a base model, or a fine-tune of its `parent` on a
    training set (`safestack align train`), with its training config hash and metrics."""

    __tablename__ = "models"
    __table_args__ = (CheckConstraint("kind IN ('base', 'fine-tune')", name="kind"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    parent: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    training_set: Mapped[str | None] = mapped_column(String(32), nullable=True)
    training_set_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    config_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    path: Mapped[str] = mapped_column(TextType())
    target: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    schema_version: Mapped[int] = mapped_column(Integer())


class EngagementRow(Base):
    """One console engagement: which targets, policy, categories and languages are in scope,
    when, and which experts (API key ids) are invited."""

    __tablename__ = "console_engagements"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(TextType())
    targets: Mapped[list[str]] = mapped_column(JSONDocument)
    policy: Mapped[str] = mapped_column(String(200))
    categories: Mapped[list[str]] = mapped_column(JSONDocument)
    languages: Mapped[list[str]] = mapped_column(JSONDocument)
    starts_on: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ends_on: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    experts: Mapped[list[str]] = mapped_column(JSONDocument)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConversationRow(Base):
    """One expert's conversation in an engagement; its turns form a tree (branches)."""

    __tablename__ = "console_conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("console_engagements.id"), index=True
    )
    expert: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(TextType())
    system_prompt: Mapped[str] = mapped_column(TextType())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TurnRow(Base):
    """One message of a conversation; `parent` is the turn it follows (None for the first), so
    two turns with one parent are two branches. Assistant turns name the target that answered."""

    __tablename__ = "console_turns"
    __table_args__ = (CheckConstraint("role IN ('user', 'assistant')", name="role"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("console_conversations.id"), index=True
    )
    parent_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(ClientText())
    target: Mapped[str | None] = mapped_column(String(100), nullable=True)
    target_model: Mapped[str | None] = mapped_column(TextType(), nullable=True)
    system_prompt: Mapped[str | None] = mapped_column(TextType(), nullable=True)
    latency_ms: Mapped[float] = mapped_column(Double())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsoleFindingRow(Base):
    """An expert's finding on one assistant turn; `version` rises on every edit (optimistic
    concurrency: an edit names the version it started from)."""

    __tablename__ = "console_findings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("console_engagements.id"), index=True
    )
    turn_id: Mapped[str] = mapped_column(String(32), ForeignKey("console_turns.id"), index=True)
    expert: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(100))
    severity: Mapped[int] = mapped_column(Integer())
    technique: Mapped[str] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(ClientText())
    ideal_answer: Mapped[str] = mapped_column(ClientText())
    judge: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FindingEditRow(Base):
    """One change to a finding: who, when, why, and the fields before and after."""

    __tablename__ = "console_finding_edits"

    id: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=True)
    finding_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("console_findings.id"), index=True
    )
    version: Mapped[int] = mapped_column(Integer())
    editor: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(ClientText())
    before: Mapped[dict[str, Any]] = mapped_column(ClientJSON())
    after: Mapped[dict[str, Any]] = mapped_column(ClientJSON())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReviewRow(Base):
    """A second person's review of a finding: agree, adjust (with their own category and
    severity) or reject, always with a reason."""

    __tablename__ = "console_reviews"
    __table_args__ = (
        CheckConstraint("decision IN ('agree', 'adjust', 'reject')", name="decision"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    finding_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("console_findings.id"), index=True
    )
    reviewer: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(100))
    severity: Mapped[int] = mapped_column(Integer())
    reason: Mapped[str] = mapped_column(ClientText())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EnforcementDecisionRow(Base):
    """One enforcement decision (warn, throttle, suspend, lift) on an account: append-only.

    `seq` orders the log; gateways compare the number of rows to notice new decisions.
    """

    __tablename__ = "enforcement_decisions"
    __table_args__ = (
        CheckConstraint("action IN ('warn', 'throttle', 'suspend', 'lift')", name="action"),
    )

    seq: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(TextType())
    reason: Mapped[str] = mapped_column(TextType())
    rule: Mapped[str | None] = mapped_column(TextType())
    shadow: Mapped[bool] = mapped_column(Boolean())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    rate_per_minute: Mapped[int | None] = mapped_column(Integer())
    burst: Mapped[int | None] = mapped_column(Integer())
    schema_version: Mapped[int] = mapped_column(Integer())


class MonitorSecretRow(Base):
    """Secrets monitoring keeps in the store, created once: the end-user hashing key when the
    deployment sets none (SAFESTACK_MONITOR_SECRET)."""

    __tablename__ = "monitor_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RoundRow(Base):
    """One break-fix round of a series (`safestack align round`): the model it started from
    (`parent`), the one it trained (`model`), its training set, and the red-team runs of both."""

    __tablename__ = "rounds"

    series: Mapped[str] = mapped_column(String(100), primary_key=True)
    number: Mapped[int] = mapped_column(Integer(), primary_key=True)
    stage: Mapped[str] = mapped_column(String(32))
    parent: Mapped[str] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    training_set: Mapped[str | None] = mapped_column(String(32), nullable=True)
    training_set_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    runs: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    schema_version: Mapped[int] = mapped_column(Integer())
