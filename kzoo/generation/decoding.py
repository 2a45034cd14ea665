"""Compiled token-by-token decoding for models whose cache is a recurrent state.

A model that can be decoded provides the keras-hub `next` contract:

    generation_cache(batch_size) -> cache          # a tuple of tensors
    generation_step(prompt, cache, index) -> (logits, hidden, cache)

`generation_step` reads the token at `index - 1` of `prompt`, advances the
cache by that one token and returns the logits of the token at `index`. For
an RNN the cache is its state, so each new token costs one cell step; the
prefix is never run again.

The sampler loop runs inside `predict_on_batch` of a small `keras.Model`
that holds the decoded model and the sampler's seed. Keras compiles that
call the way it compiles `predict` on the active backend (`jax.jit`,
`tf.function`, or the PyTorch predict function under `torch.no_grad`), so
nothing here depends on the backend, and the sampler's random state is
carried in and out of the compiled function like any other variable.
"""

import keras
import numpy as np

from kzoo.generation.samplers import check_sampler, get_sampler


def _seed_generators(sampler):
    return [v for v in vars(sampler).values() if isinstance(v, keras.random.SeedGenerator)]


class _VariableView:
    """The variables keras-hub's JAX loop must thread through `while_loop`."""

    def __init__(self, layer):
        self.trainable_variables = layer.trainable_variables
        self.non_trainable_variables = layer.non_trainable_variables


class DecodingLoop(keras.Model):
    """`predict_on_batch({"token_ids", "prompt_mask"})` -> decoded token ids.

    Args:
        model: a built model with `generation_cache` and `generation_step`.
        sampler: a `keras_hub.samplers.Sampler`.

    Call arguments:
        inputs: dict with `"token_ids"`, `(batch, max_length)` int32 prompts
            padded to the output length, and `"prompt_mask"`, the same shape,
            True where a prompt token is given (kept, not sampled). Column 0
            must be a prompt token for every row.

    Returns:
        `(batch, max_length)` int32: the prompts with every masked-out
        position filled by the sampler, left to right.
    """

    def __init__(self, model, sampler, **kwargs):
        super().__init__(**kwargs)
        self.decoded_model = model
        self.sampler = sampler
        # Tracked so that the compiled call takes the seed state as an input and
        # returns its advanced value (written back by `predict_on_batch`).
        self.sampler_seed_generators = _seed_generators(sampler)
        self.built = True

    def call(self, inputs):
        token_ids = keras.ops.convert_to_tensor(inputs["token_ids"], "int32")
        prompt_mask = keras.ops.cast(inputs["prompt_mask"], "bool")
        cache = self.decoded_model.generation_cache(keras.ops.shape(token_ids)[0])
        return self.sampler(
            self.decoded_model.generation_step,
            token_ids,
            cache=cache,
            index=1,
            mask=prompt_mask,
            model=_VariableView(self.decoded_model),
        )


def _loop_for(model, sampler):
    # Cached outside Keras's attribute tracking so that the loop (which holds
    # the model) does not become a sublayer of the model.
    loops = model.__dict__.setdefault("_kzoo_decoding_loops", {})
    key = id(sampler)
    if key not in loops or loops[key][0] is not sampler:
        loops[key] = (sampler, DecodingLoop(model, sampler, name=f"{model.name}_decoding"))
    return loops[key][1]


def _named_sampler(model, name, **options):
    # One sampler object per (name, options) keeps its compiled loop alive
    # between calls; `seed=` resets its random state when reproducibility
    # is asked for.
    samplers = model.__dict__.setdefault("_kzoo_named_samplers", {})
    key = (name, tuple(sorted(options.items())))
    if key not in samplers:
        samplers[key] = get_sampler(name, **options)
    return samplers[key]


def resolve_sampler(model, sampler, vocabulary_size, **options):
    """A checked sampler object for `model` from a name or an instance."""
    if isinstance(sampler, str):
        sampler = _named_sampler(model, sampler, **options)
    elif options:
        raise ValueError(
            f"Sampler options {sorted(options)} apply only to a sampler given by name; "
            "set them on the sampler object instead."
        )
    return check_sampler(get_sampler(sampler), vocabulary_size)


def decode(model, token_ids, prompt_mask, sampler, seed=None):
    """Fills the positions of `token_ids` where `prompt_mask` is False.

    Args:
        model: a built model with `generation_cache` and `generation_step`.
        token_ids: `(batch, max_length)` int array, prompts padded with any id.
        prompt_mask: `(batch, max_length)` bool array, True on prompt tokens;
            column 0 must be True.
        sampler: a `keras_hub.samplers.Sampler`.
        seed: optional int. When given, the sampler's random state is reset
            from it first, so equal seeds give equal outputs; when `None` the
            sampler's state carries on from its previous call.

    Returns:
        `(batch, max_length)` int32 NumPy array.
    """
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"`seed` must be an int or None. Received: seed={seed!r}")
        for i, generator in enumerate(_seed_generators(sampler)):
            generator.state.assign(keras.random.SeedGenerator(seed + i).state.value)
    from kzoo.utils.validation import check_token_ids, concrete_numpy

    ids = concrete_numpy(token_ids)
    mask = concrete_numpy(prompt_mask)
    if ids is None or ids.ndim != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(
            "`token_ids` must be a non-empty (batch, max_length) int array. Received: "
            f"{type(token_ids).__name__} of shape {getattr(ids, 'shape', None)}"
        )
    if mask is None or mask.shape != ids.shape or mask.dtype.kind not in "biu":
        raise ValueError(
            f"`prompt_mask` must be a bool array of the shape of `token_ids` {ids.shape}. "
            f"Received: {type(prompt_mask).__name__} of shape {getattr(mask, 'shape', None)}"
        )
    if not mask[:, 0].all():
        raise ValueError(
            "`prompt_mask[:, 0]` must be True: every row needs its first token given "
            f"(rows without it: {np.flatnonzero(~mask[:, 0].astype(bool))[:10].tolist()})."
        )
    vocabulary_size = getattr(model, "vocabulary_size", None)
    if vocabulary_size is not None:
        # Only the prompt positions are read; the others are overwritten.
        check_token_ids(np.where(mask, ids, 0), vocabulary_size)
    loop = _loop_for(model, sampler)
    inputs = {
        "token_ids": ids.astype("int32"),
        "prompt_mask": mask.astype("bool"),
    }
    return np.asarray(loop.predict_on_batch(inputs), dtype="int32")
