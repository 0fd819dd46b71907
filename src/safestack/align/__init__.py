"""Break-fix: red-team findings become safety training data (and, next, a fine-tune and rounds).

`safestack align data RUN...` reads a run's stored attempts, keeps those whose stored scores say
the attack succeeded (`findings`), writes each a policy-compliant answer (`templates` offline, or a
chat model through `writer`), and builds SFT, preference and KTO rows plus a retain set of helpful
answers (`build`, `retain`), split by behaviour and written as JSON Lines and Parquet with a dataset
card and manifest (`output`); `regression` turns the findings into a red-team campaign that replays
each one by id. Sits above the red team (it reads runs and re-runs campaigns) and below the CLI.
"""

from safestack.align.build import BuildOptions, TrainingSet, build_training_set
from safestack.align.findings import NothingToLearnError, RunAttempts, load_runs, select
from safestack.align.output import WriteResult, record_training_set, write_training_set
from safestack.align.regression import (
    attempt_of,
    finding_id,
    regression_campaign,
    write_campaign,
)
from safestack.align.retain import DEFAULT_RETAIN_RATIO
from safestack.align.writer import ModelWriter, TemplateWriter, parse_writer

__all__ = [
    "DEFAULT_RETAIN_RATIO",
    "BuildOptions",
    "ModelWriter",
    "NothingToLearnError",
    "RunAttempts",
    "TemplateWriter",
    "TrainingSet",
    "WriteResult",
    "attempt_of",
    "build_training_set",
    "finding_id",
    "load_runs",
    "parse_writer",
    "record_training_set",
    "regression_campaign",
    "select",
    "write_campaign",
    "write_training_set",
]
