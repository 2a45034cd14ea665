"""Compact `.keras` files: no optimizer state, optionally float16 weights.

Both functions write atomically (`kzoo.utils.atomic_write`): the new file is
built whole at a temporary path next to the target and renamed over it, so an
exception, Ctrl-C or kill mid-way leaves the previous file as it was.
"""

import io
import os
import zipfile

import keras
import numpy as np

from kzoo.utils.atomic_write import atomic_path

_WEIGHTS = "model.weights.h5"


def save_compact(model, path, weights_dtype="auto", max_megabytes=10.0, config=None):
    """Saves a copy of `model` without its optimizer state.

    The copy is rebuilt from the model's config (or `config`, e.g. the
    stateless version of a stateful model) and given the model's trainable
    weights (and its non-trainable ones where the copy has the same).
    With `weights_dtype="float16"`, or `"auto"` when the float32 weights
    exceed `max_megabytes`, the arrays inside the file are rounded to
    float16; `keras.saving.load_model` casts them back into the model's own
    (float32) variables, so only the rounding changes the outputs.

    Args:
        model: a built kzoo model (functional, or one whose `build()` takes
            no arguments, like `Seq2Seq`).
        path: the `.keras` file to write.
        weights_dtype: "auto", "float32" or "float16".
        max_megabytes: the float32 size above which "auto" stores float16.
        config: optional config for the copy (default: `model.get_config()`).

    Returns:
        The stored weights dtype, "float32" or "float16".

    Example:

    >>> save_compact(model, "saved_models/translate.keras")
    'float16'
    """
    if weights_dtype not in ("auto", "float32", "float16"):
        raise ValueError(
            "`weights_dtype` must be 'auto', 'float32' or 'float16'. "
            f"Received: weights_dtype={weights_dtype!r}"
        )
    copy = type(model).from_config(model.get_config() if config is None else config)
    if not copy.built:
        copy.build()
    if len(copy.trainable_weights) != len(model.trainable_weights):
        raise ValueError(
            f"The copy of {model.name} has {len(copy.trainable_weights)} trainable "
            f"weights, the model {len(model.trainable_weights)}."
        )
    pairs = list(zip(model.trainable_weights, copy.trainable_weights))
    source_frozen, target_frozen = model.non_trainable_weights, copy.non_trainable_weights
    if [w.shape for w in source_frozen] == [w.shape for w in target_frozen]:
        # e.g. normalization statistics; a stateless copy of a stateful model
        # has fewer (no carried states) and skips them.
        pairs += list(zip(source_frozen, target_frozen))
    for source, target in pairs:
        target.assign(keras.ops.copy(source))
    if weights_dtype == "auto":
        float32_mb = 4 * model.count_params() / 1e6
        weights_dtype = "float16" if float32_mb > max_megabytes else "float32"
    with atomic_path(path) as tmp:
        copy.save(tmp)
        if weights_dtype == "float16":
            # The temporary file is private, so it is converted in place.
            _write_float16_copy(tmp, tmp)
    return weights_dtype


def store_weights_as_float16(path):
    """Rewrites the float32 arrays of a `.keras` file's weights as float16.

    The converted file is built at a temporary path and replaces `path` in one
    rename; if anything fails, `path` keeps its float32 content.

    Raises:
        FileNotFoundError: there is no file at `path`.
        ValueError: `path` is not a `.keras` file with weights.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No `.keras` file at {path!r}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"`path` must be a `.keras` file (a zip archive); {path!r} is not one "
            "(damaged or another format)."
        )
    with zipfile.ZipFile(path) as archive:
        if _WEIGHTS not in archive.namelist():
            raise ValueError(f"{path!r} holds no {_WEIGHTS}: not a `.keras` model file.")
    with atomic_path(path) as tmp:
        _write_float16_copy(path, tmp)


def _write_float16_copy(source, target):
    """Writes to `target` the `.keras` file `source` with float16 weights."""
    import h5py

    with zipfile.ZipFile(source) as archive:
        members = [(info, archive.read(info.filename)) for info in archive.infolist()]
    converted = []
    for info, data in members:
        if info.filename == _WEIGHTS:
            # Copying into a fresh store (instead of rewriting in place) leaves
            # no unused space behind.
            packed = io.BytesIO()
            with h5py.File(io.BytesIO(data), "r") as old, h5py.File(packed, "w") as new:
                _copy_group(old, new)
            data = packed.getvalue()
        converted.append((info.filename, data))
    with open(target, "wb") as f:
        with zipfile.ZipFile(f, "w") as archive:
            for name, data in converted:
                archive.writestr(name, data)
        f.flush()
        os.fsync(f.fileno())


def _copy_group(source, target):
    for key, value in source.attrs.items():
        target.attrs[key] = value
    for name, item in source.items():
        if hasattr(item, "dtype"):
            data = item[()]
            if item.dtype == np.float32:
                data = data.astype(np.float16)
            target.create_dataset(name, data=data)
            for key, value in item.attrs.items():
                target[name].attrs[key] = value
        else:
            _copy_group(item, target.create_group(name))
