"""Model-card metrics from the shipped heads: held-out by source, per tier and for the cascade.

Every number here is measured on sources the heads were not trained on (see `dataset.HELD_OUT`),
plus the synthetic benign-but-edgy holdout, which no head saw either. `safestack models eval`
prints these; `safestack models build` writes them into docs/models/.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from safestack.judge.builtin.cascade import uncertain
from safestack.judge.builtin.heads import Head, Matrix
from safestack.training.dataset import split_by_source
from safestack.datasets.examples import TASKS, Example, Task
from safestack.training.train import EmbeddingCache, targets

DEFAULT_BAND = (0.05, 0.95)  # the detectors' default; see the sweep in each card
BAND_SWEEP = ((0.2, 0.8), (0.1, 0.9), (0.05, 0.95), (0.02, 0.98))
ATTACK_FPR_BUDGET = 0.02  # issue target: detection at 2% false positives
ECE_BINS = 10


def load_heads(task: Task) -> dict[str, Head]:
    from safestack.judge.builtin.cascade import load_heads as shipped

    return {str(tier): head for tier, head in shipped(task).items()}


def tier_probs(
    heads: dict[str, Head], cache: EmbeddingCache, texts: Sequence[str], band: tuple[float, float]
) -> tuple[dict[str, Matrix], float]:
    """Probabilities per tier, and the cascade's (with its escalation rate)."""
    fast = heads["fast"].predict(cache.embed("fast", texts))
    accurate = heads["accurate"].predict(cache.embed("accurate", texts))
    reportable = [
        i for i, label in enumerate(heads["fast"].labels) if label not in ("benign", "none")
    ]
    unsure: NDArray[np.bool_] = uncertain(fast, reportable, band, texts)
    cascade = np.where(unsure[:, None], accurate, fast)
    return {"fast": fast, "accurate": accurate, "cascade": cascade}, float(unsure.mean()) if len(
        texts
    ) else 0.0


def _prf(y: NDArray[Any], pred: NDArray[Any]) -> dict[str, float]:
    tp = int((y & pred).sum())
    fp = int((~y & pred).sum())
    fn = int((y & ~pred).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "support": int(y.sum()),
    }


def expected_calibration_error(probs: NDArray[Any], y: NDArray[Any]) -> float:
    """ECE with equal-width bins (Guo et al. 2017): |accuracy - confidence| weighted by bin size."""
    if len(probs) == 0:
        return 0.0
    bins = np.minimum((probs * ECE_BINS).astype(int), ECE_BINS - 1)
    total = 0.0
    for b in range(ECE_BINS):
        mask = bins == b
        if mask.any():
            total += mask.mean() * abs(float(y[mask].mean()) - float(probs[mask].mean()))
    return round(total, 4)


def _column(head: Head, label: str, probs: Matrix) -> Matrix:
    return probs[:, head.labels.index(label)]


def evaluate_harm(
    examples: Sequence[Example], cache: EmbeddingCache, band: tuple[float, float]
) -> dict[str, Any]:
    split = split_by_source(examples, "harm")
    heads = load_heads("harm")
    labels_all, y_all = targets(split.test, "harm")
    probs, escalated = tier_probs(heads, cache, [e.text for e in split.test], band)
    edgy = split.synthetic_holdout
    edgy_probs, _ = tier_probs(heads, cache, [e.text for e in edgy], band) if edgy else ({}, 0.0)
    kinds = np.array([e.kind for e in split.test])
    y_any = np.array([bool(e.labels) for e in split.test])
    result: dict[str, Any] = {
        "test_sources": sorted(split.sources("test")),
        "test_examples": len(split.test),
        "edgy_examples": len(edgy),
        "escalation_rate": round(escalated, 4),
        "tiers": {},
    }
    for tier, p in probs.items():
        head = heads["fast"]
        any_prob = p.max(axis=1)
        per_label = {}
        for label in head.labels:
            y = y_all[:, labels_all.index(label)].astype(bool)
            if y.sum():
                per_label[label] = _prf(y, _column(head, label, p) >= 0.5)
        edgy_fpr = None
        if edgy:
            edgy_benign = np.array([not e.labels for e in edgy])
            flagged = edgy_probs[tier].max(axis=1) >= 0.5
            edgy_fpr = round(float(flagged[edgy_benign].mean()), 4) if edgy_benign.any() else None
        result["tiers"][tier] = {
            "any_harm": _prf(y_any, any_prob >= 0.5),
            "any_harm_prompts": _prf(y_any[kinds == "prompt"], any_prob[kinds == "prompt"] >= 0.5),
            "any_harm_responses": _prf(
                y_any[kinds == "response"], any_prob[kinds == "response"] >= 0.5
            ),
            "response_agreement": round(
                float(((any_prob >= 0.5) == y_any)[kinds == "response"].mean()), 4
            )
            if (kinds == "response").any()
            else None,
            "benign_edgy_fpr": edgy_fpr,
            "ece_any_harm": expected_calibration_error(any_prob, y_any),
            "per_category": per_label,
        }
    return result


def evaluate_attack(
    examples: Sequence[Example], cache: EmbeddingCache, band: tuple[float, float]
) -> dict[str, Any]:
    split = split_by_source(examples, "attack")
    heads = load_heads("attack")
    test = list(split.test) + list(split.synthetic_holdout)  # look-alikes count as benign here
    probs, escalated = tier_probs(heads, cache, [e.text for e in test], band)
    is_attack = np.array([e.labels != ["benign"] for e in test])
    kind = np.array([e.labels[0] for e in test])
    result: dict[str, Any] = {
        "test_sources": sorted({e.source for e in test}),
        "test_examples": len(test),
        "escalation_rate": round(escalated, 4),
        "tiers": {},
    }
    benign_col = heads["fast"].labels.index("benign") if "benign" in heads["fast"].labels else None
    for tier, p in probs.items():
        attack_prob = 1 - p[:, benign_col] if benign_col is not None else p.max(axis=1)
        benign_scores = np.sort(attack_prob[~is_attack])
        # The threshold that lets through at most 2% of benign test inputs (incl. look-alikes).
        k = int(np.floor(ATTACK_FPR_BUDGET * len(benign_scores)))
        threshold = float(benign_scores[-(k + 1)]) + 1e-6 if len(benign_scores) else 0.5
        detected = attack_prob >= threshold
        per_kind = {
            label: round(float(detected[kind == label].mean()), 4)
            for label in sorted(set(kind[is_attack]))
        }
        result["tiers"][tier] = {
            "threshold_at_2pct_fpr": round(threshold, 4),
            "detection_at_2pct_fpr": round(float(detected[is_attack].mean()), 4)
            if is_attack.any()
            else None,
            "fpr_at_that_threshold": round(float(detected[~is_attack].mean()), 4)
            if (~is_attack).any()
            else None,
            "per_kind_detection_at_2pct_fpr": per_kind,
            "at_0_5": _prf(is_attack, attack_prob >= 0.5),
            "fpr_at_0_5": round(float((attack_prob >= 0.5)[~is_attack].mean()), 4)
            if (~is_attack).any()
            else None,
        }
    return result


def evaluate_refusal(
    examples: Sequence[Example], cache: EmbeddingCache, band: tuple[float, float]
) -> dict[str, Any]:
    split = split_by_source(examples, "refusal")
    heads = load_heads("refusal")
    probs, escalated = tier_probs(heads, cache, [e.text for e in split.test], band)
    labels = heads["fast"].labels
    truth = np.array([e.labels[0] for e in split.test])
    result: dict[str, Any] = {
        "test_sources": sorted(split.sources("test")),
        "test_examples": len(split.test),
        "escalation_rate": round(escalated, 4),
        "tiers": {},
    }
    for tier, p in probs.items():
        predicted = np.array(labels)[p.argmax(axis=1)]
        # Refused at all (full or partial) vs answered: what the red-team scorers consume.
        refused_true = truth != "none"
        refused_pred = predicted != "none"
        result["tiers"][tier] = {
            "accuracy_refused_or_not": round(float((refused_true == refused_pred).mean()), 4)
            if len(truth)
            else None,
            "accuracy_three_way": round(float((truth == predicted).mean()), 4)
            if len(truth)
            else None,
            "confusion": {
                t: {q: int(((truth == t) & (predicted == q)).sum()) for q in labels}
                for t in sorted(set(truth))
            },
        }
    return result


def latency(texts: Sequence[str]) -> dict[str, float]:
    """Per-message latency of each tier's embedding + head, one at a time (ms, p50/p99)."""
    from safestack.judge.builtin.embedders import encoder, static_embedder

    out = {}
    for tier, model in (("fast", static_embedder()), ("accurate", encoder())):
        head = load_heads("harm")[tier]
        model.encode(texts[:1])
        timings = []
        for text in texts:
            start = time.perf_counter()
            head.predict(model.encode([text]))
            timings.append((time.perf_counter() - start) * 1000)
        q = np.percentile(timings, [50, 99])
        out[f"{tier}_p50_ms"] = round(float(q[0]), 3)
        out[f"{tier}_p99_ms"] = round(float(q[1]), 3)
    return out


def band_sweep(
    examples: Sequence[Example], cache: EmbeddingCache
) -> dict[str, list[dict[str, Any]]]:
    """The cascade's quality and escalation rate for several uncertainty bands (the policy's knob)."""
    rows: dict[str, list[dict[str, Any]]] = {"harm": [], "attack": [], "refusal": []}
    for band in BAND_SWEEP:
        harm = evaluate_harm(examples, cache, band)
        attack = evaluate_attack(examples, cache, band)
        refusal = evaluate_refusal(examples, cache, band)
        rows["harm"].append(
            {
                "band": list(band),
                "escalation_rate": harm["escalation_rate"],
                "metric": harm["tiers"]["cascade"]["any_harm"]["f1"],
            }
        )
        rows["attack"].append(
            {
                "band": list(band),
                "escalation_rate": attack["escalation_rate"],
                "metric": attack["tiers"]["cascade"]["detection_at_2pct_fpr"],
            }
        )
        rows["refusal"].append(
            {
                "band": list(band),
                "escalation_rate": refusal["escalation_rate"],
                "metric": refusal["tiers"]["cascade"]["accuracy_refused_or_not"],
            }
        )
    return rows


def evaluate_all(
    examples: Sequence[Example], cache: EmbeddingCache, band: tuple[float, float] = DEFAULT_BAND
) -> dict[str, Any]:
    sample = [e.text[:512] for e in examples[:: max(1, len(examples) // 300)]][:300]
    return {
        "band": list(band),
        "harm": evaluate_harm(examples, cache, band),
        "attack": evaluate_attack(examples, cache, band),
        "refusal": evaluate_refusal(examples, cache, band),
        "band_sweep": band_sweep(examples, cache),
        "latency": latency(sample),
        "tasks": list(TASKS),
    }
