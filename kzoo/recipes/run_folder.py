"""Where a recipe run writes: one folder per run, every write atomic and listed.

A run writes only into its own folder (`runs/<recipe>/<name>/` by default,
git-ignored). `publish` copies chosen files into `saved_models/` when the
user asks for it (`--publish`), never by default. At the end, `summary()`
lists every file the run wrote, so nothing lands anywhere unannounced.
"""

import os
import shutil

from kzoo.recipes.threads import limit_threads
from kzoo.utils import atomic_write
from kzoo.utils.random_seed import set_random_seed

SMOKE_RUN = (
    "Smoke run (--quick): a tiny model on a small slice of the data; it shows that "
    "training works, not how good the full model is."
)


def start_run(options, quick_notice=SMOKE_RUN):
    """Starts a recipe's run: its seed, its threads, its folder, and the `--quick` notice.

    The steps every recipe's `main` takes after `parse_settings` (and any
    check that needs no folder): `kzoo.utils.set_random_seed(options.seed)`
    (Python, NumPy and Keras, without importing TensorFlow), `limit_threads()`
    (PyTorch on one CPU thread unless `OMP_NUM_THREADS` says otherwise), the
    `RunFolder` of `options.output_dir` (created, and checked writable before
    any long work), and with `--quick` a printed notice of what the run shows.

    Args:
        options: the `RunOptions` of `parse_settings`.
        quick_notice: the text printed with `--quick` (default: `SMOKE_RUN`,
            a smoke run's caveat).

    Returns:
        The `RunFolder`.

    Example:

    >>> settings, options = parse_settings(Settings, QUICK, argv=argv, recipe="demo")
    >>> run = start_run(options)
    """
    set_random_seed(options.seed)
    limit_threads()
    run = RunFolder(options.output_dir)
    if options.quick:
        print(quick_notice)
    return run


class RunFolder:
    """The output folder of one recipe run.

    Args:
        path: the folder; created (with its parents) if missing. Its
            writability is checked at once, before any long work starts.

    Attributes:
        path: the folder.
        backup_dir: `<path>/backup`, where resumable training keeps its
            state (see `kzoo.recipes.TrainingBackup`).
        written: the files written so far through this object, in order.

    Example:

    >>> run = RunFolder("runs/imdb/jax-seed1")
    >>> run.write_json("metrics.json", {"accuracy": 0.89})
    >>> run.save_model("model.keras", model)
    >>> run.publish(["model.keras"], "saved_models", rename={"model.keras": "imdb.keras"})
    >>> print(run.summary())
    """

    def __init__(self, path):
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise ValueError(f"`path` must be a folder path. Received: path={path!r}")
        self.path = os.fspath(path)
        atomic_write.check_writable_folder(os.path.join(self.path, "probe"))
        os.makedirs(self.path, exist_ok=True)
        self.backup_dir = os.path.join(self.path, "backup")
        self.written = []

    def file(self, name):
        """The path of `name` inside the run folder (a plain name, no `..`)."""
        if not name or os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
            raise ValueError(
                f"A run file name must be relative and stay inside the run folder. "
                f"Received: {name!r}"
            )
        return os.path.join(self.path, name)

    def _record(self, path):
        if path not in self.written:
            self.written.append(path)
        return path

    def write_text(self, name, text):
        path = self.file(name)
        atomic_write.write_text(path, text)
        return self._record(path)

    def write_json(self, name, obj):
        path = self.file(name)
        atomic_write.write_json(path, obj)
        return self._record(path)

    def save_model(self, name, model, **kwargs):
        path = self.file(name)
        atomic_write.save_model(model, path, **kwargs)
        return self._record(path)

    def record(self, name):
        """Lists a file that something else (e.g. a callback) wrote in the folder."""
        path = self.file(name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} was not written.")
        return self._record(path)

    def publish(self, names, target="saved_models", rename=None):
        """Copies run files into `target` (each copy atomic); returns the new paths.

        Args:
            names: file names inside the run folder.
            target: the destination folder.
            rename: optional dict of name -> name in `target`.
        """
        rename = dict(rename or {})
        missing = [n for n in names if not os.path.isfile(self.file(n))]
        if missing:
            raise FileNotFoundError(
                f"Cannot publish files the run did not write: {missing} (in {self.path})."
            )
        published = []
        for name in names:
            destination = os.path.join(target, rename.get(name, os.path.basename(name)))
            with atomic_write.atomic_path(destination) as temporary:
                shutil.copyfile(self.file(name), temporary)
            published.append(self._record(destination))
        return published

    def summary(self):
        """One line per file written, with its size."""
        lines = [f"Files written by this run ({len(self.written)}):"]
        for path in self.written:
            size = os.path.getsize(path) if os.path.exists(path) else 0
            lines.append(f"  {path}  ({_size(size)})")
        return "\n".join(lines)


def _size(n):
    if n < 1024:
        return f"{n} B"
    if n < 1024**2:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024**2:.1f} MB"
