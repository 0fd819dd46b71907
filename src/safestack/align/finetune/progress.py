"""Progress of a training stage (and quiet libraries): a Rich bar with the step, loss, tokens/s and the time left, and a
count of the tokens each stage trained on (all tokens, and answer tokens: the ones with a loss).

The bar starts at the step a resumed run restarts from, so its ETA is the speed of this session
times the steps still to do.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import TrainerCallback


@dataclass
class TokenCount:
    """Tokens the collator handed to the model since `started` (this session only)."""

    tokens: int = 0
    answer_tokens: int = 0
    started: float = field(default_factory=time.perf_counter)
    cpu_started: float = field(default_factory=time.process_time)

    def rates(self) -> dict[str, float]:
        """Tokens per wall-clock second, and per CPU second of this process: on a machine
        shared with other work the second says what the training would do alone."""
        seconds = max(time.perf_counter() - self.started, 1e-9)
        cpu = max(time.process_time() - self.cpu_started, 1e-9)
        return {
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "tokens": self.tokens,
            "answer_tokens": self.answer_tokens,
            "tokens_per_s": round(self.tokens / seconds, 2),
            "answer_tokens_per_s": round(self.answer_tokens / seconds, 2),
            "tokens_per_cpu_s": round(self.tokens / cpu, 2),
        }


class CountingCollator:
    """Wraps a TRL collator and counts the real (unpadded) tokens and answer tokens per batch."""

    def __init__(self, inner: Any, count: TokenCount) -> None:
        self.inner = inner
        self.count = count

    def __call__(self, examples: list[dict[str, Any]]) -> Any:
        batch = self.inner(examples)
        self.count.tokens += int(batch["attention_mask"].sum())
        if "labels" in batch:
            self.count.answer_tokens += int((batch["labels"] != -100).sum())
        elif "completion_mask" in batch:
            self.count.answer_tokens += int(batch["completion_mask"].sum())
        return batch


class RichProgress(TrainerCallback):
    """A Rich progress bar for one stage, on `console` (the CLI's stderr)."""

    def __init__(self, console: Console, stage: str, count: TokenCount) -> None:
        self.console = console
        self.stage = stage
        self.count = count
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.loss = ""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.progress.start()
        self.task = self.progress.add_task(
            self.stage, total=state.max_steps, completed=state.global_step, status=""
        )
        if state.global_step:
            self.console.print(f"{self.stage}: resuming at step {state.global_step}")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is not None and self.task is not None:
            rate = self.count.rates()["tokens_per_s"]
            self.progress.update(
                self.task, advance=1, status=f"{self.loss}{rate:.1f} tok/s".strip()
            )

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if logs and "loss" in logs:
            self.loss = f"loss {float(logs['loss']):.3f}  "

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the bar (also when training failed or was interrupted)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The libraries' own progress bars, log lines and deprecation notes off while training: the
    stage's Rich bar says what is happening. (TRL's reference pass has a tqdm bar only the
    TQDM_DISABLE variable turns off; `safestack align train` sets it.)"""
    import datasets
    from transformers.utils import logging

    hf_logging: Any = logging  # untyped functions
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings(
                "ignore", category=UserWarning, module="(transformers|trl|peft)"
            )
            yield
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()
        if bars:
            datasets.enable_progress_bars()
