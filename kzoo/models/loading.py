"""`kzoo.models.load`: open a saved kzoo model on any backend."""

import os
import zipfile

import keras

# The members every `.keras` archive written by Keras 3 holds.
_KERAS_MEMBERS = ("config.json",)


def check_keras_file(path, what="a .keras model file"):
    """Raises a clear error unless `path` looks like a complete `.keras` archive.

    A `.keras` file is a zip archive holding `config.json` (the model's
    architecture) and the weights. Keras itself reports any file it cannot
    open as "File not found", even one that exists; this check names the
    actual problem first: missing, a folder, empty, not a zip archive
    (truncated or another format), or an archive whose members are damaged
    (CRC mismatch) or incomplete.

    Args:
        path: the file to check.
        what: how the error messages name the expected file.

    Returns:
        `path` as a str.

    Raises:
        TypeError: `path` is not a str or path.
        FileNotFoundError: nothing exists at `path`.
        IsADirectoryError: `path` is a folder (e.g. a SavedModel).
        ValueError: the file is empty, not a zip archive, or damaged.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or path. Received {type(path).__name__}: {path!r}.")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No saved model at {path!r}: the file does not exist.")
    if os.path.isdir(path):
        hint = ""
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            hint = (
                " It holds a TensorFlow SavedModel (e.g. written by kzoo.export), which "
                "`tf.saved_model.load` opens; kzoo loads `.keras` files."
            )
        raise IsADirectoryError(f"{path!r} is a folder, not {what}.{hint}")
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f"{path!r} is empty (0 bytes), not {what}: an interrupted save?")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(8)
        kind = (
            "a .tflite file"
            if head[4:8] == b"TFL3"
            else "an HDF5 file"
            if head[:4] == b"\x89HDF"
            else None
        )
        detail = f"it is {kind}" if kind else "truncated or corrupt?"
        raise ValueError(
            f"{path!r} ({size} bytes) is not {what}: a .keras file is a zip archive, and this "
            f"file is not one ({detail})."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            damaged = archive.testzip()  # reads every member and checks its CRC
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{path!r} is a damaged zip archive, not {what}: {error}") from error
    if damaged is not None:
        raise ValueError(
            f"{path!r} is damaged: the member {damaged!r} of the archive fails its CRC check "
            "(the file was modified or partly overwritten)."
        )
    missing = [name for name in _KERAS_MEMBERS if name not in names]
    if missing:
        raise ValueError(
            f"{path!r} is a zip archive but not {what}: it has no {missing[0]!r} "
            f"(members: {sorted(names)[:5]})."
        )
    return path


def load(path_or_preset, compile=True, cache_dir=None, base_url=None):
    """Loads a kzoo model: a shipped preset by name, or a `.keras` file by path.

    A preset name (see `kzoo.models.list_presets()`) resolves to a local copy
    whose sha256 is checked (`kzoo.models.presets.preset_path`: the
    repository's `saved_models/`, the user cache, else a download). All kzoo
    classes are registered for Keras serialization when `kzoo` is imported,
    so no `custom_objects` are needed; the file may come from any backend.

    With `compile=True` the model comes back compiled: with the optimizer,
    loss and metrics it was saved with, or, for a kzoo task saved without
    them, with the task's defaults (`task.compile()`).

    Args:
        path_or_preset: a preset name such as `"imdb_bigru"`, or the path
            of a `.keras` file.
        compile: compile the model (saved settings, else the task defaults).
            `False` is faster when the model only predicts.
        cache_dir: for presets, the cache folder's parent (default: the
            Keras cache dir).
        base_url: for presets, the URL serving the files (default:
            `$KZOO_PRESET_BASE_URL`).

    Returns:
        The model, e.g. a `TextClassifier` whose `predict(["some text"])`
        returns class probabilities.

    Raises:
        TypeError: `path_or_preset` is not a str or path.
        FileNotFoundError: no file at the path.
        IsADirectoryError: the path is a folder.
        ValueError: an unknown preset name (the message lists the known
            ones), a preset file that fails its sha256 check, a file that is
            not a `.keras` file, or is empty, truncated or damaged, or that
            Keras cannot rebuild.

    Example:

    >>> clf = kzoo.models.load("imdb_bigru")
    >>> clf = kzoo.models.load("saved_models/imdb_bigru.keras", compile=False)
    >>> clf.predict(["This movie was wonderful"])
    """
    from kzoo.models import presets

    if not isinstance(path_or_preset, (str, os.PathLike)):
        raise TypeError(
            "`path_or_preset` must be a preset name or the path of a .keras file (str or "
            f"path). Received {type(path_or_preset).__name__}: {path_or_preset!r}."
        )
    if presets.looks_like_preset_name(path_or_preset):
        path = presets.preset_path(path_or_preset, cache_dir=cache_dir, base_url=base_url)
    else:
        path = os.fspath(path_or_preset)
        if not path.endswith(".keras") and not os.path.isdir(path) and os.path.exists(path):
            raise ValueError(
                f"Expected a `.keras` model file. Received {path!r} (kzoo.models.load reads the "
                "Keras 3 zip format, whose files end in '.keras')."
            )
    return load_file(path, compile=compile)


def load_file(path, compile=False, what="a .keras model file"):
    """Loads the `.keras` file at `path` after checking it (`check_keras_file`).

    The one place where kzoo opens a `.keras` file (`load`, `kzoo.export`).
    With `compile=True`, a kzoo task saved without compile settings is
    compiled with its defaults.

    Args:
        path: the file.
        compile: as in `load`.
        what: how error messages name the expected file.

    Raises:
        As `check_keras_file`, and ValueError when Keras cannot rebuild the
        model.
    """
    path = check_keras_file(path, what=what)
    import kzoo.layers  # noqa: F401  registers the kzoo classes for deserialization
    import kzoo.models  # noqa: F401
    from kzoo.models.task import Task

    try:
        model = keras.saving.load_model(path, compile=compile)
    except Exception as e:  # Keras raises many types for archives it cannot rebuild
        raise ValueError(
            f"Could not load the model in {path!r} ({type(e).__name__}: {e}). Is it a complete "
            ".keras file saved by kzoo, and are the modules of its custom classes imported?"
        ) from e
    if compile and isinstance(model, Task) and not model.compiled:
        model.compile()  # saved without compile settings: the task's defaults
    return model
