"""The convention every script in `recipes/` follows.

* `parse_settings`: one settings dataclass per recipe, every setting a flag
  (with `--quick`, `--seed`, `--output-dir`, `--resume`, `--publish`,
  `--set KEY=VALUE`); `marked_settings`: those passed to the model as they
  are; `command_line`: the command of a run, for its model card.
* `RunFolder`: each run writes into its own folder (`runs/<recipe>/<name>/`),
  atomically, and lists what it wrote; `saved_models/` only with `--publish`.
  `start_run` makes it, limits PyTorch's threads (`limit_threads`) and prints
  the `--quick` notice.
* `TrainingBackup`: `fit` that resumes exactly after a kill;
  `fit_resumable`: restore, then fit what is left of the run, in one call.
* `training_callbacks`: the task's real metric each epoch (`EpochMetric`),
  the best model (`BestModel`), early stopping, a CSV log, TensorBoard on
  TensorFlow, and the backup, in one call.
* `progress`: the same progress bar with ETA for data loading and prediction.
"""

from kzoo.recipes.callbacks import BestModel, EpochMetric, training_callbacks
from kzoo.recipes.progress import progress
from kzoo.recipes.run_folder import SMOKE_RUN, RunFolder, start_run
from kzoo.recipes.settings import (
    RunOptions,
    command_line,
    marked_settings,
    parse_settings,
    setting,
)
from kzoo.recipes.threads import limit_threads
from kzoo.recipes.training_backup import TrainingBackup, fit_resumable

__all__ = [
    "BestModel",
    "EpochMetric",
    "RunFolder",
    "RunOptions",
    "SMOKE_RUN",
    "TrainingBackup",
    "command_line",
    "fit_resumable",
    "limit_threads",
    "marked_settings",
    "parse_settings",
    "progress",
    "setting",
    "start_run",
    "training_callbacks",
]
