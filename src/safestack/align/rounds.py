"""`safestack align round`: one whole break-fix round, resumable, recorded in the store.

Round N of a series starts from model N-1 (the base for round 1) and:

1. measures it on the evaluation sets (`evaluation`: the campaign it was broken with, a held-out
   campaign, the over-refusal set, the capability probe, and the regression suite from round 2 on),
   each a red-team run with the id `<series>-r<N-1>-<set>`;
2. builds the training set (`align data`) from the `attack` run and, from round 2 on, the
   regression run (findings that broke again), into `OUT/round-N/data`; its findings join the
   regression suite (`OUT/regression.yaml`, a copy per round in `OUT/round-N/`);
3. trains (`align train`) into `OUT/round-N/model` and records the model in the lineage;
4. measures the new model on the same sets (`<series>-r<N>-<set>`) and records the round
   (`store.rounds`) with the summary of both models.

Every step is idempotent: a red-team run resumes (stored attempts are not asked again), the data
step rewrites the same set, training continues from its last checkpoint, so a killed round run
again continues where it stopped. Model N's "after" runs are round N+1's "before" runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from safestack.align.build import BuildOptions, build_training_set
from safestack.align.evaluation import (
    SetScores,
    aimed_at,
    benign_campaign,
    capability_campaign,
    round_target,
    set_scores,
    system_prompt_of,
)
from safestack.align.findings import NothingToLearnError, load_runs
from safestack.align.finetune import ParentModel, resolve_parent
from safestack.align.output import record_training_set, write_training_set
from safestack.align.regression import campaign_yaml, regression_campaign, write_campaign
from safestack.align.rows import sha256_json
from safestack.align.writer import TemplateWriter
from safestack.errors import InputError
from safestack.judge.builtin import BuiltinModels
from safestack.policy import Policy
from safestack.records import Attempt
from safestack.redteam.campaign import load_campaign, parse_campaign
from safestack.redteam.runner import Runner
from safestack.store import Store, StoredRound

SUITE = "regression.yaml"
AttemptHook = Callable[[str, int], Callable[[Attempt], None] | None]
# (training set directory, parent, output directory) -> (the new model's lineage id, its target)
Trainer = Callable[[Path, ParentModel, Path], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class RoundInputs:
    """What a series is made of (the same for every round of it)."""

    series: str
    attack: dict[str, Any]  # the campaign the model was broken with (a mapping)
    heldout: dict[str, Any] | None  # attacks and behaviours it never trains on
    out: Path
    benign_limit: int | None = None  # None: every benign look-alike
    capability: bool = True
    build: BuildOptions = field(default_factory=BuildOptions)

    @property
    def generation(self) -> dict[str, Any]:
        value = self.attack.get("generation") or {}
        return dict(value)

    def config(self) -> dict[str, Any]:
        return {
            "attack": sha256_json(self.attack),
            "heldout": sha256_json(self.heldout),
            "benign_limit": self.benign_limit,
            "capability": self.capability,
        }


@dataclass
class RoundResult:
    round: StoredRound
    before: dict[str, SetScores]
    after: dict[str, SetScores]
    status: str  # "done", "already done" or "nothing-to-learn"
    message: str = ""


def read_campaign_file(path: Path) -> dict[str, Any]:
    """A campaign file checked (file:line:field errors), as the mapping the round re-aims."""
    return load_campaign(path).model_dump(mode="json")


def run_id(series: str, number: int, name: str) -> str:
    return f"{series}-r{number}-{name}"


class RoundDriver:
    """Runs rounds of one series from `base` (round 0's model); `train` fine-tunes (the CLI passes
    `align train`'s `train_model` + `record_model`)."""

    def __init__(
        self,
        store: Store,
        policy: Policy,
        inputs: RoundInputs,
        *,
        train: Trainer,
        base: ParentModel,
        home: Path | None = None,
        models: BuiltinModels | None = None,
        console: Console | None = None,
        on_run: AttemptHook | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.inputs = inputs
        self.train = train
        self.base = base
        self.home = home
        self.models = models if models is not None else BuiltinModels()
        self.console = console or Console(stderr=True)
        self.on_run = on_run

    # --- the model of a round -------------------------------------------------------------------

    def model_of(self, number: int) -> tuple[str, dict[str, Any]]:
        """Model `number` (0: the base) as (lineage id, red-team target spec)."""
        if number == 0:
            return self.base.id, self.base.target
        rounds = {r.number: r for r in self.store.rounds.series(self.inputs.series)}
        found = rounds.get(number)
        if found is None or found.model is None:
            raise InputError(f"series '{self.inputs.series}': round {number} has no model yet")
        model = self.store.models.get(found.model)
        if model is None:
            raise InputError(f"round {number}: model {found.model} is not in the lineage")
        # The target the round's trainer chose (e.g. the model as GGUF), else the lineage's.
        return model.id, dict(found.metrics.get("target") or model.target)

    def next_round(self) -> int:
        rounds = self.store.rounds.series(self.inputs.series)
        if not rounds:
            return 1
        last = rounds[-1]
        return last.number + 1 if last.stage == "done" else last.number

    # --- evaluation -----------------------------------------------------------------------------

    def suite_path(self, number: int) -> Path:
        return self.inputs.out / f"round-{number}" / SUITE

    def campaigns(self, number: int) -> dict[str, dict[str, Any]]:
        """The evaluation campaigns for model `number`, aimed at it."""
        _, target_spec = self.model_of(number)
        target = round_target(target_spec, number, system_prompt_of(self.inputs.attack))
        series, generation = self.inputs.series, self.inputs.generation
        # Cheapest-first after the headline: the regression suite (the findings), the held-out,
        # over-refusal and capability sets, then the attack campaign (mostly the findings again
        # inside their full campaign), so a round stopped early has measured what matters most.
        sets: dict[str, dict[str, Any]] = {}
        suite = self.suite_path(number)
        if number >= 1 and suite.is_file():
            sets["regression"] = yaml.safe_load(suite.read_text("utf-8"))
        if self.inputs.heldout is not None:
            sets["heldout"] = self.inputs.heldout
        sets["benign"] = benign_campaign(series, generation, self.inputs.benign_limit)
        if self.inputs.capability:
            sets["capability"] = capability_campaign(series, generation)
        sets["attack"] = self.inputs.attack
        return {
            name: aimed_at(campaign, target, f"{series}-{name}", f"the {name} campaign")
            for name, campaign in sets.items()
        }

    def evaluate(self, number: int, record: tuple[int, str] | None = None) -> dict[str, SetScores]:
        """Run (or resume) every evaluation set on model `number`; their scores by set. With
        `record` (round, "before" or "after") each run id is stored as soon as its run is done,
        so the report shows a round that was stopped half-way for what it measured."""
        scores: dict[str, SetScores] = {}
        for name, campaign_data in self.campaigns(number).items():
            rid = run_id(self.inputs.series, number, name)
            scores[name] = self._run(rid, name, campaign_data)
            if record is not None:
                self.store.rounds.update(
                    self.inputs.series, record[0], runs={record[1]: {name: rid}}
                )
        return scores

    def _run(self, rid: str, name: str, data: dict[str, Any]) -> SetScores:
        return run_set(
            self.store,
            self.policy,
            rid,
            name,
            data,
            home=self.home,
            models=self.models,
            console=self.console,
            on_run=self.on_run,
        )

    # --- the round ------------------------------------------------------------------------------

    def run_round(self, number: int | None = None) -> RoundResult:
        series = self.inputs.series
        number = number or self.next_round()
        parent_id, _ = self.model_of(number - 1)
        stored = self.store.rounds.start(series, number, parent_id, self.inputs.config())
        if stored.stage == "done":
            before = self._scores(stored.runs.get("before", {}))
            after = self._scores(stored.runs.get("after", {}))
            return RoundResult(stored, before, after, "already done")
        here = self.inputs.out / f"round-{number}"
        here.mkdir(parents=True, exist_ok=True)

        before = self.evaluate(number - 1, (number, "before"))
        runs_before = {name: s.run_id for name, s in before.items()}
        stored = self.store.rounds.update(
            series, number, stage="evaluated-before", runs={"before": runs_before}
        )

        sources = [runs_before["attack"]]
        if "regression" in runs_before:
            sources.append(runs_before["regression"])
        try:
            training_set = build_training_set(
                load_runs(self.store, sources), self.policy, TemplateWriter(), self.inputs.build
            )
        except NothingToLearnError as exc:
            stored = self.store.rounds.update(
                series,
                number,
                stage="nothing-to-learn",
                metrics={"before": {n: s.as_json() for n, s in before.items()}},
            )
            return RoundResult(stored, before, {}, "nothing-to-learn", str(exc))
        findings = regression_campaign(
            load_runs(self.store, sources), training_set.findings, name=f"{series}-regression"
        )
        suite = self._grow_suite(number, findings)
        result = write_training_set(training_set, here / "data", force=True, regression=findings)
        record = record_training_set(self.store, result)
        stored = self.store.rounds.update(
            series,
            number,
            stage="data",
            training_set=record.id,
            training_set_version=result.version,
            metrics={"suite_probes": suite},
        )

        parent = self.base if number == 1 else resolve_parent(parent_id, self.store)
        model_id, target = self.train(here / "data", parent, here / "model")
        stored = self.store.rounds.update(
            series, number, stage="trained", model=model_id, metrics={"target": target}
        )

        after = self.evaluate(number, (number, "after"))
        summary = {
            "before": {n: s.as_json() for n, s in before.items()},
            "after": {n: s.as_json() for n, s in after.items()},
        }
        stored = self.store.rounds.update(
            series,
            number,
            stage="done",
            runs={"after": {name: s.run_id for name, s in after.items()}},
            metrics=summary,
        )
        self.store.models.add_metrics(
            model_id, {"evaluation": {"series": series, "round": number, **summary["after"]}}
        )
        return RoundResult(stored, before, after, "done")

    def _scores(self, runs: dict[str, str]) -> dict[str, SetScores]:
        return {
            name: set_scores(name, rid, self.store.runs.attempts(rid))
            for name, rid in runs.items()
            if self.store.runs.get(rid) is not None
        }

    def _grow_suite(self, number: int, findings: dict[str, Any]) -> int:
        """Add this round's findings to the series' regression suite; write it for this round.

        Probes are keyed by their conversation: a finding that broke again under a new attempt
        id joins its earlier probe as an alias, so the suite never asks the same thing twice.
        """
        latest = self.inputs.out / SUITE
        previous = self.suite_path(number - 1) if number > 1 else None
        base = previous if previous is not None and previous.is_file() else None
        suite: dict[str, Any]
        if base is not None:
            suite = yaml.safe_load(base.read_text("utf-8"))
        else:
            suite = {**findings, "behaviours": [{**findings["behaviours"][0]}]}
            suite["behaviours"][0]["options"] = {
                **findings["behaviours"][0]["options"],
                "behaviours": [],
            }
        items: list[dict[str, Any]] = suite["behaviours"][0]["options"]["behaviours"]
        keyed = {_probe_key(item): item for item in items}
        known = {i["id"] for i in items} | {a for i in items for a in i.get("aliases", [])}
        for item in findings["behaviours"][0]["options"]["behaviours"]:
            ids = [item["id"], *item.get("aliases", [])]
            key = _probe_key(item)
            if key in keyed:
                aliases = keyed[key].setdefault("aliases", [])
                aliases.extend(i for i in ids if i not in known)
            elif item["id"] not in known:
                copied = dict(item)
                keyed[key] = copied
                items.append(copied)
            known.update(ids)
        scorers = {str(s if isinstance(s, str) else s["name"]): s for s in suite["scorers"]}
        for scorer in findings["scorers"]:
            scorers.setdefault(str(scorer if isinstance(scorer, str) else scorer["name"]), scorer)
        suite["scorers"] = list(scorers.values())
        suite["name"] = f"{self.inputs.series}-regression"
        suite["description"] = (
            f"Regression suite of series {self.inputs.series}: every finding trained on up to "
            f"round {number} ({len(items)} probes), replayed as it was sent."
        )
        write_campaign(suite, self.suite_path(number), force=True)
        latest.parent.mkdir(parents=True, exist_ok=True)
        staging = latest.with_name(f".{latest.name}.staging")
        staging.write_text(campaign_yaml(suite), "utf-8")
        staging.replace(latest)
        return len(items)


def run_set(
    store: Store,
    policy: Policy,
    rid: str,
    name: str,
    data: dict[str, Any],
    *,
    home: Path | None,
    models: BuiltinModels,
    console: Console,
    on_run: AttemptHook | None = None,
) -> SetScores:
    """Run (or resume) one evaluation campaign under `rid`; its scores from the stored attempts."""
    campaign = parse_campaign(data, f"the {name} campaign")
    runner = Runner(campaign, store, policy, run_id=rid, home=home, models=models)
    todo, done = runner.pending()
    if todo or runner.replay.attempts:
        console.print(f"{rid}: {len(todo)} attempts to run ({done} stored)", highlight=False)
        hook = on_run(rid, len(todo) + len(runner.replay.attempts)) if on_run else None
        asyncio.run(runner.run(todo, hook))
    return set_scores(name, rid, store.runs.attempts(rid))


def _probe_key(item: dict[str, Any]) -> str:
    return sha256_json([item.get("category"), item.get("canary"), item.get("messages")])


def rounds_of(store: Store, series: str) -> Sequence[StoredRound]:
    found = store.rounds.series(series)
    if not found:
        known = ", ".join(store.rounds.all_series()) or "none yet"
        raise InputError(
            f"no break-fix rounds in series '{series}' (series in this store: {known}); "
            "safestack align round starts one"
        )
    return found
