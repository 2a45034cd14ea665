"""The one generation loop: any sampler over any model with the `next` contract.

A model that can be decoded provides keras-hub's `next` contract:

    generation_cache(batch_size, context=None) -> cache
    generation_step(prompt, cache, index) -> (logits, hidden, cache)

- `cache` is a nested structure of tensors (a tuple, or a dict) whose
  leading axis is the batch. For an RNN it is the recurrent state, so each
  token costs one cell step and no prefix is ever re-run. `context` is what
  the decoding is conditioned on besides the prompt (the source ids of a
  Seq2Seq model, any structure of arrays with a leading batch axis): the
  model encodes it inside `generation_cache`, so the encoder runs in the same
  compiled call as the decoding loop. A model without context is called with
  `context=None`.
- `generation_step` reads the token at `index - 1` of `prompt`
  `(batch, max_length)`, advances the cache by that token and returns the
  logits `(batch, vocabulary_size)` of the token at `index`, a hidden vector
  and the new cache (same structure). `index` is a scalar int tensor.
- Optionally, `generation_static_keys`: a tuple of keys of a dict cache that
  `generation_step` returns unchanged (encoder outputs and their mask); beam
  search then shares them between the beams of a row instead of reordering
  them at every step.
- Optionally, `vocabulary_size`: the prompt ids and sampler options (`k`,
  `num_beams`) are checked against it.

`generate_ids(model, token_ids, prompt_mask, sampler, ...)` fills the positions of
`token_ids` where `prompt_mask` is False, left to right, starting at
position 1 (column 0 must be a prompt token in every row: an LM's first
character, a Seq2Seq's start token). The loop runs inside `predict_on_batch`
of `GenerationLoop`, a small `keras.Model` that holds the decoded model and
the sampler's seed state, so Keras compiles it the way it compiles `predict`:
`jax.jit` on JAX, `tf.function` on TensorFlow. On PyTorch it runs eagerly
under `torch.no_grad`: `torch.compile` unrolls the loop and recompiles it
for every shape, which costs more than it saves unless one shape is decoded
about a thousand times (`benchmarks/generation_speed.py` measures both and
prints the ratio).
The sampler's random state is a variable of that model, carried in and out
of the compiled call.
"""

import keras
import numpy as np
from keras import ops

from kzoo.generation.beam import BeamSampler
from kzoo.generation.samplers import check_sampler, get_sampler
from kzoo.utils.untracked import untracked_cache
from kzoo.utils.validation import (
    check_int,
    check_seed,
    check_token_id,
    check_token_ids,
    concrete_numpy,
)

# Compiled loops and named samplers kept per model (one per sampler object /
# per set of options); older ones are dropped beyond these counts.
MAX_LOOPS = 16
MAX_NAMED_SAMPLERS = 16


def _seed_generators(sampler):
    return [v for v in vars(sampler).values() if isinstance(v, keras.random.SeedGenerator)]


class _VariableView:
    """The variables keras-hub's JAX loop threads through `while_loop`."""

    def __init__(self, layer):
        self.trainable_variables = layer.trainable_variables
        self.non_trainable_variables = layer.non_trainable_variables


def mask_after_stop(token_ids, stop_token_ids, prompt_mask, pad_token_id=0):
    """Replaces every generated token after the first stop token by `pad_token_id`.

    Args:
        token_ids: int tensor `(..., length)`.
        stop_token_ids: sequence of ints.
        prompt_mask: bool tensor of the same shape, True on prompt tokens
            (never replaced, never a stop).
        pad_token_id: int.

    Returns:
        An int tensor of the shape of `token_ids`.
    """
    token_ids = ops.convert_to_tensor(token_ids)
    generated = ops.logical_not(ops.cast(prompt_mask, "bool"))
    is_stop = ops.zeros_like(generated)
    for stop_id in stop_token_ids:
        is_stop = ops.logical_or(is_stop, ops.equal(token_ids, stop_id))
    is_stop = ops.cast(ops.logical_and(is_stop, generated), "int32")
    stops_before = ops.cumsum(is_stop, axis=-1) - is_stop  # stops strictly before
    keep = ops.logical_or(ops.logical_not(generated), stops_before == 0)
    return ops.where(keep, token_ids, ops.cast(pad_token_id, token_ids.dtype))


class GenerationLoop(keras.Model):
    """`predict_on_batch(inputs)` -> generated token ids (and beam scores).

    Args:
        model: a built model with `generation_cache` and `generation_step`.
        sampler: a `keras_hub.samplers.Sampler` or a `BeamSampler`.
        stop_token_ids: optional tuple of ints that end a sequence; tokens
            after the first one are replaced by `pad_token_id`.
        pad_token_id: int.
        jit_compile: `"auto"` (Keras's default for `predict`: XLA on JAX,
            `tf.function` on TensorFlow, eager on PyTorch) or a bool (True on
            PyTorch: `torch.compile`, about 3x faster per call once compiled
            but 10-20 s of compiling per shape even for 8 tokens, see
            `benchmarks/generation_speed.py`).

    Call arguments:
        inputs: dict with `"token_ids"` `(batch, max_length)` int32, the
            prompts padded to the output length; `"prompt_mask"` of the same
            shape, True where the prompt gives the token (column 0 must be
            True); and, for a model with context, `"context"` (passed to
            `generation_cache`).

    Returns:
        dict with `"token_ids"` `(batch, num_results, max_length)` int32 and,
        for beam search, `"scores"` `(batch, num_results)` float32.
    """

    def __init__(
        self, model, sampler, stop_token_ids=(), pad_token_id=0, jit_compile="auto", **kwargs
    ):
        super().__init__(**kwargs)
        if jit_compile != "auto":
            self.jit_compile = jit_compile
        self.generator = model
        self.sampler = sampler
        self.stop_token_ids = tuple(stop_token_ids)
        self.pad_token_id = pad_token_id
        # Tracked so that the compiled call takes the seed state as an input
        # and returns its advanced value (written back by `predict_on_batch`).
        self.sampler_seed_generators = _seed_generators(sampler)
        self.built = True

    def call(self, inputs):
        token_ids = ops.convert_to_tensor(inputs["token_ids"], "int32")
        prompt_mask = ops.cast(inputs["prompt_mask"], "bool")
        model = self.generator
        cache = model.generation_cache(ops.shape(token_ids)[0], context=inputs.get("context"))
        stop = list(self.stop_token_ids) or None
        arguments = dict(cache=cache, index=1, mask=prompt_mask, stop_token_ids=stop)
        if isinstance(self.sampler, BeamSampler):
            static_keys = getattr(model, "generation_static_keys", ())
            tokens, scores = self.sampler(
                model.generation_step,
                token_ids,
                pad_token_id=self.pad_token_id,
                static_keys=static_keys,
                **arguments,
            )
            return {"token_ids": tokens, "scores": scores}
        # keras-hub's loop threads the model's variables through JAX's while_loop.
        tokens = self.sampler(
            model.generation_step, token_ids, model=_VariableView(model), **arguments
        )
        if stop:
            tokens = mask_after_stop(tokens, stop, prompt_mask, self.pad_token_id)
        return {"token_ids": ops.expand_dims(tokens, 1)}


def resolve_sampler(model, sampler, vocabulary_size=None, seed=None, **options):
    """A checked sampler object for `model` from a name or an object.

    A named sampler is made once per set of options and kept on the model
    (untracked), so that its compiled loop is reused and, with `seed=None`,
    its random state carries on from call to call.
    """
    if isinstance(sampler, str):
        key = (sampler, tuple(sorted(options.items())))
        named = untracked_cache(model, "named_samplers", max_size=MAX_NAMED_SAMPLERS)
        sampler = named.get(key, lambda: get_sampler(key[0], seed=seed, **options))
    else:
        sampler = get_sampler(sampler, **options)
    return check_sampler(sampler, vocabulary_size)


def _loop_for(model, sampler, stop_token_ids, pad_token_id):
    loops = untracked_cache(model, "generation_loops", max_size=MAX_LOOPS)
    key = (sampler, stop_token_ids, pad_token_id)
    return loops.get(
        key,
        lambda: GenerationLoop(
            model, sampler, stop_token_ids, pad_token_id, name=f"{model.name}_generation"
        ),
    )


def _check_prompts(token_ids, prompt_mask, vocabulary_size):
    ids = concrete_numpy(token_ids)
    if ids is None or ids.ndim != 2 or ids.shape[0] == 0 or ids.shape[1] < 2:
        raise ValueError(
            "`token_ids` must be a (batch, max_length) int array with batch >= 1 and "
            f"max_length >= 2. Received: {type(token_ids).__name__} of shape "
            f"{getattr(ids, 'shape', None)}"
        )
    if prompt_mask is None:
        mask = np.zeros(ids.shape, bool)
        mask[:, 0] = True
    else:
        mask = concrete_numpy(prompt_mask)
        if mask is None or mask.shape != ids.shape or mask.dtype.kind not in "biu":
            raise ValueError(
                f"`prompt_mask` must be a bool array of the shape of `token_ids` {ids.shape}. "
                f"Received: {type(prompt_mask).__name__} of shape {getattr(mask, 'shape', None)}"
            )
        mask = mask.astype(bool)
    if not mask[:, 0].all():
        raise ValueError(
            "`prompt_mask[:, 0]` must be True: every row needs its first token given "
            f"(rows without it: {np.flatnonzero(~mask[:, 0])[:10].tolist()})."
        )
    if vocabulary_size is not None:
        # Only the prompt positions are read; the others are overwritten.
        check_token_ids(np.where(mask, ids, 0), vocabulary_size, "token_ids")
    return ids.astype("int32"), mask


def _check_id(value, vocabulary_size, name):
    if vocabulary_size is None:
        return check_int(value, name, minimum=0)
    return check_token_id(value, vocabulary_size, name)


def generate_ids(
    model,
    token_ids,
    prompt_mask=None,
    sampler="greedy",
    context=None,
    stop_token_ids=None,
    pad_token_id=0,
    seed=None,
    **sampler_options,
):
    """Fills the positions of `token_ids` where `prompt_mask` is False.

    Args:
        model: a built model with `generation_cache(batch_size, context=None)`
            and `generation_step(prompt, cache, index)` (see the module
            docstring).
        token_ids: `(batch, max_length)` int array: the prompts, padded with
            any id to the output length.
        prompt_mask: `(batch, max_length)` bool array, True on prompt tokens;
            column 0 must be True. Default: only column 0 (one start token).
        sampler: a name (`"greedy"`, `"random"`, `"top_k"`, `"top_p"`,
            `"beam"`) or a sampler object, see `get_sampler`.
        context: what `generation_cache` encodes (e.g. the source ids of a
            Seq2Seq model): an array or a structure of arrays with a leading
            batch axis, or None.
        stop_token_ids: optional int or sequence of ints that end a sequence;
            decoding stops once every row has one, and every token after it
            becomes `pad_token_id`.
        pad_token_id: int written after a stop token.
        seed: optional int. When given, the sampler's random state is reset
            from it first, so equal seeds give equal outputs; with `None` it
            carries on from the previous call.
        **sampler_options: options of a sampler given by name (`temperature`,
            `k`, `p`, `num_beams`, `length_penalty`, `num_results`).

    Returns:
        `(token_ids, scores)`: `(batch, num_results, max_length)` int32 NumPy
        (`num_results` is 1 except for beam search with `num_results > 1`),
        and for beam search `(batch, num_results)` float32 length-penalized
        log-probabilities, best first (`None` for the other samplers).

    Raises:
        ValueError: a bad prompt, mask, id, seed or sampler option.

    Example:

    >>> ids = np.zeros((2, 20), "int32"); ids[:, 0] = start_id
    >>> tokens, scores = generate_ids(model, ids, sampler="beam", num_beams=4,
    ...                               length_penalty=0.6, context=source_ids,
    ...                               stop_token_ids=end_id)
    """
    seed = check_seed(seed)
    vocabulary_size = getattr(model, "vocabulary_size", None)
    ids, mask = _check_prompts(token_ids, prompt_mask, vocabulary_size)
    if stop_token_ids is None:
        stop_token_ids = ()
    elif isinstance(stop_token_ids, (int, np.integer)):
        stop_token_ids = (stop_token_ids,)
    stop_token_ids = tuple(_check_id(i, vocabulary_size, "stop_token_ids") for i in stop_token_ids)
    pad_token_id = _check_id(pad_token_id, vocabulary_size, "pad_token_id")
    sampler = resolve_sampler(model, sampler, vocabulary_size, seed=seed, **sampler_options)
    if seed is not None:
        for i, generator in enumerate(_seed_generators(sampler)):
            generator.state.assign(keras.random.SeedGenerator(seed + i).state.value)
    inputs = {"token_ids": ids, "prompt_mask": mask}
    if context is not None:
        inputs["context"] = context
    loop = _loop_for(model, sampler, stop_token_ids, pad_token_id)
    outputs = loop.predict_on_batch(inputs)
    tokens = np.asarray(outputs["token_ids"], dtype="int32")
    scores = outputs.get("scores")
    return tokens, None if scores is None else np.asarray(scores, dtype="float32")
