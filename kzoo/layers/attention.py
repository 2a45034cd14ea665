"""Additive (Bahdanau) and multiplicative (Luong) attention over a memory.

Both layers take a query `(batch, query_dim)` for one decoder step, or
`(batch, query_time, query_dim)` for many, and a memory `(batch, time,
memory_dim)`; they return the context (the attention-weighted sum of the
memory) and the attention weights. A boolean `(batch, time)` mask marks the
valid memory positions.

The part of the score that depends only on the memory can be computed once
per sequence with `project_keys(memory)` and handed back through
`call(..., projected_keys=...)`, which is what a decoder that attends at every
step should do.
"""

import math

import keras
from keras import ops

from kzoo.backend.spec import static_shape
from kzoo.utils.serialization import register_serializable


def masked_softmax(scores, mask=None, axis=-1):
    """Softmax of `scores` along `axis` restricted to the positions where `mask`.

    $$w_i = \\frac{m_i \\exp(s_i - s_{max})}{\\sum_j m_j \\exp(s_j - s_{max})}$$

    where $s_{max}$ is the largest score among the valid positions. Masked
    positions get exactly zero weight, whatever their score (NaN and infinite
    scores included). A row without any valid position gets all-zero weights
    (no NaN, and zero gradients), instead of the undefined 0/0.

    Args:
        scores: float tensor.
        mask: `None` or a tensor broadcastable to `scores`, boolean or 0/1;
            true (non-zero) marks a valid position.
        axis: the axis to normalize over.

    Returns:
        A tensor of the shape and dtype of `scores`.

    Example:

    >>> w = masked_softmax(ops.zeros((1, 3)), mask=[[True, True, False]])
    >>> # w == [[0.5, 0.5, 0.0]]
    """
    scores = ops.convert_to_tensor(scores)
    if mask is None:
        return ops.softmax(scores, axis=axis)
    mask = ops.cast(ops.convert_to_tensor(mask), "bool")
    # Masked scores never count, even NaN or infinite ones (a multiplication
    # by the mask would turn them into NaN: 0 * inf = NaN).
    scores = ops.where(mask, scores, ops.zeros_like(scores))
    # Shift by the largest *valid* score. The row minimum stands in for masked
    # positions, so the shift stays finite even when a whole row is masked.
    row_min = ops.min(scores, axis=axis, keepdims=True)
    shift = ops.max(ops.where(mask, scores, row_min), axis=axis, keepdims=True)
    shift = ops.stop_gradient(shift)
    # Zero the masked arguments before `exp` so that huge masked scores can
    # neither overflow nor leak NaN into the gradients through `where`.
    shifted = ops.where(mask, scores - shift, ops.zeros_like(scores))
    exps = ops.where(mask, ops.exp(shifted), ops.zeros_like(scores))
    total = ops.sum(exps, axis=axis, keepdims=True)
    # A row with a valid position has total >= 1 (its maximum gives exp(0)).
    total = ops.where(total > 0, total, ops.ones_like(total))
    return exps / total


def _check_units(units, name="units"):
    if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={units!r}")
    return units


class _AttentionBase(keras.layers.Layer):
    """Shape checks, the masked attention step and output shapes shared by both
    attention layers. Subclasses implement `_build_weights`, `project_keys` and
    `_score(query, projected_keys)` for a 3-D query."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # The mask given to `call` is the memory's; outputs get no Keras mask
        # (see `compute_mask`), so that mask must not be copied onto them.
        self.supports_masking = True
        self.query_dim = None
        self.memory_dim = None

    # --- shapes -----------------------------------------------------------

    def _projected_keys_dim(self):
        raise NotImplementedError

    def _check_shapes(self, query_shape, memory_shape, mask_shape=None, projected_keys_shape=None):
        name = type(self).__name__
        if len(query_shape) not in (2, 3):
            raise ValueError(
                f"{name} expects a query of rank 2 (batch, query_dim) or 3 "
                f"(batch, query_time, query_dim). Received query shape "
                f"{tuple(query_shape)}."
            )
        if len(memory_shape) != 3:
            raise ValueError(
                f"{name} expects a memory of rank 3 (batch, time, memory_dim). "
                f"Received memory shape {tuple(memory_shape)}."
            )
        if query_shape[-1] is None or memory_shape[-1] is None:
            raise ValueError(
                f"{name} needs known last dimensions of query and memory. "
                f"Received query shape {tuple(query_shape)} and memory shape "
                f"{tuple(memory_shape)}."
            )
        if self.query_dim is not None and query_shape[-1] != self.query_dim:
            raise ValueError(
                f"{self.name} was built for query_dim={self.query_dim} but "
                f"received a query of shape {tuple(query_shape)}."
            )
        if self.memory_dim is not None and memory_shape[-1] != self.memory_dim:
            raise ValueError(
                f"{self.name} was built for memory_dim={self.memory_dim} but "
                f"received a memory of shape {tuple(memory_shape)}."
            )
        _check_compatible("mask", mask_shape, "memory[:2]", tuple(memory_shape[:2]), memory_shape)
        if projected_keys_shape is not None:
            expected = tuple(memory_shape[:2]) + (self._projected_keys_dim(),)
            _check_compatible(
                "projected_keys",
                projected_keys_shape,
                "(batch, time, projected_dim)",
                expected,
                memory_shape,
            )

    def build(self, query_shape, memory_shape):
        self._check_shapes(query_shape, memory_shape)
        self.query_dim = int(query_shape[-1])
        self.memory_dim = int(memory_shape[-1])
        self._build_weights()

    def compute_output_shape(self, query_shape, memory_shape):
        self._check_shapes(query_shape, memory_shape)
        batch, time, memory_dim = memory_shape
        if len(query_shape) == 2:
            return (batch, memory_dim), (batch, time)
        return (
            (batch, query_shape[1], memory_dim),
            (batch, query_shape[1], time),
        )

    def compute_output_spec(self, query, memory, mask=None, projected_keys=None):
        self._check_shapes(
            static_shape(query),
            static_shape(memory),
            None if mask is None else static_shape(mask),
            None if projected_keys is None else static_shape(projected_keys),
        )
        context_shape, weights_shape = self.compute_output_shape(
            static_shape(query), static_shape(memory)
        )
        return (
            keras.KerasTensor(context_shape, dtype=self.compute_dtype),
            keras.KerasTensor(weights_shape, dtype=self.compute_dtype),
        )

    def compute_mask(self, inputs, previous_mask=None):
        return None

    # --- computation ------------------------------------------------------

    def call(self, query, memory, mask=None, projected_keys=None):
        self._check_shapes(
            static_shape(query),
            static_shape(memory),
            None if mask is None else static_shape(mask),
            None if projected_keys is None else static_shape(projected_keys),
        )
        single_step = len(query.shape) == 2
        if single_step:
            query = ops.expand_dims(query, 1)  # (batch, 1, query_dim)
        if mask is not None:
            # Masked memory rows must not reach the outputs even when they hold
            # NaN or Inf (a zero weight times NaN is NaN), so they are
            # replaced, not multiplied by the mask.
            valid = ops.expand_dims(ops.cast(mask, "bool"), -1)  # (batch, time, 1)
            memory = ops.where(valid, memory, ops.zeros_like(memory))
            if projected_keys is not None:
                projected_keys = ops.where(valid, projected_keys, ops.zeros_like(projected_keys))
        if projected_keys is None:
            projected_keys = self.project_keys(memory)
        scores = self._score(query, projected_keys)  # (batch, query_time, time)
        if mask is not None:
            mask = ops.expand_dims(ops.cast(mask, "bool"), 1)  # (batch, 1, time)
        weights = masked_softmax(scores, mask, axis=-1)
        context = ops.matmul(weights, memory)  # (batch, query_time, memory_dim)
        if single_step:
            return ops.squeeze(context, 1), ops.squeeze(weights, 1)
        return context, weights

    def project_keys(self, memory):
        raise NotImplementedError

    def _score(self, query, projected_keys):
        raise NotImplementedError

    def _require_built(self):
        if not self.built:
            raise ValueError(
                f"{self.name} has no weights yet: call it once or call "
                "`build(query_shape, memory_shape)` before `project_keys`."
            )


def _check_compatible(name, shape, what, expected, memory_shape):
    if shape is None:
        return
    shape = tuple(shape)
    ok = len(shape) == len(expected) and all(
        a is None or b is None or a == b for a, b in zip(shape, expected)
    )
    if not ok:
        raise ValueError(
            f"`{name}` must have shape {what} = {expected}, matching memory shape "
            f"{tuple(memory_shape)}. Received {name} shape {shape}."
        )


@register_serializable
class BahdanauAttention(_AttentionBase):
    """Additive attention of Bahdanau et al. (2015).

    For a query $q$ and memory rows $m_t$ (the keys and the values):

    $$e_t = v^\\top \\tanh(W_q q + W_k m_t)$$
    $$a = \\mathrm{softmax}(e) \\text{ over valid } t, \\qquad c = \\sum_t a_t m_t$$

    With `normalize=True` the weight-normalized form of TF Addons (Salimans
    and Kingma, 2016) is used:

    $$e_t = g \\frac{v^\\top}{\\lVert v \\rVert} \\tanh(W_q q + W_k m_t + b)$$

    Weights: `query_kernel (query_dim, units)`, `key_kernel (memory_dim,
    units)`, `score_vector (units,)`; with `normalize=True` also the scalar
    `score_scale` $g$ (initialized to $\\sqrt{1/units}$) and `score_bias`
    $b$ `(units,)` (zeros).

    Masked memory positions get exactly zero weight, and their values never
    reach the outputs (NaN or Inf there gives the same result as zeros). A
    query whose memory row is fully masked gets all-zero weights and a zero
    context.

    Args:
        units: positive int, the width of the additive score.
        normalize: bool, whether to use the weight-normalized score.
        kernel_initializer: initializer of `query_kernel`, `key_kernel` and
            `score_vector`.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        query: `(batch, query_dim)` or `(batch, query_time, query_dim)`.
        memory: `(batch, time, memory_dim)`.
        mask: optional `(batch, time)` boolean or 0/1 tensor, true on valid
            memory positions. Its shape must equal `memory.shape[:2]`.
        projected_keys: optional `(batch, time, units)` result of
            `project_keys(memory)`, to skip recomputing it at every step.

    Returns:
        `(context, weights)`: `(batch, memory_dim)` and `(batch, time)` for a
        rank-2 query, `(batch, query_time, memory_dim)` and `(batch,
        query_time, time)` for a rank-3 query.

    Example:

    >>> attention = BahdanauAttention(16)
    >>> memory = np.random.rand(2, 7, 8).astype("float32")
    >>> query = np.random.rand(2, 5).astype("float32")
    >>> context, weights = attention(query, memory)  # (2, 8), (2, 7)

    Reference:
        Bahdanau, Cho, Bengio, "Neural Machine Translation by Jointly
        Learning to Align and Translate", ICLR 2015.
        Salimans, Kingma, "Weight Normalization", NeurIPS 2016.
    """

    def __init__(self, units, normalize=False, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = _check_units(units)
        if not isinstance(normalize, bool):
            raise ValueError(f"`normalize` must be a bool. Received: normalize={normalize!r}")
        self.normalize = normalize
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _projected_keys_dim(self):
        return self.units

    def _build_weights(self):
        self.query_kernel = self.add_weight(
            name="query_kernel",
            shape=(self.query_dim, self.units),
            initializer=self.kernel_initializer,
        )
        self.key_kernel = self.add_weight(
            name="key_kernel",
            shape=(self.memory_dim, self.units),
            initializer=self.kernel_initializer,
        )
        self.score_vector = self.add_weight(
            name="score_vector",
            shape=(self.units,),
            initializer=self.kernel_initializer,
        )
        if self.normalize:
            self.score_scale = self.add_weight(
                name="score_scale",
                shape=(),
                initializer=keras.initializers.Constant(math.sqrt(1.0 / self.units)),
            )
            self.score_bias = self.add_weight(
                name="score_bias", shape=(self.units,), initializer="zeros"
            )

    def project_keys(self, memory):
        """Returns `memory @ key_kernel`, `(batch, time, units)`."""
        self._require_built()
        return ops.matmul(memory, self.key_kernel)

    def _score(self, query, projected_keys):
        projected_query = ops.matmul(query, self.query_kernel)  # (b, tq, units)
        # (batch, query_time, time, units)
        hidden = ops.expand_dims(projected_query, 2) + ops.expand_dims(projected_keys, 1)
        v = ops.convert_to_tensor(self.score_vector)
        if self.normalize:
            hidden = hidden + self.score_bias
            v = self.score_scale * v * ops.rsqrt(ops.sum(ops.square(v)))
        return ops.sum(ops.tanh(hidden) * v, axis=-1)

    def get_config(self):
        config = {
            "units": self.units,
            "normalize": self.normalize,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
        return {**super().get_config(), **config}


_LUONG_SCORES = ("dot", "general", "concat")


@register_serializable
class LuongAttention(_AttentionBase):
    """Multiplicative (global) attention of Luong et al. (2015).

    For a query $h$ and memory rows $m_t$ (the keys and the values), one of
    three scores:

    $$\\text{dot:} \\quad e_t = h^\\top m_t$$
    $$\\text{general:} \\quad e_t = h^\\top (m_t W)$$
    $$\\text{concat:} \\quad e_t = v^\\top \\tanh([h; m_t] W_c)$$

    then $a = \\mathrm{softmax}(e)$ over valid $t$ and $c = \\sum_t a_t m_t$.
    With `scale=True` every score is multiplied by a learned scalar $g$
    (initialized to 1): $e_t \\leftarrow g e_t$.

    Weights: "dot" has none (and needs `query_dim == memory_dim`); "general"
    has `key_kernel (memory_dim, query_dim)`; "concat" has `concat_kernel
    (query_dim + memory_dim, units)` (rows for the query first) and
    `score_vector (units,)`; `scale=True` adds the scalar `score_scale`.

    Masked memory positions get exactly zero weight, and their values never
    reach the outputs (NaN or Inf there gives the same result as zeros). A
    query whose memory row is fully masked gets all-zero weights and a zero
    context.

    Args:
        units: positive int, the width of the "concat" score; must be `None`
            for "dot" and "general".
        score: "dot", "general" or "concat".
        scale: bool, whether to learn a scalar multiplying the score.
        kernel_initializer: initializer of `key_kernel`, `concat_kernel` and
            `score_vector`.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        query: `(batch, query_dim)` or `(batch, query_time, query_dim)`.
        memory: `(batch, time, memory_dim)`.
        mask: optional `(batch, time)` boolean or 0/1 tensor, true on valid
            memory positions. Its shape must equal `memory.shape[:2]`.
        projected_keys: optional result of `project_keys(memory)`, to skip
            recomputing it at every step: the memory itself for "dot",
            `memory @ key_kernel` `(batch, time, query_dim)` for "general",
            `memory @ concat_kernel[query_dim:]` `(batch, time, units)` for
            "concat".

    Returns:
        `(context, weights)`: `(batch, memory_dim)` and `(batch, time)` for a
        rank-2 query, `(batch, query_time, memory_dim)` and `(batch,
        query_time, time)` for a rank-3 query.

    Example:

    >>> attention = LuongAttention(score="general")
    >>> memory = np.random.rand(2, 7, 8).astype("float32")
    >>> query = np.random.rand(2, 4).astype("float32")
    >>> context, weights = attention(query, memory)  # (2, 8), (2, 7)

    Reference:
        Luong, Pham, Manning, "Effective Approaches to Attention-based Neural
        Machine Translation", EMNLP 2015.
    """

    def __init__(
        self,
        units=None,
        score="dot",
        scale=False,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if score not in _LUONG_SCORES:
            raise ValueError(
                f"`score` must be one of {list(_LUONG_SCORES)}. Received: score={score!r}"
            )
        if score == "concat":
            if units is None:
                raise ValueError("`units` is required for score='concat'. Received: units=None")
            _check_units(units)
        elif units is not None:
            raise ValueError(
                f"`units` is only used by score='concat'; leave it None for "
                f"score={score!r}. Received: units={units!r}"
            )
        if not isinstance(scale, bool):
            raise ValueError(f"`scale` must be a bool. Received: scale={scale!r}")
        self.units = units
        self.score = score
        self.scale = scale
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _projected_keys_dim(self):
        if self.score == "dot":
            return self.memory_dim
        if self.score == "general":
            return self.query_dim
        return self.units

    def _check_shapes(self, query_shape, memory_shape, mask_shape=None, projected_keys_shape=None):
        super()._check_shapes(query_shape, memory_shape, mask_shape, projected_keys_shape)
        if self.score == "dot" and query_shape[-1] != memory_shape[-1]:
            raise ValueError(
                "LuongAttention(score='dot') needs query_dim == memory_dim. "
                f"Received query shape {tuple(query_shape)} (query_dim="
                f"{query_shape[-1]}) and memory shape {tuple(memory_shape)} "
                f"(memory_dim={memory_shape[-1]}); use score='general' to "
                "attend across different widths."
            )

    def _build_weights(self):
        if self.score == "general":
            self.key_kernel = self.add_weight(
                name="key_kernel",
                shape=(self.memory_dim, self.query_dim),
                initializer=self.kernel_initializer,
            )
        elif self.score == "concat":
            self.concat_kernel = self.add_weight(
                name="concat_kernel",
                shape=(self.query_dim + self.memory_dim, self.units),
                initializer=self.kernel_initializer,
            )
            self.score_vector = self.add_weight(
                name="score_vector",
                shape=(self.units,),
                initializer=self.kernel_initializer,
            )
        if self.scale:
            self.score_scale = self.add_weight(name="score_scale", shape=(), initializer="ones")

    def project_keys(self, memory):
        """Returns the memory-only part of the score (see `projected_keys`)."""
        self._require_built()
        if self.score == "dot":
            return memory
        if self.score == "general":
            return ops.matmul(memory, self.key_kernel)
        key_rows = ops.convert_to_tensor(self.concat_kernel)[self.query_dim :]
        return ops.matmul(memory, key_rows)

    def _score(self, query, projected_keys):
        if self.score == "concat":
            query_rows = ops.convert_to_tensor(self.concat_kernel)[: self.query_dim]
            projected_query = ops.matmul(query, query_rows)  # (b, tq, units)
            # (batch, query_time, time, units)
            hidden = ops.tanh(
                ops.expand_dims(projected_query, 2) + ops.expand_dims(projected_keys, 1)
            )
            scores = ops.sum(hidden * self.score_vector, axis=-1)
        else:
            # (batch, query_time, dim) x (batch, dim, time)
            scores = ops.matmul(query, ops.swapaxes(projected_keys, 1, 2))
        if self.scale:
            scores = self.score_scale * scores
        return scores

    def get_config(self):
        config = {
            "units": self.units,
            "score": self.score,
            "scale": self.scale,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
        return {**super().get_config(), **config}
