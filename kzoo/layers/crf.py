"""Linear-chain conditional random field (CRF) for sequence tagging.

`CRF` is a layer that holds the tag-transition scores and implements the
forward algorithm (`log_likelihood`), the training loss
(`negative_log_likelihood`, the one CRF loss of kzoo: `SequenceTagger` trains
with it) and Viterbi decoding (`viterbi_decode`, also its `call`). It is pure
`keras.ops` (the time loop is `keras.ops.scan`), so it runs eagerly and
compiled on the TensorFlow, JAX and PyTorch backends.
"""

import keras
import numpy as np
from keras import ops

from kzoo.backend.spec import static_shape
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_int, concrete_numpy


# The scan bodies are module-level functions that get the CRF weights in the
# carry instead of closing over them: JAX then reuses one trace and
# compilation across eager calls of the same shapes.
def _forward_step(carry, x_t):
    """Forward algorithm and gold-path score, one time step.

    `x_t` packs the step's emissions, gold tag and mask as
    `[e_t (K), y_t, m_t]` floats (see `_pack`); the weights ride in the carry.
    """
    alpha, score, prev, seen, trans, start = carry
    k = ops.shape(trans)[0]
    e_t, y_t, m_t = _unpack(x_t, k, has_tags=True)
    y_t = ops.cast(y_t, "int32")
    # (batch, from, to), reduced over `from`
    recur = ops.logsumexp(alpha[:, :, None] + trans[None], axis=1) + e_t
    first = start[None, :] + e_t
    new_alpha = ops.where(m_t[:, None], ops.where(seen[:, None], recur, first), alpha)
    e_y = ops.squeeze(ops.take_along_axis(e_t, y_t[:, None], axis=1), 1)
    trans_flat = ops.reshape(trans, (-1,))
    link = ops.where(seen, ops.take(trans_flat, prev * k + y_t), ops.take(start, y_t))
    new_score = score + ops.where(m_t, e_y + link, ops.zeros_like(e_y))
    new_prev = ops.where(m_t, y_t, prev)
    new_seen = ops.logical_or(seen, m_t)
    new_carry = (new_alpha, new_score, new_prev, new_seen, trans, start)
    # The TensorFlow scan needs per-step outputs shaped like the carry.
    return new_carry, new_carry


def first_argmax(x, axis):
    """`ops.argmax` (first maximum) from max/compare/min only.

    Keras's TensorFlow argmax adds bitwise ops that LiteRT has no builtin
    kernel for; this form converts to builtin ops and picks the same index.
    """
    size = x.shape[axis] if x.shape[axis] is not None else ops.shape(x)[axis]
    shape = [1] * len(x.shape)
    shape[axis] = -1
    index = ops.reshape(ops.arange(size, dtype="int32"), shape)
    is_best = ops.equal(x, ops.max(x, axis=axis, keepdims=True))
    return ops.min(ops.where(is_best, index, size), axis=axis)


def _viterbi_step(carry, x_t):
    """Viterbi max-product recursion with back-pointers, one time step.

    `x_t` packs `[e_t (K), m_t]` as floats; the weights ride in the carry.
    """
    delta, seen, _, trans, start, identity = carry
    e_t, _, m_t = _unpack(x_t, ops.shape(trans)[0], has_tags=False)
    cand = delta[:, :, None] + trans[None]  # (batch, from, to)
    best_prev = first_argmax(cand, axis=1)
    recur = ops.max(cand, axis=1) + e_t
    first = start[None, :] + e_t
    new_delta = ops.where(m_t[:, None], ops.where(seen[:, None], recur, first), delta)
    link = ops.logical_and(m_t, seen)
    # A no-op step points every tag to itself, so backtracking passes through.
    pointers = ops.where(link[:, None], best_prev, identity[None, :])
    new_carry = (new_delta, ops.logical_or(seen, m_t), pointers, trans, start, identity)
    return new_carry, new_carry


def _backtrack_step(carry, x_t):
    """Follows back-pointers one step towards the start.

    `x_t` packs `[pointers (K), m_t]` as int32.
    """
    cur, _ = carry
    ptr_t, m_t = x_t[:, :-1], ops.greater(x_t[:, -1], 0)
    out = ops.where(m_t, cur, ops.zeros_like(cur))
    new_cur = ops.squeeze(ops.take_along_axis(ptr_t, cur[:, None], axis=1), 1)
    new_carry = (new_cur, out)
    return new_carry, new_carry


def _pack(values, mask, tags=None):
    """One time-major tensor `(time, batch, K + extra)` of the per-step inputs.

    Keras's TensorFlow `scan` fails when several sequences with an unknown
    time length are scanned together, so every per-step input travels in one
    tensor: values, then the tags (if any), then the mask, cast to the
    values' dtype (tag ids are small integers, exact in float).
    """
    columns = [values]
    if tags is not None:
        columns.append(ops.cast(tags, values.dtype)[..., None])
    columns.append(ops.cast(mask, values.dtype)[..., None])
    return ops.transpose(ops.concatenate(columns, axis=-1), (1, 0, 2))


def _unpack(x_t, k, has_tags):
    """`(e_t, y_t, m_t)` from a step packed by `_pack`; `y_t` is None without tags."""
    y_t = x_t[:, k] if has_tags else None
    return x_t[:, :k], y_t, ops.greater(x_t[:, -1], 0.5)


@register_serializable
class CRF(keras.layers.Layer):
    """Linear-chain conditional random field over per-step emission scores.

    For emission scores $e_t \\in R^{K}$ (K = `num_tags`) and a tag path
    $y_1..y_n$ the CRF scores the path as

    $$s(y) = a_{y_1} + \\sum_{t=1}^{n} e_{t, y_t}
             + \\sum_{t=2}^{n} A_{y_{t-1}, y_t} + b_{y_n}$$

    with `start_scores` $a$, `transitions` $A$ (row = from, column = to) and
    `end_scores` $b$, and defines $p(y | e) = \\exp(s(y)) / Z$ with
    $\\log Z = \\log \\sum_{y'} \\exp(s(y'))$, computed by the forward algorithm

    $$\\alpha_1 = a + e_1, \\quad
      \\alpha_t = e_t + \\operatorname{logsumexp}_i(\\alpha_{t-1, i} + A_{i, :}),
      \\quad \\log Z = \\operatorname{logsumexp}(\\alpha_n + b).$$

    Viterbi decoding replaces logsumexp by max and keeps back-pointers.

    Masks: the CRF sees, in order, only the steps where the mask is true. A
    masked step is a no-op (the forward/Viterbi state passes through it
    unchanged), so right padding, left padding and even holes give the same
    result as the unpadded sequence. A row with no valid step has
    log-likelihood 0, best score 0 and decoded tags 0, and so does every row
    of emissions with zero time steps. Decoded tags at masked steps are 0.

    Precision: scores are computed in the layer's variable dtype (float32
    under a `mixed_float16`/`mixed_bfloat16` policy; float64 for
    `dtype="float64"` where the backend computes in float64), because long
    log-sum-exp chains lose accuracy in half precision.

    Args:
        num_tags: int, number of tags K (>= 1).
        transitions_initializer: initializer of `transitions` (K, K).
        boundary_initializer: initializer of `start_scores` and `end_scores`.
        transitions_regularizer: optional regularizer of `transitions`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        emissions: float tensor (batch, time, num_tags), e.g. a `Dense` output.
        mask: optional bool tensor (batch, time); taken from Keras masking
            (e.g. `Embedding(mask_zero=True)`) when not given.
        training: unused (decoding has no training behaviour); train with
            `negative_log_likelihood` as the loss (see below).

    Returns:
        int32 tensor (batch, time) of the Viterbi tags (0 at masked steps).

    Training: the loss is `negative_log_likelihood(emissions, tags, mask)`,
    the mean of $-\\log p(y | e)$ over the sequences. A model computes its
    emission scores in the functional graph and returns this loss from its
    `compute_loss` (as `kzoo.models.SequenceTagger` does); the CRF weights
    are trained with it, and the decoded tags come from `call`.

    Example:

    ```python
    crf = CRF(5)
    emissions = keras.random.normal((2, 7, 5))
    tags = crf(emissions)                             # (2, 7) int32
    ll = crf.log_likelihood(emissions, tags)          # (2,)
    loss = crf.negative_log_likelihood(emissions, tags)  # scalar
    tags, best = crf.viterbi_decode(emissions, return_scores=True)
    ```

    Reference:
        Lafferty, McCallum, Pereira, "Conditional Random Fields: Probabilistic
        Models for Segmenting and Labeling Sequence Data", ICML 2001.
        Lample et al., "Neural Architectures for Named Entity Recognition",
        NAACL 2016 (BiLSTM-CRF with start/end scores).
    """

    def __init__(
        self,
        num_tags,
        transitions_initializer="glorot_uniform",
        boundary_initializer="zeros",
        transitions_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_tags = check_int(num_tags, "num_tags", minimum=1)
        self.transitions_initializer = keras.initializers.get(transitions_initializer)
        self.boundary_initializer = keras.initializers.get(boundary_initializer)
        self.transitions_regularizer = keras.regularizers.get(transitions_regularizer)
        self.supports_masking = True

    def build(self, input_shape=None):
        if input_shape is not None:
            self._check_emissions_shape(tuple(input_shape))
        k = self.num_tags
        self.transitions = self.add_weight(
            name="transitions",
            shape=(k, k),
            initializer=self.transitions_initializer,
            regularizer=self.transitions_regularizer,
        )
        self.start_scores = self.add_weight(
            name="start_scores", shape=(k,), initializer=self.boundary_initializer
        )
        self.end_scores = self.add_weight(
            name="end_scores", shape=(k,), initializer=self.boundary_initializer
        )
        self.built = True

    # ------------------------------------------------------------------ checks
    def _check_emissions_shape(self, shape):
        if len(shape) != 3 or (shape[-1] is not None and shape[-1] != self.num_tags):
            raise ValueError(
                "CRF expects emissions of shape (batch, time, num_tags="
                f"{self.num_tags}). Received emissions with shape {shape}."
            )

    def _prepare(self, emissions, mask, tags=None):
        """Validates inputs; returns emissions, a bool mask and int32 tags."""
        if not self.built:
            self.build(static_shape(emissions))
        e_shape = static_shape(emissions)
        self._check_emissions_shape(e_shape)
        emissions = ops.cast(emissions, self.variable_dtype)
        if mask is None:
            mask = ops.ones(ops.shape(emissions)[:2], dtype="bool")
        else:
            m_shape = static_shape(mask)
            if len(m_shape) != 2 or any(
                a is not None and b is not None and a != b for a, b in zip(m_shape, e_shape[:2])
            ):
                raise ValueError(
                    "CRF mask must have shape (batch, time) = "
                    f"{e_shape[:2]} matching the emissions {e_shape}. "
                    f"Received mask with shape {m_shape}."
                )
            mask = ops.cast(mask, "bool")
        if tags is None:
            return emissions, mask, None
        t_shape = static_shape(tags)
        if len(t_shape) != 2 or any(
            a is not None and b is not None and a != b for a, b in zip(t_shape, e_shape[:2])
        ):
            raise ValueError(
                f"CRF tags must have shape (batch, time) = {e_shape[:2]} matching "
                f"the emissions {e_shape}. Received tags with shape {t_shape}."
            )
        tags_np = concrete_numpy(tags)
        mask_np = concrete_numpy(mask)
        if tags_np is not None and tags_np.dtype.kind not in "iuf":
            raise ValueError(
                f"CRF tags must be integer tag ids. Received tags of dtype {tags_np.dtype}."
            )
        if tags_np is not None and mask_np is not None:
            valid = tags_np[mask_np.astype(bool)]
            if valid.dtype.kind == "f":
                # A cast to int32 would silently truncate 1.5 to 1.
                fractional = valid[~(np.isfinite(valid) & (valid == np.round(valid)))]
                if fractional.size:
                    raise ValueError(
                        "CRF tags must be integer tag ids (whole numbers) at unmasked "
                        f"steps. Received non-integer values {fractional[:10].tolist()}."
                    )
            bad = valid[(valid < 0) | (valid >= self.num_tags)]
            if bad.size:
                raise ValueError(
                    f"CRF tags must lie in [0, num_tags={self.num_tags}) at "
                    f"unmasked steps. Received out-of-range values "
                    f"{sorted(set(bad.tolist()))[:10]}."
                )
        tags = ops.cast(tags, "int32")
        # Padding labels (e.g. -1 or -100) at masked steps must not index
        # out of range in the gathers below; their value never matters.
        tags = ops.where(mask, tags, ops.zeros_like(tags))
        return emissions, mask, tags

    # ------------------------------------------------------------- algorithms
    def _forward(self, emissions, mask, tags):
        """One scan computing s(tags), log Z and "row has a valid step"."""
        k = self.num_tags
        trans = ops.convert_to_tensor(self.transitions)
        start = ops.convert_to_tensor(self.start_scores)
        end = ops.convert_to_tensor(self.end_scores)
        batch = ops.shape(emissions)[0]
        if emissions.shape[1] == 0:
            # No step at all: every row is empty (score and log Z are 0, as
            # for a fully masked row); `scan` over zero steps is not portable.
            zero = ops.zeros((batch,), dtype=emissions.dtype)
            return zero, zero

        init = (
            ops.zeros((batch, k), dtype=emissions.dtype),
            ops.zeros((batch,), dtype=emissions.dtype),
            ops.zeros((batch,), dtype="int32"),
            ops.zeros((batch,), dtype="bool"),
            trans,
            start,
        )
        (alpha, score, prev, seen, _, _), _ = ops.scan(
            _forward_step, init, _pack(emissions, mask, tags)
        )
        zero = ops.zeros_like(score)
        log_z = ops.where(seen, ops.logsumexp(alpha + end[None, :], axis=1), zero)
        score = ops.where(seen, score + ops.take(end, prev), zero)
        return score, log_z

    def log_likelihood(self, emissions, tags, mask=None):
        """Log-probability of `tags` under the CRF: s(tags) - log Z.

        Args:
            emissions: float (batch, time, num_tags).
            tags: int (batch, time), values in [0, num_tags) at unmasked steps
                (any value at masked steps). Out-of-range or non-integer values
                (e.g. 1.5) raise a ValueError when the tensors are eager;
                inside compiled graphs values cannot be checked and are not.
            mask: optional bool (batch, time); masked steps are skipped.

        Returns:
            float tensor (batch,) in the layer's variable dtype; 0 for rows
            with no valid step.
        """
        score, log_z = self._forward(*self._prepare(emissions, mask, tags))
        return score - log_z

    def negative_log_likelihood(self, emissions, tags, mask=None, sample_weight=None):
        """The CRF training loss: mean negative log-likelihood per sequence.

        $$L = \\frac{1}{N} \\sum_b w_b \\, (-\\log p(y_b | e_b))$$

        where $N$ counts the sequences with at least one valid step: rows
        that are all padding (e.g. the filler rows of a fixed-size batch)
        add nothing and do not dilute the mean.

        Args:
            emissions: float (batch, time, num_tags).
            tags: int (batch, time) gold tags, as in `log_likelihood`.
            mask: optional bool (batch, time); masked steps are skipped.
            sample_weight: optional float (batch,), one weight per sequence.

        Returns:
            Scalar float tensor in the layer's variable dtype; 0 when no
            sequence has a valid step.
        """
        emissions, mask, tags = self._prepare(emissions, mask, tags)
        score, log_z = self._forward(emissions, mask, tags)
        per_sequence = log_z - score  # (batch,), 0 for empty rows
        if sample_weight is not None:
            w_shape = static_shape(sample_weight)
            if len(w_shape) != 1:
                raise ValueError(
                    "CRF `sample_weight` must hold one weight per sequence, shape (batch,). "
                    f"Received sample_weight with shape {w_shape}."
                )
            per_sequence = per_sequence * ops.cast(sample_weight, per_sequence.dtype)
        sequences = ops.sum(ops.cast(ops.any(mask, axis=1), per_sequence.dtype))
        return ops.sum(per_sequence) / ops.maximum(sequences, 1.0)

    def path_score(self, emissions, tags, mask=None):
        """Unnormalized path score s(tags) (batch,); 0 for rows with no step."""
        score, _ = self._forward(*self._prepare(emissions, mask, tags))
        return score

    def log_partition(self, emissions, mask=None):
        """log Z (batch,) by the forward algorithm; 0 for rows with no step."""
        emissions, mask, _ = self._prepare(emissions, mask)
        dummy = ops.zeros(ops.shape(mask), dtype="int32")
        _, log_z = self._forward(emissions, mask, dummy)
        return log_z

    def viterbi_decode(self, emissions, mask=None, return_scores=False):
        """Most likely tag path by the Viterbi algorithm.

        Args:
            emissions: float (batch, time, num_tags).
            mask: optional bool (batch, time); masked steps are skipped.
            return_scores: also return the best path score s(y*) (batch,).

        Returns:
            int32 (batch, time) best tags (0 at masked steps), and the float
            (batch,) best scores when `return_scores=True`.
        """
        emissions, mask, _ = self._prepare(emissions, mask)
        k = self.num_tags
        trans = ops.convert_to_tensor(self.transitions)
        start = ops.convert_to_tensor(self.start_scores)
        end = ops.convert_to_tensor(self.end_scores)
        batch = ops.shape(emissions)[0]
        if emissions.shape[1] == 0:
            tags = ops.zeros((batch, 0), dtype="int32")
            if not return_scores:
                return tags
            return tags, ops.zeros((batch,), dtype=emissions.dtype)
        identity = ops.arange(k, dtype="int32")

        init = (
            ops.zeros((batch, k), dtype=emissions.dtype),
            ops.zeros((batch,), dtype="bool"),
            ops.broadcast_to(identity[None], (batch, k)),
            trans,
            start,
            identity,
        )
        (delta, seen, _, _, _, _), (_, _, pointers, _, _, _) = ops.scan(
            _viterbi_step, init, _pack(emissions, mask)
        )  # pointers: (time, batch, K)
        final = delta + end[None, :]
        last = first_argmax(final, axis=1)
        m_tm = ops.cast(ops.transpose(mask, (1, 0)), "int32")[..., None]  # (time, batch, 1)
        _, (_, tags_tm) = ops.scan(
            _backtrack_step,
            (last, ops.zeros_like(last)),
            ops.concatenate([pointers, m_tm], axis=-1),
            reverse=True,
        )
        tags = ops.transpose(tags_tm, (1, 0))  # (batch, time)
        if not return_scores:
            return tags
        best = ops.max(final, axis=1)
        return tags, ops.where(seen, best, ops.zeros_like(best))

    # ------------------------------------------------------------------ Keras
    def call(self, emissions, mask=None, training=None):
        return self.viterbi_decode(emissions, mask)

    def compute_mask(self, inputs, mask=None):
        # Outputs are tags, which carry no Keras mask.
        return None

    def compute_output_spec(self, emissions, mask=None, training=None):
        self._check_emissions_shape(static_shape(emissions))
        return keras.KerasTensor(tuple(emissions.shape[:2]), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_tags": self.num_tags,
                "transitions_initializer": keras.initializers.serialize(
                    self.transitions_initializer
                ),
                "boundary_initializer": keras.initializers.serialize(self.boundary_initializer),
                "transitions_regularizer": keras.regularizers.serialize(
                    self.transitions_regularizer
                ),
            }
        )
        return config
