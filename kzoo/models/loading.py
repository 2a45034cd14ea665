"""`kzoo.models.load`: open a saved kzoo model on any backend."""

import os

import keras


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
        ValueError: `path` is not a `.keras` file or cannot be read.

    Example:

    >>> clf = kzoo.models.load("saved_models/imdb_bigru.keras")
    >>> clf.predict(["This movie was wonderful"])
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or path. Received {type(path).__name__}.")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No saved model at {path!r}.")
    if os.path.isdir(path) or not path.endswith(".keras"):
        raise ValueError(f"Expected a `.keras` model file. Received {path!r}.")
    try:
        return keras.saving.load_model(path, compile=compile)
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"Could not load the model in {path!r}: {e}") from e
