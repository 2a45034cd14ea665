"""Greedy and beam search over a `next(prompt, cache, index)` function.

Both searches use the keras-hub sampler contract: `prompt` is an int tensor
`(batch, max_length)` whose position `index - 1` holds the last token,
`cache` is a nested structure of tensors whose leading axis is the batch,
and

    logits, hidden, cache = next(prompt, cache, index)

returns the logits `(batch, vocab)` of the token at position `index` and the
updated cache. Greedy search is `keras_hub.samplers.GreedySampler`. Beam
search is written here because the keras-hub `BeamSampler` has no length
penalty, no n-best output and reorders every cache entry at every step,
including an encoder memory that is the same for all beams of a sentence.
"""

import math

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable

_NEG = -1e9  # a finite "minus infinity": keeps top_k and sums free of NaN


def _check_id(value, name, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        expected = "an int >= 0 or None" if allow_none else "an int >= 0"
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")


def gnmt_length_penalty(lengths, alpha):
    """The length penalty of Wu et al. (2016): $((5 + |Y|) / 6)^\\alpha$.

    Args:
        lengths: tensor of sequence lengths (counting the end token).
        alpha: float >= 0; 0 gives 1 (no penalty).

    Returns:
        A float32 tensor of the shape of `lengths`.
    """
    lengths = ops.cast(lengths, "float32")
    return ops.power((5.0 + lengths) / 6.0, alpha)


def mask_after_end(tokens, end_token_id, start=0, pad_token_id=0):
    """Replaces every token after the first `end_token_id` by `pad_token_id`.

    Positions before `start` (the prompt) are left as they are.

    Args:
        tokens: int tensor `(..., length)`.
        end_token_id: int.
        start: int, the first generated position.
        pad_token_id: int.

    Returns:
        An int tensor of the shape of `tokens`.
    """
    tokens = ops.convert_to_tensor(tokens)
    positions = ops.arange(ops.shape(tokens)[-1])
    generated = positions >= start
    is_end = ops.logical_and(ops.equal(tokens, end_token_id), generated)
    # Number of end tokens strictly before each position.
    ends_before = ops.cumsum(ops.cast(is_end, "int32"), axis=-1) - ops.cast(is_end, "int32")
    keep = ops.logical_or(ops.logical_not(generated), ends_before == 0)
    return ops.where(keep, tokens, ops.cast(pad_token_id, tokens.dtype))


def greedy_search(next, prompt, cache=None, index=1, end_token_id=None, pad_token_id=0, model=None):
    """Greedy decoding with `keras_hub.samplers.GreedySampler`.

    Args:
        next: `next(prompt, cache, index) -> (logits, hidden, cache)`.
        prompt: int tensor `(batch, max_length)`, filled up to `index - 1`.
        cache: nested tensors with a leading batch axis.
        index: int, the first position to generate.
        end_token_id: optional int; the loop stops once every row has it, and
            tokens after it are replaced by `pad_token_id`.
        pad_token_id: int.
        model: the Keras model whose variables `next` reads (the keras-hub
            sampler needs it on the JAX backend).

    Returns:
        `(batch, max_length)` int tokens.
    """
    from kzoo.generation.samplers import keras_hub_samplers

    _check_id(end_token_id, "end_token_id", allow_none=True)
    _check_id(pad_token_id, "pad_token_id")

    GreedySampler = keras_hub_samplers().GreedySampler
    prompt = ops.convert_to_tensor(prompt, "int32")
    stop = None if end_token_id is None else [end_token_id]
    tokens = GreedySampler()(
        next, prompt, cache=cache, index=index, stop_token_ids=stop, model=model
    )
    if end_token_id is not None:
        tokens = mask_after_end(tokens, end_token_id, index, pad_token_id)
    return tokens


@register_serializable
class BeamSearch:
    """Beam search with the GNMT length penalty, n-best output and static
    (per-sentence) cache entries.

    At each step every live beam is extended by every token; a finished beam
    (it produced `end_token_id`) is extended only by `pad_token_id` at zero
    cost, so it competes unchanged. Candidates are ranked by

    $$s(Y) = \\frac{\\log P(Y \\mid X)}{((5 + |Y|) / 6)^\\alpha}$$

    (Wu et al., 2016), with $|Y|$ counting generated tokens up to and
    including the end token, and the best `beam_width` are kept. The loop
    stops when all beams of all sentences have finished or at the last
    position.

    Cache entries named in `static_keys` (for example the encoder memory, its
    mask and projected keys) are repeated once per beam and never reordered:
    all beams of a sentence share them.

    Args:
        beam_width: int >= 1.
        length_penalty: float >= 0, the GNMT $\\alpha$ (0: no penalty).
        num_results: int in [1, beam_width], how many hypotheses to return
            per sentence (n-best), best first.
        end_token_id: optional int that finishes a hypothesis.
        pad_token_id: int written after the end token.

    Call arguments:
        next: `next(prompt, cache, index) -> (logits, hidden, cache)` as in
            keras-hub samplers; it is called on `batch * beam_width` rows.
        prompt: int tensor `(batch, max_length)`, filled up to `index - 1`.
        cache: None or a dict of tensors with a leading batch axis.
        index: int, the first position to generate.
        static_keys: names of `cache` entries that are not updated by `next`.

    Returns:
        `(tokens, scores)`: `(batch, num_results, max_length)` ints and the
        `(batch, num_results)` length-penalized log-probabilities.

    Example:

    >>> search = BeamSearch(beam_width=4, length_penalty=0.6, end_token_id=2)
    >>> tokens, scores = search(next, prompt, cache, index=1)

    Reference:
        Wu et al., "Google's Neural Machine Translation System: Bridging the
        Gap between Human and Machine Translation", arXiv:1609.08144, 2016.
    """

    def __init__(
        self,
        beam_width=4,
        length_penalty=0.0,
        num_results=1,
        end_token_id=None,
        pad_token_id=0,
    ):
        if isinstance(beam_width, bool) or not isinstance(beam_width, int):
            raise ValueError(
                f"`beam_width` must be an integer >= 1. Received: beam_width={beam_width!r}"
            )
        if beam_width < 1:
            raise ValueError(f"`beam_width` must be >= 1. Received: beam_width={beam_width}")
        if not isinstance(num_results, int) or not 1 <= num_results <= beam_width:
            raise ValueError(
                "`num_results` must be an integer in [1, beam_width="
                f"{beam_width}]. Received: num_results={num_results!r}"
            )
        if (
            isinstance(length_penalty, bool)
            or not isinstance(length_penalty, (int, float))
            or not math.isfinite(length_penalty)
            or length_penalty < 0
        ):
            raise ValueError(
                "`length_penalty` (GNMT alpha) must be a number >= 0. Received: "
                f"length_penalty={length_penalty!r}"
            )
        for name, value in (("end_token_id", end_token_id), ("pad_token_id", pad_token_id)):
            _check_id(value, name, allow_none=name == "end_token_id")
        self.beam_width = beam_width
        self.length_penalty = float(length_penalty)
        self.num_results = num_results
        self.end_token_id = end_token_id
        self.pad_token_id = pad_token_id

    def get_config(self):
        return {
            "beam_width": self.beam_width,
            "length_penalty": self.length_penalty,
            "num_results": self.num_results,
            "end_token_id": self.end_token_id,
            "pad_token_id": self.pad_token_id,
        }

    def __call__(self, next, prompt, cache=None, index=1, static_keys=()):
        k = self.beam_width
        prompt = ops.convert_to_tensor(prompt, "int32")
        if len(prompt.shape) != 2:
            raise ValueError(
                "`prompt` must have shape (batch, max_length). Received shape "
                f"{tuple(prompt.shape)}."
            )
        batch = ops.shape(prompt)[0]
        max_length = prompt.shape[1]
        cache = {} if cache is None else dict(cache)
        unknown = set(static_keys) - set(cache)
        if unknown:
            raise ValueError(
                f"`static_keys` {sorted(unknown)} are not in the cache, whose keys "
                f"are {sorted(cache)}."
            )

        def repeat(x):  # (batch, ...) -> (batch * k, ...), beams of a row adjacent
            return ops.repeat(x, k, axis=0)

        static = {name: repeat(cache.pop(name)) for name in static_keys}
        dynamic = keras.tree.map_structure(repeat, cache)
        tokens = ops.reshape(repeat(prompt), (batch, k, max_length))
        # Only beam 0 is live at the start, so the first step yields k distinct
        # tokens instead of k copies of the best one.
        log_probs = ops.tile(
            ops.convert_to_tensor([[0.0] + [_NEG] * (k - 1)], "float32"), (batch, 1)
        )
        finished = ops.zeros((batch, k), "bool")
        lengths = ops.zeros((batch, k), "int32")
        alpha = self.length_penalty
        end_id, pad_id = self.end_token_id, self.pad_token_id

        def cond(tokens, dynamic, index, log_probs, finished, lengths):
            return ops.logical_not(ops.all(finished))

        def body(tokens, dynamic, index, log_probs, finished, lengths):
            flat = ops.reshape(tokens, (-1, max_length))
            logits, _, new_dynamic = next(flat, {**dynamic, **static}, index)
            new_dynamic = {name: new_dynamic[name] for name in dynamic}
            vocab = logits.shape[-1]
            step = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
            step = ops.reshape(step, (batch, k, vocab))
            # A finished beam may only emit `pad` at no cost.
            only_pad = ops.where(ops.arange(vocab) == pad_id, 0.0, _NEG)  # (vocab,)
            step = ops.where(finished[..., None], only_pad, step)
            candidates = log_probs[..., None] + step  # (batch, k, vocab)
            new_lengths = lengths + ops.cast(ops.logical_not(finished), "int32")
            penalty = gnmt_length_penalty(new_lengths, alpha)[..., None]
            ranking = ops.reshape(candidates / penalty, (batch, k * vocab))
            _, best = ops.top_k(ranking, k=k)  # (batch, k), sorted
            beam = best // vocab
            token = ops.cast(best % vocab, "int32")

            def pick(x):  # gather along the beam axis of a (batch, k, ...) tensor
                return ops.take_along_axis(
                    x, ops.reshape(beam, (batch, k) + (1,) * (len(x.shape) - 2)), 1
                )

            log_probs = ops.reshape(
                ops.take_along_axis(ops.reshape(candidates, (batch, k * vocab)), best, axis=1),
                (batch, k),
            )
            was_finished = pick(finished)
            lengths = pick(new_lengths)
            tokens = pick(tokens)
            finished = was_finished
            if end_id is not None:
                finished = ops.logical_or(was_finished, ops.equal(token, end_id))
            column = ops.where(was_finished, ops.cast(pad_id, "int32"), token)
            tokens = ops.slice_update(tokens, (0, 0, index), ops.reshape(column, (batch, k, 1)))
            # Rows of the flat (batch * k) cache follow their chosen beam.
            flat_beam = ops.reshape(beam + ops.arange(batch)[:, None] * k, (-1,))  # (batch * k,)
            dynamic = keras.tree.map_structure(
                lambda x: ops.take(x, flat_beam, axis=0), new_dynamic
            )
            return tokens, dynamic, index + 1, log_probs, finished, lengths

        tokens, _, _, log_probs, finished, lengths = ops.while_loop(
            cond,
            body,
            (tokens, dynamic, ops.convert_to_tensor(index, "int32"), log_probs, finished, lengths),
            maximum_iterations=max_length - index,
        )
        scores = log_probs / gnmt_length_penalty(lengths, alpha)
        # Unfinished beams that ran out of room keep their penalized scores.
        scores, order = ops.top_k(scores, k=self.num_results)
        tokens = ops.take_along_axis(tokens, order[..., None], axis=1)
        return tokens, scores
