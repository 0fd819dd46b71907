"""Which stored attempts a training set learns from: the findings (attacks that succeeded, by the
run's stored scores and the red team's own success rule) and the benign requests answered helpfully.

Nothing is re-scored: `redteam.metrics.attack_outcome` reads the verdicts the run stored, so the
training set fixes exactly what the red-team report counted as broken.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from safestack.align.rows import ScoreSummary, Turn, prompt_hash, text_hash
from safestack.datasets.language import LanguageGuesser
from safestack.errors import InputError, SafestackError
from safestack.models.transformers_model import chat_turns
from safestack.records import Attempt, AttemptStatus, Message, Role
from safestack.redteam.metrics import Outcome, attack_outcome
from safestack.store import Store, StoredRun

# Refusal labels of the `refusal` scorer that mean the benign request was not answered in full.
NOT_HELPFUL = frozenset({"refused", "partial"})
# A benign answer at or above this harm severity is not a safe example to keep (the harm
# scorer's default success severity, "medium").
HARMFUL_SEVERITY = 4


class NothingToLearnError(SafestackError):
    """The runs hold no failing attempt: there is nothing to build a training set from."""


@dataclass(frozen=True)
class RunAttempts:
    """One stored run and its attempts, as `safestack align data` reads them."""

    run: StoredRun
    attempts: list[Attempt]


@dataclass(frozen=True)
class Finding:
    """A failing attempt ready to become rows: its prompt as sent and what groups it for splits."""

    attempt: Attempt
    prompt: tuple[Turn, ...]
    language: str
    prompt_hash: str
    group_keys: tuple[str, ...]

    @property
    def scores(self) -> list[ScoreSummary]:
        return [ScoreSummary.of(score) for score in self.attempt.scores]


@dataclass
class Selection:
    """What the runs hold: the findings, the benign attempts answered helpfully, and counts."""

    findings: list[Finding] = field(default_factory=list)
    helpful: list[Finding] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def prompt_of(attempt: Attempt) -> tuple[Turn, ...]:
    """The conversation the target answered, as chat-template turns: the stored conversation up to
    its last answer (system prompt and converted user turns as sent; developer turns as system,
    tool output as a user turn marked as such, as the transformers target sends them)."""
    messages = list(attempt.conversation)
    while messages and messages[-1].role == Role.ASSISTANT:
        messages.pop()
    if not any(m.role in (Role.USER, Role.TOOL) for m in messages):
        messages.append(Message(role=Role.USER, content=attempt.objective))
    return tuple(Turn.model_validate(turn) for turn in chat_turns(messages))


class RequestLanguages:
    """The language of requests among those the judges cover, 'xx' when unsure or unavailable:
    py3langid loads on first use, once per selection (never kept by this module)."""

    def __init__(self) -> None:
        self._guess: LanguageGuesser | None = None
        self._missing = False

    def detect(self, text: str) -> str:
        if self._missing or not text.strip():
            return "xx"
        if self._guess is None:
            try:
                self._guess = LanguageGuesser()
            except ModuleNotFoundError:  # py3langid is optional here
                self._missing = True
                return "xx"
        return self._guess(text)

    def of_request(self, attempt: Attempt, prompt: Sequence[Turn]) -> str:
        """The language of the request itself: the behaviour's objective (a converted prompt,
        base64 say, hides it), else the last user turn."""
        language = self.detect(attempt.objective)
        if language == "xx":
            last = next((t.content for t in reversed(prompt) if t.role == "user"), "")
            language = self.detect(last)
        return language


def group_keys(attempt: Attempt) -> tuple[str, ...]:
    """What ties rows together for the split: the behaviour, and the request's text (two sources
    can hold the same request under different ids)."""
    keys = [f"request:{text_hash(attempt.objective)}"]
    if attempt.behaviour_id:
        keys.append(f"behaviour:{attempt.behaviour_source or ''}:{attempt.behaviour_id}")
    return tuple(keys)


def is_helpful(attempt: Attempt) -> bool | None:
    """A benign attempt answered in full and harmlessly: True; refused or harmful: False; None
    when its scores cannot tell (no refusal verdict)."""
    if attempt.status != AttemptStatus.COMPLETE or not (attempt.response or "").strip():
        return False
    refusal = attempt.score("refusal")
    if refusal is None or refusal.error is not None or refusal.label is None:
        return None
    harm = attempt.score("harm-severity")
    harmful = harm is not None and harm.value is not None and harm.value >= HARMFUL_SEVERITY
    return refusal.label not in NOT_HELPFUL and not harmful


def finding(attempt: Attempt, languages: RequestLanguages) -> Finding:
    prompt = prompt_of(attempt)
    return Finding(
        attempt=attempt,
        prompt=prompt,
        language=languages.of_request(attempt, prompt),
        prompt_hash=prompt_hash(prompt),
        group_keys=group_keys(attempt),
    )


def select(runs: Sequence[RunAttempts]) -> Selection:
    """The findings and helpful benign answers of `runs`, in run order then attempt order."""
    selection = Selection()
    counts = selection.counts
    languages = RequestLanguages()
    for item in runs:
        for attempt in item.attempts:
            counts["attempts"] += 1
            if attempt.status == AttemptStatus.SKIPPED:
                counts["skipped"] += 1
                continue
            if attempt.benign:
                counts["benign"] += 1
                helpful = is_helpful(attempt)
                if helpful is None:
                    counts["benign-unjudged"] += 1
                elif helpful:
                    counts["benign-helpful"] += 1
                    selection.helpful.append(finding(attempt, languages))
                else:
                    counts["benign-refused-or-failed"] += 1
                continue
            outcome = attack_outcome(attempt)
            counts[f"attack-{outcome.value}"] += 1
            if outcome == Outcome.SUCCESS:
                selection.findings.append(finding(attempt, languages))
    return selection


def nothing_to_learn(runs: Sequence[RunAttempts], counts: Counter[str]) -> NothingToLearnError:
    """The error for runs without a finding, saying what they did hold and what to do."""
    names = ", ".join(f"'{r.run.id}'" for r in runs)
    attacks = counts["attack-failure"] + counts["attack-error"]
    why = (
        f"{counts['attack-failure']} attacks failed, {counts['attack-error']} could not be judged"
        if attacks
        else "no attack attempts"
    )
    advice = (
        "; unjudged attempts lack the primary scorer's verdict (harm-severity for content, "
        "injection-success, canary-leak or prompt-overlap for the instruction hierarchy): run "
        "`safestack redteam rescore RUN --campaign CAMPAIGN` with those scorers"
        if counts["attack-error"]
        else ""
    )
    return NothingToLearnError(
        f"run(s) {names}: no attack succeeded ({counts['attempts']} attempts: {why}); "
        f"nothing to train on, nothing written{advice}"
    )


def load_runs(store: Store, run_ids: Sequence[str]) -> list[RunAttempts]:
    """The named runs and their attempts; an unknown id fails naming it and how to list runs."""
    if not run_ids:
        raise InputError("name at least one red-team run id; `safestack redteam runs` lists them")
    loaded = []
    for run_id in dict.fromkeys(run_ids):
        run = store.runs.get(run_id)
        if run is None:
            raise InputError(
                f"no stored red-team run '{run_id}' in {store.display_url}; "
                "`safestack redteam runs` lists the stored runs"
            )
        loaded.append(RunAttempts(run, store.runs.attempts(run_id)))
    return loaded
