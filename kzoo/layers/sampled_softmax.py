"""Sampled softmax for large vocabularies: cheap in training, exact otherwise."""

import math

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_bool, check_choice, check_seed, check_units

SAMPLERS = ("log_uniform", "uniform")
# Added to the logit of an accidental hit: far below any real logit, yet
# finite so that no backend produces NaN in a gradient through exp().
_ACCIDENTAL_HIT = -1e9


def candidate_log_probabilities(ids, vocabulary_size, sampler="log_uniform"):
    """`log Q(id)` of the proposal distribution of a candidate sampler.

    `"log_uniform"` is the Zipfian proposal of Jean et al. (2015) and
    TensorFlow's `log_uniform_candidate_sampler`, for ids sorted by falling
    frequency (id 0 the most frequent):

        Q(k) = (log(k + 2) - log(k + 1)) / log(V + 1)

    `"uniform"`: `Q(k) = 1 / V`.

    Args:
        ids: int tensor of ids in `[0, vocabulary_size)`.
        vocabulary_size: positive int `V`.
        sampler: `"log_uniform"` or `"uniform"`.

    Returns:
        float32 tensor of the shape of `ids`.
    """
    check_choice(sampler, SAMPLERS, "sampler")
    if sampler == "uniform":
        return ops.cast(ids, "float32") * 0.0 - math.log(vocabulary_size)
    k = ops.cast(ids, "float32")
    return ops.log(ops.log1p(1.0 / (k + 1.0))) - math.log(math.log(vocabulary_size + 1.0))


def draw_candidates(num_sampled, vocabulary_size, sampler="log_uniform", seed=None):
    """Draws `num_sampled` ids from the proposal, with replacement.

    Args:
        num_sampled: positive int.
        vocabulary_size: positive int `V`.
        sampler: `"log_uniform"` or `"uniform"` (see
            `candidate_log_probabilities`).
        seed: int, `keras.random.SeedGenerator` or None.

    Returns:
        int32 tensor `(num_sampled,)` of ids in `[0, V)`.
    """
    check_choice(sampler, SAMPLERS, "sampler")
    u = keras.random.uniform((num_sampled,), dtype="float32", seed=seed)
    if sampler == "uniform":
        ids = ops.floor(u * vocabulary_size)
    else:
        # Inverse of the CDF P(id < k) = log(k + 1) / log(V + 1).
        ids = ops.floor(ops.exp(u * math.log(vocabulary_size + 1.0))) - 1.0
    return ops.cast(ops.clip(ids, 0, vocabulary_size - 1), "int32")


def sampled_softmax_cross_entropy(
    hidden,
    targets,
    weights,
    bias,
    sampled_ids,
    sampled_log_expected,
    remove_accidental_hits=True,
):
    """Per-token sampled softmax loss for given candidates.

    For a hidden vector `h`, its target `y` and candidates `s_1..s_S` drawn
    with expected counts `E(k)` (`S * Q(k)` for `S` draws with
    replacement from `Q`), with `o_k = h . w_k + b_k`:

        z_j = o_{s_j} - log E(s_j)          (-inf where s_j == y, if removed)
        loss = logsumexp(o_y, z_1, ..., z_S) - o_y

    The candidates' terms are an importance-sampling estimate of the
    normaliser over the other ids, `sum_{k != y} exp(o_k)` (its expectation
    is exactly that sum); the target, always scored, is not corrected
    (Bengio & Senecal, 2008). So the loss is on the scale of the exact
    cross-entropy and tends to it as `S` grows, and its gradient to the
    softmax gradient. With every id drawn exactly once and `E = 1` it is
    the exact softmax cross-entropy.

    Args:
        hidden: `(..., d)` float tensor.
        targets: `(...)` int tensor.
        weights: `(V, d)` output embedding (row k scores id k).
        bias: `(V,)` output bias or None.
        sampled_ids: `(S,)` int tensor.
        sampled_log_expected: `(S,)` float tensor, `log E(s_j)`.
        remove_accidental_hits: leave candidates equal to a token's target
            out of that token's normaliser (the target is counted once, as
            itself).

    Returns:
        float32 tensor of the shape of `targets`.
    """
    dtype = "float32"
    hidden = ops.cast(hidden, dtype)
    targets = ops.cast(targets, "int32")
    weights = ops.cast(weights, dtype)
    target_rows = ops.take(weights, targets, axis=0)  # (..., d)
    sampled_rows = ops.take(weights, sampled_ids, axis=0)  # (S, d)
    target_logits = ops.sum(hidden * target_rows, axis=-1)  # (...)
    sampled_logits = ops.matmul(hidden, ops.transpose(sampled_rows))  # (..., S)
    if bias is not None:
        bias = ops.cast(bias, dtype)
        target_logits = target_logits + ops.take(bias, targets, axis=0)
        sampled_logits = sampled_logits + ops.take(bias, sampled_ids, axis=0)
    sampled_logits = sampled_logits - ops.cast(sampled_log_expected, dtype)
    if remove_accidental_hits:
        hits = ops.equal(ops.expand_dims(targets, -1), ops.cast(sampled_ids, "int32"))
        sampled_logits = ops.where(hits, _ACCIDENTAL_HIT, sampled_logits)
    logits = ops.concatenate([ops.expand_dims(target_logits, -1), sampled_logits], axis=-1)
    return ops.logsumexp(logits, axis=-1) - target_logits


def full_softmax_cross_entropy(hidden, targets, weights, bias=None):
    """Exact per-token softmax cross-entropy over all `V` ids (float32)."""
    hidden = ops.cast(hidden, "float32")
    logits = ops.matmul(hidden, ops.transpose(ops.cast(weights, "float32")))  # (..., V)
    if bias is not None:
        logits = logits + ops.cast(bias, "float32")
    return ops.sparse_categorical_crossentropy(targets, logits, from_logits=True)


@register_serializable
class SampledSoftmax(keras.layers.Layer):
    """Next-token loss of an output layer: sampled softmax in training,
    exact softmax cross-entropy otherwise.

    Wraps the layer that maps hidden vectors to vocabulary logits and reads
    its weights: a tied embedding (a layer with `embeddings (V, d)` and an
    optional `output_bias (V,)`, such as `TiedEmbedding`, which also embeds
    the inputs, so the two ends stay tied) or a `keras.layers.Dense(V)`
    (`kernel (d, V)`, `bias (V,)`). In training each call draws `num_sampled`
    candidate ids, shared by the batch, from a log-uniform (Zipfian) or
    uniform proposal `Q` and scores only those and the targets, with the
    candidates corrected by `-log(S * Q(k))` and accidental hits removed
    (Jean et al., 2015; see `sampled_softmax_cross_entropy`): the output
    layer costs `O(S d)` per token instead of `O(V d)`, and the training
    loss estimates the exact cross-entropy (on the scale of `evaluate`). In
    inference (`evaluate`, `predict`) the exact cross-entropy over all `V`
    ids is computed, so `evaluate` reports true perplexities.

    The mean loss over the valid tokens (mask from the hidden states, e.g.
    `Embedding(mask_zero=True)` through the recurrent layers) is added with
    `add_loss`; compile the model without a loss and pass the targets as an
    input (see the example). The layer returns the per-token loss.

    The log-uniform proposal assumes ids sorted by falling frequency (id 0,
    or the first ids after reserved ones, the most frequent), as the
    vocabularies built by frequency are.

    Args:
        output_layer: the layer that computes the logits (see above).
        num_sampled: positive int, candidates drawn per training call.
        sampler: `"log_uniform"` (default) or `"uniform"`.
        remove_accidental_hits: whether candidates equal to a token's target
            are left out of that token's normaliser (default True).
        seed: optional int seed of the candidate draws.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        hidden: `(batch, time, d)` float tensor.
        targets: `(batch, time)` int tensor of next-token ids.
        hidden_mask: optional `(batch, time)` boolean mask of valid tokens;
            by default the mask of `hidden` (e.g. from
            `Embedding(mask_zero=True)` through the recurrent layers).
        training: sampled (True) or exact (False) loss.

    Returns:
        `(batch, time)` float32 per-token loss (0 at masked tokens).

    Example:

    >>> ids = keras.Input((None,), dtype="int32")
    >>> targets = keras.Input((None,), dtype="int32")
    >>> embedding = kzoo.layers.TiedEmbedding(30000, 256)
    >>> hidden = kzoo.layers.LSTM(256, return_sequences=True)(embedding(ids))
    >>> token_loss = kzoo.layers.SampledSoftmax(embedding, num_sampled=1024)(hidden, targets)
    >>> trainer = keras.Model([ids, targets], token_loss)
    >>> trainer.compile("adam")                 # the layer adds the loss
    >>> trainer.fit([x, y], epochs=1)
    >>> language_model = keras.Model(ids, embedding(hidden, reverse=True))

    A `.keras` file of the training model stores the wrapped layer inside
    this layer's config, so a reloaded training model has its own copy of a
    tied embedding; save the inference model (or the weights) instead.

    Reference:
        Jean, Cho, Memisevic & Bengio, "On Using Very Large Target Vocabulary
        for Neural Machine Translation", ACL 2015,
        https://arxiv.org/abs/1412.2007; Bengio & Senecal, "Adaptive
        Importance Sampling to Accelerate Training of a Neural Probabilistic
        Language Model", IEEE TNN 2008.
    """

    def __init__(
        self,
        output_layer,
        num_sampled=1024,
        sampler="log_uniform",
        remove_accidental_hits=True,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(output_layer, keras.layers.Layer):
            raise ValueError(
                "`output_layer` must be a Keras layer with `embeddings` (V, d) or a "
                f"`Dense` with `kernel` (d, V). Received: output_layer={output_layer!r}"
            )
        self.output_layer = output_layer
        self.num_sampled = check_units(num_sampled, "num_sampled")
        self.sampler = check_choice(sampler, SAMPLERS, "sampler")
        self.remove_accidental_hits = check_bool(remove_accidental_hits, "remove_accidental_hits")
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def build(self, hidden_shape, targets_shape=None):
        if not self.output_layer.built:
            self.output_layer.build(hidden_shape)
        self._output_weights()  # fails early on a layer of another kind
        self.built = True

    def _output_weights(self):
        """`(weights (V, d), bias (V,) or None)` of the wrapped layer."""
        layer = self.output_layer
        if getattr(layer, "embeddings", None) is not None:
            return layer.embeddings, getattr(layer, "output_bias", None)
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and len(kernel.shape) == 2:
            if getattr(layer, "activation", None) not in (None, keras.activations.linear):
                raise ValueError(
                    f"{self.name}: the wrapped Dense layer must output logits (activation=None)."
                )
            return ops.transpose(kernel), getattr(layer, "bias", None)
        raise ValueError(
            f"{self.name}: `output_layer` must have `embeddings` (V, d) or a 2-D "
            f"`kernel` (d, V). Received: {layer!r}"
        )

    @property
    def vocabulary_size(self):
        weights, _ = self._output_weights()
        return int(weights.shape[0])

    def call(self, hidden, targets, hidden_mask=None, training=False):
        weights, bias = self._output_weights()
        vocabulary_size = int(weights.shape[0])
        if training:
            sampled = draw_candidates(
                self.num_sampled, vocabulary_size, self.sampler, self.seed_generator
            )
            log_count = math.log(self.num_sampled)
            losses = sampled_softmax_cross_entropy(
                hidden,
                targets,
                weights,
                bias,
                sampled,
                candidate_log_probabilities(sampled, vocabulary_size, self.sampler) + log_count,
                self.remove_accidental_hits,
            )
        else:
            losses = full_softmax_cross_entropy(hidden, targets, weights, bias)
        if hidden_mask is not None:
            valid = ops.cast(hidden_mask, "float32")
            losses = losses * valid
            count = ops.maximum(ops.sum(valid), 1.0)
        else:
            count = ops.cast(ops.size(losses), "float32")
        self.add_loss(ops.sum(losses) / count)
        return losses

    def compute_output_shape(self, hidden_shape, targets_shape=None):
        return tuple(hidden_shape[:-1])

    def compute_mask(self, hidden, previous_mask=None):
        return previous_mask

    def get_config(self):
        config = {
            "output_layer": keras.saving.serialize_keras_object(self.output_layer),
            "num_sampled": self.num_sampled,
            "sampler": self.sampler,
            "remove_accidental_hits": self.remove_accidental_hits,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["output_layer"] = keras.saving.deserialize_keras_object(
            config["output_layer"], custom_objects=custom_objects
        )
        return cls(**config)
