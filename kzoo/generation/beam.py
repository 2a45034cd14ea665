"""Beam search with the GNMT length penalty and n-best output.

keras-hub's `BeamSampler` ranks beams by their raw log-probability (short
hypotheses win), returns either one beam or all of them and reorders every
cache entry at every step. `BeamSampler` here takes the same call arguments
as a keras-hub sampler (`next`, `prompt`, `cache`, `index`, `mask`,
`stop_token_ids`), so the one generation loop drives it like the others,
and adds what translation and language modelling need: the length penalty
of Wu et al. (2016), the `num_results` best hypotheses with their scores,
finished beams that stop growing, prompt tokens forced per row, and cache
entries shared by the beams of a row (an encoder memory) that are never
reordered.
"""

import math

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_int

# A finite "minus infinity": sums and `top_k` stay free of NaN and inf.
NEG_INF = -1e9


def length_penalty(lengths, alpha):
    """The GNMT length penalty $lp(Y) = ((5 + |Y|) / 6)^\\alpha$.

    A hypothesis is ranked by $\\log P(Y \\mid X) / lp(Y)$; $\\alpha = 0$
    gives $lp = 1$ (raw log-probabilities), larger $\\alpha$ favours longer
    hypotheses.

    Args:
        lengths: int tensor of hypothesis lengths (generated tokens, the end
            token included).
        alpha: float >= 0.

    Returns:
        A float32 tensor of the shape of `lengths`.

    Reference:
        Wu et al., "Google's Neural Machine Translation System", arXiv:1609.08144,
        2016, section 7.
    """
    lengths = ops.cast(lengths, "float32")
    return ops.power((5.0 + lengths) / 6.0, alpha)


@register_serializable
class BeamSampler:
    """Beam search: the `num_beams` best hypotheses under the GNMT length penalty.

    At every position each live beam is extended by every token; the
    candidates are ranked by

    $$s(Y) = \\frac{\\log P(Y \\mid X)}{((5 + |Y|) / 6)^\\alpha}$$

    and the best `num_beams` are kept, per row. A beam that produced one of
    `stop_token_ids` is finished: it is extended only by `pad_token_id` at no
    cost and no length, so it competes with its final score. At positions
    where `mask` is True (prompt tokens of rows with longer prompts) every
    beam takes the prompt token at no cost. The search ends when every beam
    of every row has finished, or at the last position.

    Call it like a keras-hub sampler; it returns the n best hypotheses and
    their scores instead of one sequence.

    Args:
        num_beams: int >= 1, the beam width (1 is greedy search).
        length_penalty: float >= 0, the GNMT $\\alpha$ (0: raw log-probability).
        num_results: int in [1, num_beams], hypotheses returned per row, best
            first.

    Call arguments:
        next: `next(prompt, cache, index) -> (logits, hidden, cache)`, called
            on `batch * num_beams` rows (the beams of a row adjacent).
        prompt: int tensor `(batch, max_length)`.
        cache: nested tensors whose leading axis is the batch (or `None`).
        index: int, the first position to fill.
        mask: optional bool tensor `(batch, max_length)`, True where the
            prompt gives the token.
        stop_token_ids: optional sequence of ints that finish a hypothesis.
        pad_token_id: int written after a hypothesis has finished.
        static_keys: names of entries of a dict `cache` that `next` never
            changes (encoder outputs): repeated once per beam, never
            reordered.

    Returns:
        `(token_ids, scores)`: `(batch, num_results, max_length)` int32 and
        `(batch, num_results)` float32 length-penalized log-probabilities,
        best first.

    Example:

    >>> sampler = BeamSampler(num_beams=4, length_penalty=0.6, num_results=2)
    >>> token_ids, scores = sampler(next, prompt, cache, index=1, stop_token_ids=[2])

    Reference:
        Wu et al., "Google's Neural Machine Translation System: Bridging the
        Gap between Human and Machine Translation", arXiv:1609.08144, 2016.
    """

    def __init__(self, num_beams=4, length_penalty=0.0, num_results=1):
        self.num_beams = check_int(num_beams, "num_beams", minimum=1)
        if (
            isinstance(length_penalty, bool)
            or not isinstance(length_penalty, (int, float))
            or not math.isfinite(length_penalty)
            or length_penalty < 0
        ):
            raise ValueError(
                "`length_penalty` (the GNMT alpha) must be a finite number >= 0. "
                f"Received: length_penalty={length_penalty!r}"
            )
        self.length_penalty = float(length_penalty)
        self.num_results = check_int(num_results, "num_results", minimum=1)
        if self.num_results > self.num_beams:
            raise ValueError(
                f"`num_results` must be at most `num_beams` ({self.num_beams}). "
                f"Received: num_results={num_results!r}"
            )

    def get_config(self):
        return {
            "num_beams": self.num_beams,
            "length_penalty": self.length_penalty,
            "num_results": self.num_results,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"BeamSampler({options})"

    def __call__(
        self,
        next,
        prompt,
        cache=None,
        index=1,
        mask=None,
        stop_token_ids=None,
        pad_token_id=0,
        static_keys=(),
        **kwargs,
    ):
        k = self.num_beams
        prompt = ops.convert_to_tensor(prompt, "int32")
        if len(prompt.shape) != 2:
            raise ValueError(
                f"`prompt` must have shape (batch, max_length). Received shape {prompt.shape}."
            )
        batch = ops.shape(prompt)[0]
        # A tensor where the length is unknown while tracing (TensorFlow retraces
        # `predict` with a None length once lengths vary).
        max_length = ops.shape(prompt)[1]
        mask = ops.zeros_like(prompt, "bool") if mask is None else ops.cast(mask, "bool")
        static_keys = tuple(static_keys or ())
        if static_keys and not isinstance(cache, dict):
            raise ValueError(
                f"`static_keys` {list(static_keys)} name entries of a dict cache; the "
                f"cache is a {type(cache).__name__}."
            )
        unknown = sorted(set(static_keys) - set(cache)) if static_keys else []
        if unknown:
            raise ValueError(
                f"`static_keys` {unknown} are not in the cache, whose keys are {sorted(cache)}."
            )
        stop_ids = list(stop_token_ids or ())

        def repeat(x):  # (batch, ...) -> (batch * k, ...), the beams of a row adjacent
            return ops.repeat(x, k, axis=0)

        if isinstance(cache, dict):
            static = {name: repeat(cache[name]) for name in static_keys}
            dynamic = {name: repeat(v) for name, v in cache.items() if name not in static}
        else:
            static = None
            dynamic = () if cache is None else keras.tree.map_structure(repeat, cache)
        tokens = ops.reshape(repeat(prompt), (batch, k, -1))
        forced_all = ops.reshape(repeat(mask), (batch, k, -1))
        # Only beam 0 is live at first, so the first step yields k distinct
        # continuations instead of k copies of the best one.
        log_probs = ops.tile(
            ops.convert_to_tensor([[0.0] + [NEG_INF] * (k - 1)], "float32"), (batch, 1)
        )
        finished = ops.zeros((batch, k), "bool")
        lengths = ops.zeros((batch, k), "int32")
        alpha = self.length_penalty

        def full_cache(dynamic):
            return dynamic if static is None else {**dynamic, **static}

        def cond(tokens, dynamic, index, log_probs, finished, lengths):
            return ops.logical_not(ops.all(finished))

        def body(tokens, dynamic, index, log_probs, finished, lengths):
            flat = ops.reshape(tokens, (-1, max_length))  # (batch * k, max_length)
            logits, _, new_cache = next(flat, full_cache(dynamic), index)
            if static is not None:
                new_cache = {name: new_cache[name] for name in dynamic}
            vocabulary_size = logits.shape[-1]
            step = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
            step = ops.reshape(step, (batch, k, vocabulary_size))
            vocabulary = ops.arange(vocabulary_size, dtype="int32")
            # A prompt position allows only the prompt token; a finished beam
            # only `pad`; both at no cost.
            forced = ops.take(forced_all, index, axis=2)  # (batch, k)
            given = ops.take(tokens, index, axis=2)  # (batch, k)
            only_given = ops.where(vocabulary == given[..., None], 0.0, NEG_INF)
            only_pad = ops.where(vocabulary == pad_token_id, 0.0, NEG_INF)
            step = ops.where(forced[..., None], only_given, step)
            step = ops.where(finished[..., None], only_pad[None, None, :], step)
            candidates = log_probs[..., None] + step  # (batch, k, vocabulary)
            grows = ops.logical_not(ops.logical_or(finished, forced))
            new_lengths = lengths + ops.cast(grows, "int32")
            penalty = length_penalty(new_lengths, alpha)[..., None]  # (batch, k, 1)
            ranking = ops.reshape(candidates / penalty, (batch, k * vocabulary_size))
            _, best = ops.top_k(ranking, k=k)  # (batch, k), best first
            beam = best // vocabulary_size
            token = ops.cast(best % vocabulary_size, "int32")

            def pick(x):  # follow the chosen beams along axis 1 of (batch, k, ...)
                indices = ops.reshape(beam, (batch, k) + (1,) * (len(x.shape) - 2))
                return ops.take_along_axis(x, indices, axis=1)

            log_probs = ops.take_along_axis(
                ops.reshape(candidates, (batch, k * vocabulary_size)), best, axis=1
            )
            log_probs = ops.reshape(log_probs, (batch, k))
            was_finished = pick(finished)
            was_forced = pick(forced)
            lengths = pick(new_lengths)
            tokens = pick(tokens)
            finished = was_finished
            for stop_id in stop_ids:
                ends = ops.logical_and(ops.equal(token, stop_id), ops.logical_not(was_forced))
                finished = ops.logical_or(finished, ends)
            column = ops.where(was_finished, ops.cast(pad_token_id, "int32"), token)
            tokens = ops.slice_update(tokens, (0, 0, index), ops.reshape(column, (batch, k, 1)))
            # Rows of the flat (batch * k) cache follow their chosen beam.
            flat_beam = ops.reshape(beam + ops.arange(batch)[:, None] * k, (-1,))
            dynamic = keras.tree.map_structure(lambda x: ops.take(x, flat_beam, axis=0), new_cache)
            return tokens, dynamic, index + 1, log_probs, finished, lengths

        tokens, _, _, log_probs, finished, lengths = ops.while_loop(
            cond,
            body,
            (tokens, dynamic, ops.convert_to_tensor(index, "int32"), log_probs, finished, lengths),
            maximum_iterations=max_length - index,
        )
        # Beams still open at the last position are ranked as they stand.
        scores = log_probs / length_penalty(lengths, alpha)
        scores, order = ops.top_k(scores, k=self.num_results)
        tokens = ops.take_along_axis(tokens, order[..., None], axis=1)
        return tokens, scores
