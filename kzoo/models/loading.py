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


def load(path, compile=False):
    """Loads a `.keras` file saved from a kzoo model (e.g. a `TextPipeline`).

    All kzoo classes are registered for Keras serialization when `kzoo` is
    imported, so no `custom_objects` are needed. The file may have been saved
    on any backend.

    Args:
        path: path of a `.keras` file.
        compile: also restore the optimizer and loss it was saved with.

    Returns:
        The model; for a `TextPipeline`, `model.predict(["some text"])`
        returns positive-class probabilities.

    Raises:
        FileNotFoundError: no file at `path`.
        IsADirectoryError: `path` is a folder.
        ValueError: `path` is not a `.keras` file, or it is empty, truncated
            or damaged, or Keras cannot rebuild the model it holds.

    Example:

    >>> clf = kzoo.models.load("saved_models/imdb_bigru.keras")
    >>> clf.predict(["This movie was wonderful"])
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or path. Received {type(path).__name__}.")
    path = os.fspath(path)
    if not path.endswith(".keras") and not os.path.isdir(path) and os.path.exists(path):
        raise ValueError(
            f"Expected a `.keras` model file. Received {path!r} (kzoo.models.load reads the "
            "Keras 3 zip format, whose files end in '.keras')."
        )
    check_keras_file(path)
    import kzoo.layers  # noqa: F401  registers the kzoo classes for deserialization

    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as e:  # Keras raises many types for archives it cannot rebuild
        raise ValueError(
            f"Could not load the model in {path!r} ({type(e).__name__}: {e}). Is it a complete "
            ".keras file saved by kzoo, and are the modules of its custom classes imported?"
        ) from e
