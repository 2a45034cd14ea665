"""The convention every script in `recipes/` follows.

* `parse_settings`: one settings dataclass per recipe, every setting a flag
  (with `--quick`, `--seed`, `--output-dir`, `--resume`, `--publish`,
  `--set KEY=VALUE`).
* `RunFolder`: each run writes into its own folder (`runs/<recipe>/<name>/`),
  atomically, and lists what it wrote; `saved_models/` only with `--publish`.
* `TrainingBackup`: `fit` that resumes exactly after a kill.
* `training_callbacks`: the task's real metric each epoch (`EpochMetric`),
  the best model (`BestModel`), early stopping, a CSV log, TensorBoard on
  TensorFlow, and the backup, in one call.
* `progress`: the same progress bar with ETA for data loading and prediction.
"""

from kzoo.recipes.callbacks import BestModel, EpochMetric, training_callbacks
from kzoo.recipes.progress import progress
from kzoo.recipes.run_folder import RunFolder
from kzoo.recipes.settings import RunOptions, parse_settings, setting
from kzoo.recipes.training_backup import TrainingBackup

__all__ = [
    "BestModel",
    "EpochMetric",
    "RunFolder",
    "RunOptions",
    "TrainingBackup",
    "parse_settings",
    "progress",
    "setting",
    "training_callbacks",
]
