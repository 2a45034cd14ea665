"""Linear-chain conditional random field (CRF) for sequence tagging.

Two public classes:

- `CRF`: a layer that holds the tag-transition scores and implements the forward
  algorithm (`log_likelihood`) and Viterbi decoding (`viterbi_decode`).
- `CRFTagger`: a `keras.Model` that puts a `CRF` on top of any model producing
  per-step emission scores, trains with the CRF negative log-likelihood through
  a plain `model.fit`, and returns Viterbi tags from `model.predict`.

Both are pure `keras.ops` (the time loop is `keras.ops.scan`), so they run
eagerly and compiled on the TensorFlow, JAX and PyTorch backends.
"""

import keras
import numpy as np
from keras import ops

from kzoo.backend.spec import static_shape
from kzoo.utils.serialization import register_serializable


def _concrete_numpy(x):
    """`x` as a NumPy array when its values are known now, else `None`.

    Inside a traced function (`tf.function`, `jax.jit`, symbolic Keras tensors)
    the values do not exist yet, so conversion fails and nothing is checked.
    """
    try:
        return ops.convert_to_numpy(x)
    except Exception:  # any "this tensor is symbolic" error of any backend
        return None


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
        training: bool. `False`/`None`: return the Viterbi tags. `True`:
            return the pair `(emissions, mask)` that `CRFTagger` turns into the
            loss (`mask` is all-true when no mask was given).

    Returns:
        Inference: int32 tensor (batch, time) of best tags (0 at masked steps).
        Training: tuple `(emissions, mask)` as described above.

    Example:

    ```python
    crf = CRF(5)
    emissions = keras.random.normal((2, 7, 5))
    tags = crf(emissions)                             # (2, 7) int32
    ll = crf.log_likelihood(emissions, tags)          # (2,)
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
        if (
            isinstance(num_tags, bool)
            or not isinstance(num_tags, (int, np.integer))
            or num_tags < 1
        ):
            raise ValueError(f"`num_tags` must be a positive int. Received: num_tags={num_tags!r}")
        self.num_tags = int(num_tags)
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
        tags_np = _concrete_numpy(tags)
        mask_np = _concrete_numpy(mask)
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
        if training:
            emissions, mask, _ = self._prepare(emissions, mask)
            return emissions, mask
        return self.viterbi_decode(emissions, mask)

    def compute_mask(self, inputs, mask=None):
        # Outputs are tags (or a training pair), which carry no Keras mask.
        return None

    def compute_output_spec(self, emissions, mask=None, training=None):
        self._check_emissions_shape(static_shape(emissions))
        batch_time = tuple(emissions.shape[:2])
        if training:
            return (
                keras.KerasTensor(tuple(emissions.shape), dtype=self.variable_dtype),
                keras.KerasTensor(batch_time, dtype="bool"),
            )
        return keras.KerasTensor(batch_time, dtype="int32")

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


@register_serializable
class CRFTagger(keras.Model):
    """Sequence tagger: an emission model followed by a `CRF`, trained end to end.

    Training design: `call(x, training=True)` returns the CRF's training pair
    `(emissions, mask)` and `compute_loss` turns it into the mean negative
    log-likelihood $-\\frac{1}{B}\\sum_b w_b \\log p(y_b | x_b)$ (plus any
    regularization losses). `call(x)` at inference returns Viterbi tags, so
    `predict` gives (batch, time) int32 tags. Only the backend-independent
    `compute_loss`/`compute_metrics` hooks are overridden, so `fit`,
    `evaluate` and `predict` work unchanged on every backend, and the model
    saves to `.keras` like any model (backbone and CRF are serialized as
    nested objects). `evaluate` gets tags from `call`, so its loss runs the
    backbone a second time (with `training=False`) to get the emissions.

    Compile without a `loss` (the CRF loss is built in). Compiled metrics see
    the decoded tags and the targets, and are updated in `evaluate` (and on
    validation data); during `fit` only the loss is reported, to avoid a
    Viterbi pass per training step. Padded steps count in such metrics; for
    entity-level scores use `kzoo.metrics.ner.entity_f1` on `predict` output.

    Args:
        backbone: a `keras.Model`/layer mapping the inputs to emission scores
            (batch, time, num_tags), propagating a Keras mask for padding
            (e.g. starting with `Embedding(mask_zero=True)`).
        crf: the `CRF` layer applied to the emissions.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: whatever `backbone` takes.
        training: bool; see "Training design" above.

    Returns:
        int32 tags (batch, time) at inference; `(emissions, mask)` in training.

    Example:

    ```python
    backbone = keras.Sequential([
        keras.layers.Embedding(vocab_size, 64, mask_zero=True),
        keras.layers.Bidirectional(keras.layers.LSTM(64, return_sequences=True)),
        keras.layers.Dense(num_tags),
    ])
    tagger = CRFTagger(backbone, CRF(num_tags))
    tagger.compile(optimizer="adam")
    tagger.fit(token_ids, tag_ids, epochs=3)
    predicted = tagger.predict(token_ids)        # (batch, time) int32
    ```

    Reference:
        Huang, Xu, Yu, "Bidirectional LSTM-CRF Models for Sequence Tagging",
        arXiv:1508.01991, 2015.
    """

    def __init__(self, backbone, crf, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(crf, CRF):
            raise ValueError(f"`crf` must be a kzoo CRF layer. Received: crf={crf!r}")
        if not callable(backbone):
            raise ValueError(
                f"`backbone` must be a Keras model or layer. Received: backbone={backbone!r}"
            )
        self.backbone = backbone
        self.crf = crf
        if not crf.built:
            # The CRF's weights depend only on `num_tags`; creating them now
            # lets users read/assign `tagger.crf.transitions` before any call.
            crf.build((None, None, crf.num_tags))

    def build(self, input_shape):
        if not self.backbone.built:
            self.backbone.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        emissions = self.backbone(inputs, training=training)
        return self.crf(emissions, training=training)

    def _check_tags(self, y):
        # Inside the compiled train step the tags are symbolic and a float
        # 1.5 would be cast to 1 unseen; concrete ones are checked first.
        values = _concrete_numpy(y)
        if values is None or values.size == 0:
            return
        if values.dtype.kind not in "iuf":
            raise ValueError(f"`y` must hold integer tag ids. Received dtype {values.dtype}.")
        if values.dtype.kind == "f":
            fractional = values[~(np.isfinite(values) & (values == np.round(values)))]
            if fractional.size:
                raise ValueError(
                    "`y` must hold integer tag ids (whole numbers). Received non-integer "
                    f"values {fractional[:10].tolist()}."
                )

    def fit(self, x=None, y=None, *args, **kwargs):
        if y is not None:
            self._check_tags(y)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        if y is not None:
            self._check_tags(y)
        return super().evaluate(x, y, *args, **kwargs)

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        if loss is not None:
            raise ValueError(
                "CRFTagger computes its own CRF loss; compile it without `loss`. "
                f"Received: loss={loss!r}"
            )
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        # Keras skips restoring the compile state of models that override
        # `compile`; ours only forbids `loss`, so restore it as Keras would.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if isinstance(y_pred, (tuple, list)):
            emissions, mask = y_pred
        else:
            # `evaluate`/`test_on_batch` call the model with training=False and
            # get tags; rebuild the emissions for the likelihood.
            emissions, mask = self.crf(self.backbone(x, training=False), training=True)
        if len(static_shape(y)) == 3 and static_shape(y)[-1] == 1:
            y = ops.squeeze(y, -1)
        nll = -self.crf.log_likelihood(emissions, y, mask)  # (batch,)
        if sample_weight is not None:
            sw_shape = static_shape(sample_weight)
            if len(sw_shape) != 1:
                raise ValueError(
                    "CRFTagger takes one sample weight per sequence, shape "
                    f"(batch,). Received sample_weight with shape {sw_shape}."
                )
            nll = nll * ops.cast(sample_weight, nll.dtype)
        loss = ops.mean(nll)
        for extra in self.losses:
            loss = loss + ops.cast(extra, loss.dtype)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if isinstance(y_pred, (tuple, list)):
            # Training step: only the loss (see the class docstring).
            results = self.get_metrics_result()
            return {k: v for k, v in results.items() if k == "loss"}
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "crf": keras.saving.serialize_keras_object(self.crf),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(
            config["backbone"], custom_objects=custom_objects
        )
        config["crf"] = keras.saving.deserialize_keras_object(
            config["crf"], custom_objects=custom_objects
        )
        return cls(**config)
