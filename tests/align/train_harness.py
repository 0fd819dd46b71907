"""A tiny Gemma-shaped model and a training set from the align builders, for the training tests.

The model has 2 layers of width 32 and a word-level tokenizer over the set's own words plus
Gemma's special tokens (<bos>, <eos>, <pad>, <start_of_turn>, <end_of_turn>) and no chat template:
training must give it Gemma's. It trains a step in well under a second on one core.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from safestack.align import (
    BuildOptions,
    TemplateWriter,
    build_training_set,
    load_runs,
    write_training_set,
)
from safestack.policy import default_policy
from safestack.store import Store

SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
WORD = re.compile(r"\w+|[^\w\s]")


def write_set(store: Store, out: Path) -> Path:
    """The harness run's findings as a training set (`align data`), written to `out`."""
    options = BuildOptions(
        retain_ratio=1.0, validation_ratio=0.34, retain_sources=("run", "borderline"), seed=0
    )
    training_set = build_training_set(
        load_runs(store, ["r1"]), default_policy(), TemplateWriter(), options
    )
    write_training_set(training_set, out)
    return out


def words(directory: Path) -> list[str]:
    counts: Counter[str] = Counter()
    for path in sorted(directory.rglob("*.jsonl")):
        counts.update(WORD.findall(path.read_text("utf-8")))
    return [word for word, _ in counts.most_common(3000)]


def tiny_tokenizer(vocabulary: list[str], *, gemma_tokens: bool = True) -> Any:
    """A word-level tokenizer over `vocabulary` with Gemma's special tokens, no chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    special = SPECIAL if gemma_tokens else SPECIAL[:4]
    vocab = {token: index for index, token in enumerate(special)}
    for word in vocabulary:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=special[4:],
    )


def tiny_model(out: Path, vocabulary: list[str], *, gemma_tokens: bool = True) -> Path:
    """Save a 2-layer Gemma 3 model and its tokenizer (no chat template) to `out`."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tokenizer = tiny_tokenizer(vocabulary, gemma_tokens=gemma_tokens)
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        sliding_window=64,
        layer_types=["sliding_attention", "full_attention"],
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    model = Gemma3ForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]
