"""Measures the corpus filters on the labelled evaluation corpus (`safestack data eval`).

Each filter runs alone over the whole corpus and is scored against the labels it is responsible
for (adult -> adult, harm -> harm:*, aggregator -> aggregator, quality -> spam and non_english),
on the documents labelled `keep` or with one of its labels; then the default chain runs as a whole
and every source group's outcome is tabulated, with the hard cases it got wrong.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from safestack.data import eval_corpus
from safestack.data.document import Document, Removal
from safestack.data.filters.base import filters
from safestack.errors import SafestackError
from safestack.policy import Policy

PIPELINE = ("adult", "quality", "aggregator", "harm")
BATCH = 256


def responsible(filter_name: str, label: str) -> bool:
    """Whether removing a document with `label` is `filter_name`'s job."""
    family = label.split(":", 1)[0]
    return {
        "adult": family == "adult",
        "harm": family == "harm",
        "aggregator": family == "aggregator",
        "quality": family in ("spam", "non_english"),
    }.get(filter_name, False)


@dataclass(frozen=True)
class LabelledDocument:
    document: Document
    label: str
    group: str
    note: str


@dataclass
class FilterScore:
    name: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    seconds: float = 0.0
    documents: int = 0
    recall_by_group: dict[str, tuple[int, int]] = field(default_factory=dict)
    false_positives: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def docs_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0


@dataclass
class EvalReport:
    corpus: str
    policy: str
    documents: int
    filters: dict[str, FilterScore]
    # label family -> outcome ('kept' or the first removing filter) -> count
    confusion: dict[str, Counter[str]]
    # source group -> (label, documents, removed, most common reason)
    groups: dict[str, tuple[str, int, int, str]]
    misclassified: list[tuple[str, str, str, str]]  # (id, group, label, outcome)

    def to_markdown(self) -> str:
        out = [
            f"Corpus `{self.corpus}` ({self.documents} documents), policy `{self.policy}`.",
            "",
            "| filter | precision | recall | F1 | TP | FP | FN | docs/s (wall, incl. first load) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in self.filters.values():
            out.append(
                f"| {s.name} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.tp} | {s.fp} "
                f"| {s.fn} | {s.docs_per_second:,.0f} |"
            )
        outcomes = ["kept", *PIPELINE]
        out += ["", "Whole pipeline (" + " → ".join(PIPELINE) + "): label × outcome", ""]
        out += ["| label | " + " | ".join(outcomes) + " |", "|---" * (len(outcomes) + 1) + "|"]
        for label, counts in sorted(self.confusion.items()):
            out.append(f"| {label} | " + " | ".join(str(counts.get(o, 0)) for o in outcomes) + " |")
        out += ["", "By source group (whole pipeline)", ""]
        out += ["| group | label | documents | removed | main reason |", "|---|---|---|---|---|"]
        for group, (label, n, removed, reason) in sorted(self.groups.items()):
            out.append(f"| {group} | {label} | {n} | {removed} | {reason or '-'} |")
        out += ["", f"Misclassified documents: {len(self.misclassified)}", ""]
        if self.misclassified:
            out += ["| id | group | label | outcome |", "|---|---|---|---|"]
            out += [f"| {i} | {g} | {lab} | {o} |" for i, g, lab, o in self.misclassified[:60]]
        return "\n".join(out) + "\n"


def load_corpus(path: Path) -> list[LabelledDocument]:
    docs = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SafestackError(f"cannot read the evaluation corpus {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
            document = Document(
                id=row["id"], text=row["text"], url=row.get("url"), source=f"{path}:{number}"
            )
            docs.append(
                LabelledDocument(document, row["label"], row["source"], row.get("note", ""))
            )
        except (ValueError, KeyError) as exc:
            raise SafestackError(f"{path}:{number}: not a corpus record ({exc})") from exc
    return docs


def _run(name: str, policy: Policy, docs: Sequence[Document]) -> tuple[list[Removal | None], float]:
    from safestack.data.filters import harm

    instance = filters.get(name)(policy)
    harm._cache.clear()  # each filter pays for its own embeddings in the timing
    started = time.perf_counter()
    out: list[Removal | None] = []
    for begin in range(0, len(docs), BATCH):
        out.extend(instance.apply(docs[begin : begin + BATCH]))
    return out, time.perf_counter() - started


def _copy(doc: Document) -> Document:
    return Document(id=doc.id, text=doc.text, url=doc.url, metadata={}, source=doc.source)


def evaluate_filters(policy: Policy, corpus_path: Path | None = None) -> EvalReport:
    """Run each filter alone, then the default chain, over the labelled corpus."""
    path = corpus_path or eval_corpus.corpus_path()
    corpus = load_corpus(path)
    scores: dict[str, FilterScore] = {}
    for name in PIPELINE:
        removals, seconds = _run(name, policy, [_copy(d.document) for d in corpus])
        score = scores[name] = FilterScore(name, seconds=seconds, documents=len(corpus))
        for item, removal in zip(corpus, removals, strict=True):
            positive = responsible(name, item.label)
            if not positive and item.label != "keep":
                continue  # another filter's job: neither credit nor blame
            hit = removal is not None
            score.tp += positive and hit
            score.fn += positive and not hit
            score.fp += (not positive) and hit
            score.tn += not positive and not hit
            if positive:
                found, total = score.recall_by_group.get(item.group, (0, 0))
                score.recall_by_group[item.group] = (found + hit, total + 1)
            elif hit and removal is not None:
                score.false_positives.append(f"{item.document.id}: {removal.reason}")
    outcome = ["kept"] * len(corpus)
    reasons: list[str] = [""] * len(corpus)
    alive = list(range(len(corpus)))
    for name in PIPELINE:
        removals, _ = _run(name, policy, [_copy(corpus[i].document) for i in alive])
        survivors = []
        for index, removal in zip(alive, removals, strict=True):
            if removal is None:
                survivors.append(index)
            else:
                outcome[index], reasons[index] = name, removal.reason
        alive = survivors
    confusion: dict[str, Counter[str]] = {}
    groups: dict[str, list[int]] = {}
    misclassified = []
    for index, item in enumerate(corpus):
        family = item.label.split(":", 1)[0]
        confusion.setdefault(family, Counter())[outcome[index]] += 1
        groups.setdefault(item.group, []).append(index)
        wrong = (item.label == "keep") != (outcome[index] == "kept")
        if wrong:
            shown = reasons[index] or "kept"
            misclassified.append((item.document.id, item.group, item.label, shown))
    table = {}
    for group, members in groups.items():
        removed = [reasons[i] for i in members if reasons[i]]
        common = Counter(removed).most_common(1)
        table[group] = (
            corpus[members[0]].label,
            len(members),
            len(removed),
            common[0][0] if common else "",
        )
    return EvalReport(
        corpus=path.name,
        policy=policy.ref,
        documents=len(corpus),
        filters=scores,
        confusion=confusion,
        groups=table,
        misclassified=misclassified,
    )


def measure_throughput(
    policy: Policy, documents: Sequence[Document], names: Sequence[str] = PIPELINE
) -> dict[str, float]:
    """Documents per CPU-second (per core) for each filter alone and for the chain ('chain').

    CPU time of this process, not wall time, so a busy machine does not skew the figure. Models
    and lists are loaded before the clock starts; the shared harm-score cache is cleared between
    runs, so each filter pays for its own embeddings."""
    from safestack.data.filters import harm

    instances = {name: filters.get(name)(policy) for name in names}
    for instance in instances.values():
        instance.apply([_copy(documents[0])])
    rates: dict[str, float] = {}
    for name, instance in instances.items():
        harm._cache.clear()
        batch = [_copy(d) for d in documents]
        started = time.process_time()
        for begin in range(0, len(batch), BATCH):
            instance.apply(batch[begin : begin + BATCH])
        rates[name] = len(batch) / (time.process_time() - started)
    harm._cache.clear()
    alive = [_copy(d) for d in documents]
    started = time.process_time()
    for begin in range(0, len(alive), BATCH):
        batch = alive[begin : begin + BATCH]
        for instance in instances.values():
            removals = instance.apply(batch)
            batch = [d for d, r in zip(batch, removals, strict=True) if r is None]
    rates["chain"] = len(alive) / (time.process_time() - started)
    return rates
