"""keras-hub samplers, built by name and checked before they run.

kzoo does not reimplement sampling: greedy, temperature, top-k and top-p
sampling are `keras_hub.samplers.GreedySampler`, `RandomSampler`,
`TopKSampler` and `TopPSampler`, driven through their
`sampler(next, prompt, cache, index, mask)` contract. What this module adds is
what those classes leave to the caller: building them by name with a seed,
and rejecting settings that would otherwise fail deep inside a backend or
silently produce NaNs (`temperature <= 0`, `k < 1`, `k` above the vocabulary
size, `p` outside (0, 1]).

keras-hub is imported lazily (it takes seconds and loads TensorFlow), only
when a sampler is built.
"""

import math

import numpy as np

SAMPLER_NAMES = ("greedy", "temperature", "top_k", "top_p")
# NumPy scalars count (np.float32 is no subclass of float); bools do not.
_REAL = (int, float, np.integer, np.floating)
_INTEGER = (int, np.integer)

DEFAULT_K = 5
DEFAULT_P = 0.9


def keras_hub_samplers():
    """The `keras_hub.samplers` module, or an error that says how to install it.

    Raises:
        ModuleNotFoundError: keras-hub is not installed; the message names the
            `kzoo[hub]` extra.
    """
    try:
        from keras_hub import samplers
    except ImportError as e:
        raise ModuleNotFoundError(
            "kzoo's generation (greedy search and the samplers of `generate`) runs "
            "keras-hub's samplers, and keras-hub could not be imported "
            f'({type(e).__name__}: {e}). Install it with `pip install "kzoo[hub]"` '
            "(or `pip install keras-hub`). Beam search (`beam_width > 1`) does not "
            "need it.",
            name="keras_hub",
        ) from e
    return samplers


def _check_temperature(temperature):
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, _REAL)
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise ValueError(
            "`temperature` must be a finite number > 0 (the limit temperature -> 0 "
            f"is sampler='greedy'). Received: temperature={temperature!r}"
        )
    return float(temperature)


def _check_k(k, vocabulary_size=None, name="k"):
    if isinstance(k, bool) or not isinstance(k, _INTEGER) or k < 1:
        raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={k!r}")
    if vocabulary_size is not None and k > vocabulary_size:
        raise ValueError(
            f"`{name}` must be at most the vocabulary size {vocabulary_size}. "
            f"Received: {name}={k!r}"
        )
    return int(k)


def _check_p(p):
    if isinstance(p, bool) or not isinstance(p, _REAL) or not math.isfinite(p) or not 0 < p <= 1:
        raise ValueError(f"`p` must be a number in (0, 1]. Received: p={p!r}")
    return float(p)


def get_sampler(sampler="greedy", temperature=1.0, k=None, p=None, seed=None):
    """Builds a keras-hub sampler by name, with checked arguments.

    | name | keras-hub class | picks the next token |
    | --- | --- | --- |
    | `"greedy"` | `GreedySampler` | argmax of the logits |
    | `"temperature"` | `RandomSampler` | from softmax(logits / T) |
    | `"top_k"` | `TopKSampler` | from the `k` most likely, renormalised |
    | `"top_p"` | `TopPSampler` | from the smallest set whose probability reaches `p` |

    Args:
        sampler: one of the names above, or a `keras_hub.samplers.Sampler`
            instance, which is checked and returned unchanged.
        temperature: T > 0; the logits are divided by it before the softmax.
            Greedy decoding is the limit T -> 0.
        k: int >= 1 for `"top_k"` (default 5); for `"top_p"` an optional
            cut to the `k` most likely tokens before the `p` cut.
        p: float in (0, 1] for `"top_p"` (default 0.9).
        seed: int seed of the random samplers; `None` draws one (from the
            global seed set by `keras.utils.set_random_seed`, if any).

    Returns:
        A `keras_hub.samplers.Sampler`.

    Raises:
        ValueError: an unknown name or an argument out of range.

    Example:

    >>> sampler = get_sampler("top_k", k=10, temperature=0.8, seed=1)
    """
    samplers = keras_hub_samplers()
    if isinstance(sampler, samplers.Sampler):
        check_sampler(sampler)
        return sampler
    if sampler not in SAMPLER_NAMES:
        raise ValueError(
            f"`sampler` must be one of {list(SAMPLER_NAMES)} or a "
            f"keras_hub.samplers.Sampler. Received: sampler={sampler!r}"
        )
    temperature = _check_temperature(temperature)
    if sampler == "greedy":
        return samplers.GreedySampler(temperature=temperature)
    if sampler == "temperature":
        return samplers.RandomSampler(temperature=temperature, seed=seed)
    if sampler == "top_k":
        k = _check_k(DEFAULT_K if k is None else k)
        return samplers.TopKSampler(k=k, temperature=temperature, seed=seed)
    p = _check_p(DEFAULT_P if p is None else p)
    k = None if k is None else _check_k(k)
    return samplers.TopPSampler(p=p, k=k, temperature=temperature, seed=seed)


def check_sampler(sampler, vocabulary_size=None):
    """Raises a `ValueError` if a sampler's settings cannot work.

    Checks `temperature` > 0, `k` in [1, vocabulary_size] and `p` in (0, 1]
    on the keras-hub samplers that have them.

    Args:
        sampler: a `keras_hub.samplers.Sampler`.
        vocabulary_size: optional int; `k` may not exceed it.

    Returns:
        `sampler`.
    """
    samplers = keras_hub_samplers()
    if not isinstance(sampler, samplers.Sampler):
        raise ValueError(
            "`sampler` must be a keras_hub.samplers.Sampler or one of "
            f"{list(SAMPLER_NAMES)}. Received: sampler={sampler!r}"
        )
    _check_temperature(sampler.temperature)
    if isinstance(sampler, samplers.TopKSampler):
        _check_k(sampler.k, vocabulary_size)
    if isinstance(sampler, samplers.TopPSampler):
        _check_p(sampler.p)
        if sampler.k is not None:
            _check_k(sampler.k, vocabulary_size)
    return sampler
