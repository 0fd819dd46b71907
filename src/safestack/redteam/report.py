"""The red-team report: one self-contained HTML page plus the metrics as JSON and CSV.

Reads scored Attempts (any number of targets), computes `metrics.compute_metrics`, and renders
plots (plotly, with plotly.js inlined once so the page works offline), the model comparison table
and the worst transcripts, HTML-escaped, through the jinja2 template in `assets/report.html.j2`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go  # type: ignore[import-untyped, unused-ignore]

from safestack.records import Attempt, AttemptStatus
from safestack.redteam.metrics import (
    Metrics,
    Outcome,
    Rate,
    attack_outcome,
    compute_metrics,
    severity,
    to_csv,
)


@dataclass(frozen=True, slots=True)
class ReportFiles:
    html: Path
    json: Path
    csv: Path
    metrics: Metrics


def write_report(
    attempts: Sequence[Attempt],
    out_dir: Path | str,
    *,
    title: str = "Red-team report",
    worst: int = 10,
) -> ReportFiles:
    """Write `report.html`, `metrics.json` and `metrics.csv` into `out_dir` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = compute_metrics(attempts)
    figures = [_asr_figure(metrics), _severity_figure(metrics), _refusal_figure(metrics)]
    plots = [
        fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False)
        for i, fig in enumerate(figures)
    ]
    html = _template().render(
        title=title,
        metrics=metrics,
        asr_plot=plots[0],
        severity_plot=plots[1],
        refusal_plot=plots[2],
        transcripts=worst_transcripts(attempts, worst),
        runs=sorted({a.run_id for a in attempts}),
    )
    files = ReportFiles(out / "report.html", out / "metrics.json", out / "metrics.csv", metrics)
    files.html.write_text(html, "utf-8")
    files.json.write_text(metrics.model_dump_json(indent=2), "utf-8")
    files.csv.write_text(to_csv(metrics), "utf-8")
    return files


def _template() -> jinja2.Template:
    text = (
        resources.files("safestack.redteam").joinpath("assets", "report.html.j2").read_text("utf-8")
    )
    # Autoescape: transcripts hold attacker- and model-written text; only the plots are trusted.
    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(text)


def _error_bars(rates: Sequence[Rate]) -> dict[str, Any]:
    return {
        "type": "data",
        "symmetric": False,
        "array": [None if r.rate is None else (r.high or 0) - r.rate for r in rates],
        "arrayminus": [None if r.rate is None else r.rate - (r.low or 0) for r in rates],
    }


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        barmode="group",
        template="plotly_white",
        height=420,
        margin={"l": 60, "r": 20, "t": 60, "b": 80},
    )
    return fig


def _asr_figure(metrics: Metrics) -> go.Figure:
    fig = go.Figure()
    rows = [r for r in metrics.asr if r.by == "category"]
    categories = sorted({r.key for r in rows})
    for target in metrics.targets:
        found = {r.key: r.asr for r in rows if r.target == target}
        rates = [found.get(c, Rate.of(0, 0)) for c in categories]
        fig.add_bar(
            name=target,
            x=categories,
            y=[r.rate for r in rates],
            error_y=_error_bars(rates),
            customdata=[r.text() for r in rates],
            hovertemplate="%{x}: %{customdata}<extra>" + target + "</extra>",
        )
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, "Attack success rate by category (Wilson 95%)", "category", "ASR")


def _severity_figure(metrics: Metrics) -> go.Figure:
    fig = go.Figure()
    for summary in metrics.summaries:
        fig.add_bar(name=summary.target, x=list(range(8)), y=summary.severity_histogram)
    fig.update_xaxes(dtick=1)
    return _layout(fig, "Response severity, harmful objectives (0-7)", "severity", "attempts")


def _refusal_figure(metrics: Metrics) -> go.Figure:
    fig = go.Figure()
    for s in metrics.summaries:
        fig.add_scatter(
            name=s.target,
            mode="markers+text",
            text=[s.target],
            textposition="top center",
            x=[s.over_refusal.rate],
            y=[s.asr.rate],
            error_x=_error_bars([s.over_refusal]),
            error_y=_error_bars([s.asr]),
            marker={"size": 12},
        )
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return _layout(
        fig, "Over-refusal vs attack success (lower-left is better)", "over-refusal", "ASR"
    )


def worst_transcripts(attempts: Sequence[Attempt], limit: int) -> list[dict[str, Any]]:
    """The `limit` worst non-benign attempts: successes first, then by severity and leak."""
    ranked = []
    for attempt in attempts:
        if attempt.benign or attempt.status != AttemptStatus.COMPLETE:
            continue
        outcome = attack_outcome(attempt)
        level = severity(attempt)
        key = (outcome == Outcome.SUCCESS, -1 if level is None else level)
        ranked.append((key, attempt, outcome, level))
    ranked.sort(key=lambda item: item[0], reverse=True)
    out = []
    for _, attempt, outcome, level in ranked[:limit]:
        messages = [(m.role.value, m.content) for m in attempt.conversation]
        if attempt.response and (not messages or messages[-1][1] != attempt.response):
            messages.append(("assistant", attempt.response))
        out.append(
            {
                "target": attempt.target,
                "attack": attempt.attack,
                "category": attempt.category,
                "objective": attempt.objective,
                "outcome": outcome.value,
                "severity": "n/a" if level is None else str(level),
                "scores": [f"{s.scorer}: {s.error or s.label or s.value}" for s in attempt.scores],
                "messages": messages,
                "id": attempt.id,
            }
        )
    return out
