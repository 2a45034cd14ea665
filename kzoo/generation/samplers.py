"""Samplers by name, checked before they run.

kzoo does not reimplement sampling: greedy, temperature, top-k and top-p
sampling are `keras_hub.samplers.GreedySampler`, `RandomSampler`,
`TopKSampler` and `TopPSampler`, driven through their
`sampler(next, prompt, cache, index, mask)` contract. Beam search is kzoo's
`BeamSampler` (kzoo/generation/beam.py: length penalty, n-best), which takes
the same call arguments. What this module adds is what those classes leave to
the caller: building them by name with their options, and rejecting settings
that would otherwise fail deep inside a backend or silently produce NaNs
(`temperature <= 0`, `k < 1`, `k` above the vocabulary size, `p` outside
(0, 1], more beams than tokens).

keras-hub is imported lazily (it takes seconds), only when one of its
samplers is built; it works without TensorFlow.
"""

import math
import sys

import numpy as np

from kzoo.generation.beam import BeamSampler

SAMPLER_NAMES = ("greedy", "random", "top_k", "top_p", "beam")
# Earlier name of "random", still accepted.
ALIASES = {"temperature": "random"}
# The options each named sampler takes (besides `seed`, which the
# deterministic ones ignore).
SAMPLER_OPTIONS = {
    "greedy": ("temperature",),
    "random": ("temperature",),
    "top_k": ("k", "temperature"),
    "top_p": ("p", "k", "temperature"),
    "beam": ("num_beams", "length_penalty", "num_results"),
}
# NumPy scalars count (np.float32 is no subclass of float); bools do not.
_REAL = (int, float, np.integer, np.floating)
_INTEGER = (int, np.integer)

DEFAULT_K = 5
DEFAULT_P = 0.9


def keras_hub_samplers():
    """The `keras_hub.samplers` module.

    Raises:
        ImportError: keras-hub is not installed; the message says
            `pip install "kzoo[hub]"`.
    """
    from kzoo.utils.optional import require

    return require("keras_hub", extra="hub", feature="Sampling (kzoo.generation)").samplers


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


def is_sampler(sampler):
    """Whether `sampler` is a kzoo `BeamSampler` or a keras-hub `Sampler`."""
    if isinstance(sampler, BeamSampler):
        return True
    # An instance of a keras-hub class (or of a subclass) exists only once
    # keras-hub has been imported; asking does not import it.
    samplers = sys.modules.get("keras_hub.samplers")
    return samplers is not None and isinstance(sampler, samplers.Sampler)


def get_sampler(sampler="greedy", seed=None, **options):
    """Builds a sampler by name, with checked options.

    | name | class | picks the next token | options |
    | --- | --- | --- | --- |
    | `"greedy"` | `keras_hub.samplers.GreedySampler` | argmax of the logits | |
    | `"random"` | `keras_hub.samplers.RandomSampler` | from softmax(logits / T) | `temperature` |
    | `"top_k"` | `keras_hub.samplers.TopKSampler` | from the `k` most likely | `k`, `temperature` |
    | `"top_p"` | `keras_hub.samplers.TopPSampler` | from the nucleus of mass `p` | `p`, `k`, `temperature` |
    | `"beam"` | `kzoo.generation.BeamSampler` | the best `num_beams` hypotheses | `num_beams`, `length_penalty`, `num_results` |

    `"temperature"` is accepted as the earlier name of `"random"`.

    Args:
        sampler: one of the names above, or a sampler object (a
            `keras_hub.samplers.Sampler` or a `BeamSampler`), checked and
            returned unchanged.
        seed: int seed of the random samplers; `None` draws one (from the
            global seed set by `keras.utils.set_random_seed`, if any). The
            greedy and beam samplers ignore it.
        **options: the options of the named sampler:
            `temperature` (T > 0, default 1: logits are divided by T),
            `k` (int >= 1; default 5 for `"top_k"`, an optional extra cut for
            `"top_p"`), `p` (in (0, 1], default 0.9), `num_beams` (default
            4), `length_penalty` (GNMT alpha >= 0, default 0),
            `num_results` (n-best, default 1).

    Returns:
        The sampler.

    Raises:
        ValueError: an unknown name, an option the sampler does not take, or
            an option out of range.
        ImportError: a keras-hub sampler without keras-hub installed.

    Example:

    >>> sampler = get_sampler("top_k", k=10, temperature=0.8, seed=1)
    >>> beam = get_sampler("beam", num_beams=5, length_penalty=0.6, num_results=3)
    """
    if not isinstance(sampler, str):
        if options:
            raise ValueError(
                f"Sampler options {sorted(options)} apply only to a sampler given by "
                "name; set them on the sampler object instead."
            )
        return check_sampler(sampler)
    name = ALIASES.get(sampler, sampler)
    if name not in SAMPLER_NAMES:
        raise ValueError(
            f"`sampler` must be one of {list(SAMPLER_NAMES)} or a sampler object "
            f"(keras_hub.samplers.Sampler, kzoo.generation.BeamSampler). Received: sampler={sampler!r}"
        )
    extra = sorted(set(options) - set(SAMPLER_OPTIONS[name]))
    if extra:
        raise ValueError(
            f"sampler={sampler!r} takes the options {list(SAMPLER_OPTIONS[name])}, not "
            f"{extra}. Received: {', '.join(f'{o}={options[o]!r}' for o in extra)}"
        )
    if name == "beam":
        return BeamSampler(**options)
    samplers = keras_hub_samplers()
    temperature = _check_temperature(options.get("temperature", 1.0))
    if name == "greedy":
        return samplers.GreedySampler(temperature=temperature)
    if name == "random":
        return samplers.RandomSampler(temperature=temperature, seed=seed)
    k = options.get("k")
    if name == "top_k":
        k = _check_k(DEFAULT_K if k is None else k)
        return samplers.TopKSampler(k=k, temperature=temperature, seed=seed)
    p = _check_p(options.get("p", DEFAULT_P))
    k = None if k is None else _check_k(k)
    return samplers.TopPSampler(p=p, k=k, temperature=temperature, seed=seed)


def check_sampler(sampler, vocabulary_size=None):
    """Raises a `ValueError` if a sampler's settings cannot work.

    Checks `temperature` > 0, `k` in [1, vocabulary_size] and `p` in (0, 1]
    on the keras-hub samplers that have them, and `num_beams` <=
    vocabulary_size for beam search. keras-hub's own `BeamSampler` is refused
    with `return_all_beams=True` (use kzoo's `BeamSampler` and `num_results`
    for n-best output).

    Args:
        sampler: a `keras_hub.samplers.Sampler` or a `BeamSampler`.
        vocabulary_size: optional int, the number of tokens to choose from.

    Returns:
        `sampler`.
    """
    if isinstance(sampler, BeamSampler):
        _check_k(sampler.num_beams, vocabulary_size, name="num_beams")
        return sampler
    if not is_sampler(sampler):
        raise ValueError(
            "`sampler` must be a keras_hub.samplers.Sampler, a kzoo.generation.BeamSampler "
            f"or one of {list(SAMPLER_NAMES)}. Received: sampler={sampler!r}"
        )
    samplers = keras_hub_samplers()
    _check_temperature(sampler.temperature)
    if isinstance(sampler, samplers.TopKSampler):
        _check_k(sampler.k, vocabulary_size)
    if isinstance(sampler, samplers.TopPSampler):
        _check_p(sampler.p)
        if sampler.k is not None:
            _check_k(sampler.k, vocabulary_size)
    if isinstance(sampler, samplers.BeamSampler):
        if sampler.return_all_beams:
            raise ValueError(
                "keras_hub.samplers.BeamSampler(return_all_beams=True) returns beams in "
                "another format; use kzoo.generation.BeamSampler(num_results=...) for "
                "n-best output."
            )
        _check_k(sampler.num_beams, vocabulary_size, name="num_beams")
    return sampler
