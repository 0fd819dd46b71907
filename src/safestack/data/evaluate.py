"""Measures the corpus filters on a labelled corpus (`safestack data eval`): the held-out one
(`eval_heldout`, the model card's numbers) or the tuning one (`eval_corpus`, optimistic).

Each filter runs alone over the whole corpus and is scored against the labels it is responsible
for (adult -> adult, harm -> harm:*, aggregator -> aggregator, quality -> spam and non_english),
on the documents labelled `keep` or with one of its labels; then the default chain runs as a whole
and every source group's outcome is tabulated, with the documents it got wrong. Rates carry Wilson
95% intervals; F1 a bootstrap one.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from safestack.data import eval_corpus, eval_heldout
from safestack.data.document import Document, Removal
from safestack.data.filters.base import filters
from safestack.data.filters.models import FilterModels, build_filter
from safestack.errors import SafestackError
from safestack.policy import Policy
from safestack.stats import wilson_interval

PIPELINE = ("adult", "quality", "aggregator", "harm")
BATCH = 256
BOOTSTRAP = 2000


def interval_text(bounds: tuple[float, float]) -> str:
    return f"[{bounds[0]:.2f}, {bounds[1]:.2f}]"


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
    # keep-labelled source group -> (removed, documents): this filter's false positives by source
    keep_removed_by_group: dict[str, tuple[int, int]] = field(default_factory=dict)
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
    def precision_interval(self) -> tuple[float, float]:
        return wilson_interval(self.tp, self.tp + self.fp)

    @property
    def recall_interval(self) -> tuple[float, float]:
        return wilson_interval(self.tp, self.tp + self.fn)

    @property
    def f1_interval(self) -> tuple[float, float]:
        """Percentile bootstrap over documents (F1 is not a proportion, so no Wilson interval);
        seeded, so a report is reproducible."""
        n = self.tp + self.fp + self.fn + self.tn
        if n == 0:
            return 0.0, 1.0
        draws = np.random.default_rng(1927).multinomial(
            n, np.array([self.tp, self.fp, self.fn, self.tn]) / n, size=BOOTSTRAP
        )
        tp, fp, fn = draws[:, 0], draws[:, 1], draws[:, 2]
        f1 = np.divide(
            2 * tp, 2 * tp + fp + fn, out=np.zeros(BOOTSTRAP), where=2 * tp + fp + fn > 0
        )
        low, high = np.percentile(f1, [2.5, 97.5])
        return float(low), float(high)

    @property
    def docs_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Misclassified:
    """A document the whole pipeline got wrong: a `keep` removed, or another label kept."""

    id: str
    group: str
    label: str
    outcome: str  # the removing reason code, or 'kept'
    note: str


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
    misclassified: list[Misclassified]
    split: str = "tuning"
    # the chain as one remover: positive = any label but keep, hit = removed by any filter
    pipeline: FilterScore = field(default_factory=lambda: FilterScore("pipeline"))

    def to_markdown(self) -> str:
        out = [
            f"Corpus `{self.corpus}` ({self.split} split, {self.documents} documents), "
            f"policy `{self.policy}`. Intervals: Wilson 95% (precision, recall, rates), "
            f"bootstrap 95% (F1).",
            "",
            "| filter | precision | recall | F1 | TP | FP | FN | docs/s (wall, incl. first load) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in [*self.filters.values(), self.pipeline]:
            out.append(
                f"| {s.name} | {s.precision:.3f} {interval_text(s.precision_interval)} "
                f"| {s.recall:.3f} {interval_text(s.recall_interval)} "
                f"| {s.f1:.3f} {interval_text(s.f1_interval)} | {s.tp} | {s.fp} | {s.fn} "
                f"| {f'{s.docs_per_second:,.0f}' if s.seconds else '-'} |"
            )
        out += ["", "Each filter alone, by source: its own sources (recall) and `keep` sources it"]
        out += ["removed from (false positives)", ""]
        out += ["| filter | source | documents | removed | rate |", "|---|---|---|---|---|"]
        for s in self.filters.values():
            rows = sorted(s.recall_by_group.items()) + sorted(
                (g, v) for g, v in s.keep_removed_by_group.items() if v[0]
            )
            for group, (hit, n) in rows:
                rate = f"{hit / n:.2f} {interval_text(wilson_interval(hit, n))}"
                out.append(f"| {s.name} | {group} | {n} | {hit} | {rate} |")
        outcomes = ["kept", *PIPELINE]
        out += ["", "Whole pipeline (" + " → ".join(PIPELINE) + "): label × outcome", ""]
        out += ["| label | " + " | ".join(outcomes) + " |", "|---" * (len(outcomes) + 1) + "|"]
        for label, counts in sorted(self.confusion.items()):
            out.append(f"| {label} | " + " | ".join(str(counts.get(o, 0)) for o in outcomes) + " |")
        out += ["", "By source group (whole pipeline)", ""]
        out += ["| group | label | documents | removed | removed share | main reason |"]
        out += ["|---|---|---|---|---|---|"]
        for group, (label, n, removed, reason) in sorted(self.groups.items()):
            share = f"{removed / n:.2f} {interval_text(wilson_interval(removed, n))}"
            out.append(f"| {group} | {label} | {n} | {removed} | {share} | {reason or '-'} |")
        out += ["", f"Misclassified documents: {len(self.misclassified)}", ""]
        if self.misclassified:
            out += ["| id | label | outcome | note |", "|---|---|---|---|"]
            out += [f"| {m.id} | {m.label} | {m.outcome} | {m.note} |" for m in self.misclassified]
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


def _run(
    name: str, policy: Policy, docs: Sequence[Document], models: FilterModels
) -> tuple[list[Removal | None], float]:
    instance = build_filter(filters.get(name), policy, None, models)
    models.scorer.clear()  # each filter pays for its own embeddings in the timing
    started = time.perf_counter()
    out: list[Removal | None] = []
    for begin in range(0, len(docs), BATCH):
        out.extend(instance.apply(docs[begin : begin + BATCH]))
    return out, time.perf_counter() - started


def _copy(doc: Document) -> Document:
    return Document(id=doc.id, text=doc.text, url=doc.url, metadata={}, source=doc.source)


def evaluate_heldout(policy: Policy, *, models: FilterModels | None = None) -> EvalReport:
    """The held-out measurement (`assets/eval/heldout.jsonl`): the numbers for the model card."""
    return evaluate_filters(policy, eval_heldout.heldout_path(), split="held-out", models=models)


def evaluate_filters(
    policy: Policy,
    corpus_path: Path | None = None,
    *,
    split: str | None = None,
    models: FilterModels | None = None,
) -> EvalReport:
    """Run each filter alone, then the default chain, over a labelled corpus (by default the
    tuning corpus, whose numbers are optimistic: its scores set the thresholds). `models`: the
    caller's filter models (new ones by default)."""
    path = corpus_path or eval_corpus.corpus_path()
    corpus = load_corpus(path)
    models = models if models is not None else FilterModels()
    scores: dict[str, FilterScore] = {}
    for name in PIPELINE:
        removals, seconds = _run(name, policy, [_copy(d.document) for d in corpus], models)
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
            by_group = score.recall_by_group if positive else score.keep_removed_by_group
            found, total = by_group.get(item.group, (0, 0))
            by_group[item.group] = (found + hit, total + 1)
            if not positive and removal is not None:
                score.false_positives.append(f"{item.document.id}: {removal.reason}")
    outcome = ["kept"] * len(corpus)
    reasons: list[str] = [""] * len(corpus)
    alive = list(range(len(corpus)))
    for name in PIPELINE:
        removals, _ = _run(name, policy, [_copy(corpus[i].document) for i in alive], models)
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
    pipeline = FilterScore("pipeline")
    for index, item in enumerate(corpus):
        family = item.label.split(":", 1)[0]
        confusion.setdefault(family, Counter())[outcome[index]] += 1
        groups.setdefault(item.group, []).append(index)
        positive, hit = item.label != "keep", outcome[index] != "kept"
        pipeline.tp += positive and hit
        pipeline.fn += positive and not hit
        pipeline.fp += (not positive) and hit
        pipeline.tn += not positive and not hit
        if positive != hit:
            shown = reasons[index] or "kept"
            misclassified.append(
                Misclassified(item.document.id, item.group, item.label, shown, item.note)
            )
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
        split=split or ("tuning" if corpus_path is None else path.stem),
        pipeline=pipeline,
    )


def measure_throughput(
    policy: Policy, documents: Sequence[Document], names: Sequence[str] = PIPELINE
) -> dict[str, float]:
    """Documents per CPU-second (per core) for each filter alone and for the chain ('chain').

    CPU time of this process, not wall time, so a busy machine does not skew the figure. Models
    and lists are loaded before the clock starts; the shared document scorer's kept scores are cleared between
    runs, so each filter pays for its own embeddings."""
    models = FilterModels()
    instances = {name: build_filter(filters.get(name), policy, None, models) for name in names}
    for instance in instances.values():
        instance.apply([_copy(documents[0])])
    rates: dict[str, float] = {}
    for name, instance in instances.items():
        models.scorer.clear()
        batch = [_copy(d) for d in documents]
        started = time.process_time()
        for begin in range(0, len(batch), BATCH):
            instance.apply(batch[begin : begin + BATCH])
        rates[name] = len(batch) / (time.process_time() - started)
    models.scorer.clear()
    alive = [_copy(d) for d in documents]
    started = time.process_time()
    for begin in range(0, len(alive), BATCH):
        batch = alive[begin : begin + BATCH]
        for instance in instances.values():
            removals = instance.apply(batch)
            batch = [d for d, r in zip(batch, removals, strict=True) if r is None]
    rates["chain"] = len(alive) / (time.process_time() - started)
    return rates
