"""Compact `.keras` files: no optimizer state, optionally float16 weights."""

import os
import tempfile
import zipfile

import keras
import numpy as np

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
    copy.save(path)
    if weights_dtype == "float16":
        store_weights_as_float16(path)
    return weights_dtype


def store_weights_as_float16(path):
    """Rewrites the float32 arrays of a `.keras` file's weights as float16."""
    import h5py

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with tempfile.TemporaryDirectory() as folder:
        original = os.path.join(folder, "original.h5")
        packed = os.path.join(folder, "packed.h5")
        with open(original, "wb") as f:
            f.write(members[_WEIGHTS])
        # Copying into a fresh file (instead of rewriting in place) leaves no
        # unused space behind.
        with h5py.File(original, "r") as old, h5py.File(packed, "w") as new:
            _copy_group(old, new)
        with open(packed, "rb") as f:
            members[_WEIGHTS] = f.read()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


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
