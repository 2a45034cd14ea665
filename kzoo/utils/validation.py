"""Argument and input checks shared by kzoo; each error names the argument.

Token ids outside `[0, vocabulary_size)` never fail loudly on their own: JAX's
gather fills them with NaN, and every backend wraps negative ids around to
the end of the table. So every entry point that takes ids from a user
(`predict`, `evaluate`, `generate`, `tag`, ...) checks them here, on the
host, before anything is compiled or run. Symbolic tensors (inside `fit`,
`model(...)` in a functional graph, a traced function) cannot be checked and
pass through unchanged, as in Keras.
"""

import keras
import numpy as np


def concrete_numpy(x):
    """`x` as a NumPy array when its values exist now, else `None`.

    NumPy arrays, nested lists of numbers and eager backend tensors have
    values; datasets, generators, Keras symbolic tensors and tensors being
    traced (`jax.jit`, `tf.function`) do not, and give `None`.
    """
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple, int, float, np.generic)):
        try:
            return np.asarray(x)
        except (ValueError, TypeError):  # ragged or mixed nesting
            return None
    if isinstance(x, keras.KerasTensor) or not keras.ops.is_tensor(x):
        return None
    try:
        return keras.ops.convert_to_numpy(x)
    except Exception:  # a tensor without values yet (any backend's tracer)
        return None


def check_token_ids(token_ids, vocabulary_size, name="token_ids"):
    """Raises a `ValueError` unless every id is an integer in `[0, vocabulary_size)`.

    Floats are accepted when they hold whole numbers (Keras's `Embedding`
    casts them). Values that cannot be known now (see `concrete_numpy`) are
    not checked.

    Args:
        token_ids: array-like of ids, any shape.
        vocabulary_size: int, the number of rows of the embedding.
        name: the argument's name, for the message.

    Returns:
        `token_ids`, unchanged.
    """
    values = concrete_numpy(token_ids)
    if values is None or values.size == 0:
        return token_ids
    kind = values.dtype.kind
    if kind == "b" or kind not in "iuf":
        raise ValueError(
            f"`{name}` must hold integer token ids. Received an array of dtype "
            f"{values.dtype}: {name}={_preview(values)}"
        )
    if kind == "f":
        whole = np.isfinite(values) & (values == np.round(values))
        if not whole.all():
            index = _first(~whole)
            raise ValueError(
                f"`{name}` must hold integer token ids. Received {values[index]!r} at "
                f"index {index}."
            )
    outside = (values < 0) | (values >= vocabulary_size)
    if outside.any():
        index = _first(outside)
        bad = values[index]
        bad = int(bad) if kind != "f" else float(bad)
        raise ValueError(
            f"`{name}` must hold token ids in [0, {vocabulary_size}) (the vocabulary size "
            f"is {vocabulary_size}). Received {int(outside.sum())} id(s) outside it; the "
            f"first is {bad} at index {index} (negative ids and ids >= the vocabulary "
            "size have no embedding)."
        )
    return token_ids


def check_id_matrix(token_ids, vocabulary_size, name="x"):
    """Concrete ids must be a non-empty `(batch, time)` array of valid ids.

    Returns the NumPy values, or `None` when they are not concrete.
    """
    values = concrete_numpy(token_ids)
    if values is None:
        return None
    if values.ndim != 2 or 0 in values.shape:
        raise ValueError(
            f"`{name}` must be token ids of shape (batch, time) with at least one row "
            f"and one step. Received shape {values.shape}."
        )
    check_token_ids(values, vocabulary_size, name)
    return values


def check_token_id(value, vocabulary_size, name, allow_none=False):
    """Checks one id argument (e.g. `start_token_id`): an int in `[0, vocabulary_size)`."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        expected = "an int or None" if allow_none else "an int"
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    if not 0 <= value < vocabulary_size:
        raise ValueError(
            f"`{name}` must be a token id in [0, {vocabulary_size}) (the vocabulary "
            f"size is {vocabulary_size}). Received: {name}={value!r}"
        )
    return int(value)


def check_number(value, name, low, high, high_inclusive=False):
    """A real number in `[low, high)` (or `[low, high]`); strings and bools refused."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
        or not low <= value
        or not (value <= high if high_inclusive else value < high)
    ):
        interval = f"[{low}, {high}]" if high_inclusive else f"[{low}, {high})"
        raise ValueError(f"`{name}` must be a number in {interval}. Received: {name}={value!r}")
    return float(value)


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be a bool. Received: {name}={value!r}")
    return bool(value)


def check_seed(seed, name="seed"):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"`{name}` must be an int or None. Received: {name}={seed!r}")
    return None if seed is None else int(seed)


def _first(flags):
    index = tuple(int(i) for i in np.argwhere(flags)[0])
    return index[0] if len(index) == 1 else index


def _preview(values):
    text = np.array2string(values.reshape(-1)[:5], separator=", ")
    return text if values.size <= 5 else text[:-1] + ", ...]"


def check_units(units, name="units"):
    if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={units!r}")
    return units


def check_rate(rate, name):
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={rate!r}")
    return float(rate)


def check_choice(value, choices, name):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {sorted(choices, key=str)}. Received: {name}={value!r}"
        )
    return value


def check_mask_dtype(mask, layer_name):
    """Refuses a mask that is neither boolean nor numeric, naming its dtype.

    Runs before `Layer.__call__` converts the mask, whose own error for, say,
    an array of strings does not say which argument was wrong.
    """
    dtype = getattr(mask, "dtype", None)
    if mask is None or dtype is None:
        return
    name = getattr(dtype, "name", None) or str(dtype)
    name = name.replace("tf.", "").replace("torch.", "")
    if name == "bool" or name.startswith(("int", "uint", "float", "bfloat")):
        return
    raise ValueError(
        f"{layer_name}: `mask` must be a boolean (batch, time) tensor (True for valid "
        f"steps). Received a mask of dtype {name}."
    )


def check_int(value, name, minimum=None, allow_none=False):
    """An int (not a bool) `>= minimum` when `minimum` is given; `None` if allowed."""
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or (minimum is not None and value < minimum)
    ):
        expected = "an int" if minimum is None else f"an int >= {minimum}"
        if allow_none:
            expected += " or None"
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    return int(value)


def check_finite_array(values, name, ndim=None):
    """A float64 NumPy array of finite numbers (of rank `ndim` when given).

    The error for NaN or infinite values gives their count and the index of
    the first; strings, ragged lists and other non-numbers are refused.
    """
    if values is None or isinstance(values, (str, bytes)):
        raise ValueError(f"`{name}` must be an array of numbers. Received: {name}={values!r:.80}")
    try:
        array = np.asarray(values, dtype="float64")
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"`{name}` must be an array of numbers (a ragged list or non-numeric values "
            f"cannot be read): {e}"
        ) from None
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"`{name}` must be {ndim}-D. Received shape {array.shape}.")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(
            f"`{name}` contains {int(bad.sum())} NaN or infinite value(s); the first "
            f"is at index {_first(bad)}. Fill or drop missing values first."
        )
    return array
