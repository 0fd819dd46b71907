"""The console's records: engagements, conversations (turns in a tree: a turn names its parent,
so two turns with one parent are two branches), experts' findings with their edit history, and
reviews. `store.console` reads and writes them; the console app (`safestack.console`) is the
only writer.

Edits use optimistic concurrency: an edit names the version it started from, and one that
started from an older version raises `EditConflict` holding the finding as it is now, so the
second editor sees both and nothing is lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from safestack.errors import InputError, SafestackError
from safestack.store.database import Database
from safestack.store.tables import (
    ConsoleFindingRow,
    ConversationRow,
    EngagementRow,
    FindingEditRow,
    ReviewRow,
    TurnRow,
)

Decision = Literal["agree", "adjust", "reject"]
DECISIONS: tuple[Decision, ...] = ("agree", "adjust", "reject")
FindingStatus = Literal["open", "agreed", "adjusted", "rejected"]
STATUS_OF: dict[Decision, FindingStatus] = {
    "agree": "agreed",
    "adjust": "adjusted",
    "reject": "rejected",
}
# The fields of a finding an edit may change (the rest say where it was found and by whom).
EDITABLE = ("category", "severity", "technique", "language", "note", "ideal_answer")


def new_id() -> str:
    return uuid.uuid4().hex


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", from_attributes=True)


class Engagement(_Record):
    id: str
    name: str
    description: str
    targets: list[str]
    policy: str = Field(description="The policy's name@version the findings are scored under.")
    categories: list[str]
    languages: list[str]
    starts_on: datetime | None
    ends_on: datetime | None
    experts: list[str] = Field(description="API key ids of the invited experts.")
    created_by: str
    created_at: datetime


class Conversation(_Record):
    id: str
    engagement_id: str
    expert: str
    title: str
    system_prompt: str
    created_at: datetime


class Turn(_Record):
    id: str
    conversation_id: str
    parent_id: str | None
    role: Literal["user", "assistant"]
    content: str
    target: str | None
    target_model: str | None
    system_prompt: str | None
    latency_ms: float
    created_at: datetime


class ExpertFinding(_Record):
    """An expert's finding on one assistant turn, with the judges' verdicts beside it."""

    id: str
    engagement_id: str
    turn_id: str
    expert: str
    target: str
    category: str
    severity: int = Field(ge=0, le=7)
    technique: str
    language: str
    note: str
    ideal_answer: str
    judge: dict[str, Any]
    status: FindingStatus
    version: int
    created_at: datetime
    updated_at: datetime

    def editable(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in EDITABLE}


class FindingEdit(_Record):
    id: int
    finding_id: str
    version: int = Field(description="The version this edit made.")
    editor: str
    reason: str
    before: dict[str, Any]
    after: dict[str, Any]
    created_at: datetime


class Review(_Record):
    id: str
    finding_id: str
    reviewer: str
    decision: Decision
    category: str
    severity: int
    reason: str
    created_at: datetime


class EditConflict(SafestackError):
    """An edit started from an older version of the finding; `current` is the finding now."""

    def __init__(self, current: ExpertFinding, attempted: Mapping[str, Any], base: int) -> None:
        self.current = current
        self.attempted = dict(attempted)
        self.base = base
        super().__init__(
            f"finding {current.id} changed since you opened it (you edited version {base}, it is "
            f"now version {current.version}); your changes were not saved: compare both and "
            "save again"
        )


class ConsoleRecords:
    """The console_* tables: `store.console`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- engagements ---------------------------------------------------------------------------
    def create_engagement(self, **fields: Any) -> Engagement:
        row = EngagementRow(id=new_id(), created_at=datetime.now(UTC), **fields)
        with self._database.transaction("creating an engagement") as session:
            session.add(row)
            session.flush()
            return Engagement.model_validate(row)

    def engagement(self, engagement_id: str) -> Engagement | None:
        with self._database.transaction("reading an engagement") as session:
            row = session.get(EngagementRow, engagement_id)
            return None if row is None else Engagement.model_validate(row)

    def engagements(self) -> list[Engagement]:
        """Every engagement, newest first."""
        with self._database.transaction("listing engagements") as session:
            rows = session.scalars(select(EngagementRow).order_by(EngagementRow.created_at.desc()))
            return [Engagement.model_validate(row) for row in rows]

    # -- conversations and turns ---------------------------------------------------------------
    def create_conversation(
        self, engagement_id: str, expert: str, title: str, system_prompt: str
    ) -> Conversation:
        row = ConversationRow(
            id=new_id(),
            engagement_id=engagement_id,
            expert=expert,
            title=title,
            system_prompt=system_prompt,
            created_at=datetime.now(UTC),
        )
        with self._database.transaction("creating a conversation") as session:
            session.add(row)
            session.flush()
            return Conversation.model_validate(row)

    def conversation(self, conversation_id: str) -> Conversation | None:
        with self._database.transaction("reading a conversation") as session:
            row = session.get(ConversationRow, conversation_id)
            return None if row is None else Conversation.model_validate(row)

    def conversations(self, engagement_id: str, expert: str | None = None) -> list[Conversation]:
        """An engagement's conversations (one expert's, when named), oldest first."""
        query = select(ConversationRow).where(ConversationRow.engagement_id == engagement_id)
        if expert is not None:
            query = query.where(ConversationRow.expert == expert)
        with self._database.transaction("listing conversations") as session:
            rows = session.scalars(query.order_by(ConversationRow.created_at))
            return [Conversation.model_validate(row) for row in rows]

    def add_turn(
        self,
        conversation_id: str,
        parent_id: str | None,
        role: Literal["user", "assistant"],
        content: str,
        *,
        target: str | None = None,
        target_model: str | None = None,
        system_prompt: str | None = None,
        latency_ms: float = 0.0,
    ) -> Turn:
        """Store one turn after `parent_id`; the parent must be a turn of the same conversation."""
        row = TurnRow(
            id=new_id(),
            conversation_id=conversation_id,
            parent_id=parent_id,
            role=role,
            content=content,
            target=target,
            target_model=target_model,
            system_prompt=system_prompt,
            latency_ms=latency_ms,
            created_at=datetime.now(UTC),
        )
        with self._database.transaction("recording a turn", write_first=True) as session:
            if parent_id is not None:
                parent = session.get(TurnRow, parent_id)
                if parent is None or parent.conversation_id != conversation_id:
                    raise InputError(f"turn {parent_id} is not in conversation {conversation_id}")
            session.add(row)
            session.flush()
            return Turn.model_validate(row)

    def turn(self, turn_id: str) -> Turn | None:
        with self._database.transaction("reading a turn") as session:
            row = session.get(TurnRow, turn_id)
            return None if row is None else Turn.model_validate(row)

    def turns(self, conversation_id: str) -> list[Turn]:
        """Every turn of the conversation (all branches), oldest first."""
        query = (
            select(TurnRow)
            .where(TurnRow.conversation_id == conversation_id)
            .order_by(TurnRow.created_at, TurnRow.id)
        )
        with self._database.transaction("reading turns") as session:
            return [Turn.model_validate(row) for row in session.scalars(query)]

    # -- findings ------------------------------------------------------------------------------
    def create_finding(self, **fields: Any) -> ExpertFinding:
        now = datetime.now(UTC)
        row = ConsoleFindingRow(
            id=new_id(), status="open", version=1, created_at=now, updated_at=now, **fields
        )
        with self._database.transaction("recording a finding") as session:
            session.add(row)
            session.flush()
            return ExpertFinding.model_validate(row)

    def finding(self, finding_id: str) -> ExpertFinding | None:
        with self._database.transaction("reading a finding") as session:
            row = session.get(ConsoleFindingRow, finding_id)
            return None if row is None else ExpertFinding.model_validate(row)

    def findings(self, engagement_id: str) -> list[ExpertFinding]:
        query = (
            select(ConsoleFindingRow)
            .where(ConsoleFindingRow.engagement_id == engagement_id)
            .order_by(ConsoleFindingRow.created_at, ConsoleFindingRow.id)
        )
        with self._database.transaction("listing findings") as session:
            return [ExpertFinding.model_validate(row) for row in session.scalars(query)]

    def edit_finding(
        self,
        finding_id: str,
        base_version: int,
        changes: Mapping[str, Any],
        *,
        editor: str,
        reason: str,
        status: FindingStatus | None = None,
    ) -> ExpertFinding:
        """Apply `changes` (fields of EDITABLE) to the finding at `base_version`; the version rises
        by one and the edit (who, when, why, before, after) is kept. A finding changed since
        `base_version` raises EditConflict and changes nothing."""
        unknown = sorted(set(changes) - set(EDITABLE))
        if unknown:
            raise InputError(f"a finding has no editable field {', '.join(unknown)}")
        if not reason.strip():
            raise InputError("say why you edit the finding (reason)", field="reason")
        with self._database.transaction("editing a finding", write_first=True) as session:
            return self._edit(session, finding_id, base_version, changes, editor, reason, status)

    def _edit(
        self,
        session: Session,
        finding_id: str,
        base_version: int,
        changes: Mapping[str, Any],
        editor: str,
        reason: str,
        status: FindingStatus | None,
    ) -> ExpertFinding:
        now = datetime.now(UTC)
        values: dict[str, Any] = {**changes, "version": base_version + 1, "updated_at": now}
        if status is not None:
            values["status"] = status
        row = session.get(ConsoleFindingRow, finding_id)
        if row is None:
            raise InputError(f"no finding {finding_id}")
        before = ExpertFinding.model_validate(row)
        # The version check and the write are one statement: of two concurrent edits from
        # the same version exactly one matches a row.
        done = session.execute(
            update(ConsoleFindingRow)
            .where(
                ConsoleFindingRow.id == finding_id,
                ConsoleFindingRow.version == base_version,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise EditConflict(before, changes, base_version)
        old = before.editable() | {"status": before.status}
        session.add(
            FindingEditRow(
                finding_id=finding_id,
                version=base_version + 1,
                editor=editor,
                reason=reason,
                before=old,
                after=old | dict(changes) | ({"status": status} if status else {}),
                created_at=now,
            )
        )
        session.expire(row)
        return ExpertFinding.model_validate(session.get(ConsoleFindingRow, finding_id))

    def edits(self, finding_id: str) -> list[FindingEdit]:
        query = (
            select(FindingEditRow)
            .where(FindingEditRow.finding_id == finding_id)
            .order_by(FindingEditRow.id)
        )
        with self._database.transaction("reading a finding's edits") as session:
            return [FindingEdit.model_validate(row) for row in session.scalars(query)]

    # -- reviews -------------------------------------------------------------------------------
    def review(
        self,
        finding: ExpertFinding,
        reviewer: str,
        decision: Decision,
        reason: str,
        *,
        category: str | None = None,
        severity: int | None = None,
    ) -> tuple[Review, ExpertFinding]:
        """Record a review and set the finding's status from it (an edit with the reason);
        'adjust' keeps the reviewer's category and severity on the review, beside the expert's."""
        if not reason.strip():
            raise InputError("a review needs a reason", field="reason")
        row = ReviewRow(
            id=new_id(),
            finding_id=finding.id,
            reviewer=reviewer,
            decision=decision,
            category=category if decision == "adjust" and category else finding.category,
            severity=severity
            if decision == "adjust" and severity is not None
            else finding.severity,
            reason=reason,
            created_at=datetime.now(UTC),
        )
        with self._database.transaction("recording a review", write_first=True) as session:
            updated = self._edit(
                session,
                finding.id,
                finding.version,
                {},
                reviewer,
                f"review: {decision}: {reason}",
                STATUS_OF[decision],
            )
            session.add(row)
            session.flush()
            return Review.model_validate(row), updated

    def reviews(self, engagement_id: str) -> list[Review]:
        """Every review of the engagement's findings, oldest first."""
        query = (
            select(ReviewRow)
            .join(ConsoleFindingRow, ConsoleFindingRow.id == ReviewRow.finding_id)
            .where(ConsoleFindingRow.engagement_id == engagement_id)
            .order_by(ReviewRow.created_at, ReviewRow.id)
        )
        with self._database.transaction("listing reviews") as session:
            return [Review.model_validate(row) for row in session.scalars(query)]
