"""The language model network: embedding, stacked recurrent layers, logits."""

import math

import keras
from keras import ops

from kzoo.layers import GRU, LSTM, ActivationRegularization, SimpleRNN
from kzoo.layers.sampled_softmax import (
    candidate_log_probabilities,
    draw_candidates,
    sampled_softmax_cross_entropy,
)
from kzoo.layers.stacked_cells import state_sizes
from kzoo.layers.tied_embedding import TiedEmbedding
from kzoo.models.checked_inputs import CheckedTokenInputs
from kzoo.models.saving import save_compact
from kzoo.utils.serialization import register_serializable
from kzoo.utils.untracked import untracked_cache
from kzoo.utils.validation import (
    check_bool,
    check_choice,
    check_id_matrix,
    check_number,
    check_rate,
    check_seed,
    check_token_ids,
    check_units,
)


class _LSTM(LSTM):
    """The language model's LSTM layer class.

    Keras stores a model's weights under paths made from its layers' class
    names (`layers/_lstm/cell/vars`), so these subclasses stay for the files
    saved with them.
    """


class _GRU(GRU):
    """The language model's GRU layer class (kept for saved weight paths)."""


class _SimpleRNN(SimpleRNN):
    """The language model's simple RNN layer class (named like the others)."""


RECURRENT_LAYERS = {"lstm": _LSTM, "gru": _GRU, "rnn": _SimpleRNN}
# Names of earlier versions, accepted by `from_config` so saved files load.
RENAMED_ARGUMENTS = {"hidden_units": "units", "cell": "cell_type"}
SOFTMAXES = ("full", "sampled")
# The AWD-LSTM options and their off values (left out of configs when off).
AWD_DEFAULTS = {
    "input_dropout": None,
    "hidden_dropout": None,
    "output_dropout": None,
    "variational_dropout": False,
    "embedding_dropout": 0.0,
    "recurrent_weight_dropout": 0.0,
    "activation_regularization": 0.0,
    "temporal_activation_regularization": 0.0,
    "softmax": "full",
    "num_sampled": 1024,
}


@register_serializable
class EmbeddingDropout(keras.layers.Layer):
    """Drops whole rows of an embedding matrix: every occurrence of a word type.

    AWD-LSTM's embedding dropout (Gal & Ghahramani, 2016; Merity et al.,
    2018), applied to the looked-up vectors: in training each id of the
    vocabulary is dropped with probability `rate`, once per call, and the
    vectors of all its occurrences in the batch become zero; the vectors of
    the kept ids are scaled by `1 / (1 - rate)`:

        m_k ~ Bernoulli(1 - rate),  k = 0..V-1
        y[b, t] = x[b, t] * m_{ids[b, t]} / (1 - rate)

    Unlike `kzoo.layers.WordTypeDropout` (which maps dropped words to an
    unknown id) it needs no reserved id, so it suits any vocabulary. At
    inference the vectors pass unchanged.

    Args:
        rate: float in [0, 1), the probability of dropping a word type.
        vocabulary_size: positive int.
        seed: optional int seed.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        embedded: `(batch, time, dim)` float tensor, the embeddings of `token_ids`.
        token_ids: `(batch, time)` int tensor.
        training: bool.

    Returns:
        `(batch, time, dim)`, like `embedded`.

    Reference:
        Merity, Keskar & Socher, "Regularizing and Optimizing LSTM Language
        Models", ICLR 2018, section 4.3.
    """

    def __init__(self, rate, vocabulary_size, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate(rate, "rate")
        self.vocabulary_size = check_units(vocabulary_size, "vocabulary_size")
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, embedded, token_ids, training=False):
        if not training or self.rate == 0.0:
            return embedded
        coins = keras.random.uniform((self.vocabulary_size,), seed=self.seed_generator)
        scale = ops.cast(coins >= self.rate, embedded.dtype) / (1.0 - self.rate)  # (V,)
        return embedded * ops.expand_dims(ops.take(scale, token_ids, axis=0), -1)

    def compute_output_shape(self, embedded_shape, token_ids_shape=None):
        return embedded_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self.rate,
            "vocabulary_size": self.vocabulary_size,
            "seed": self.seed,
        }


@register_serializable
class LanguageModelBackbone(CheckedTokenInputs, keras.Model):
    """Next-token logits from a stack of recurrent layers over token ids.

    With dropout p applied only to non-recurrent connections (Zaremba et al.,
    2014), for layers l = 1..L:

        x_t^0 = drop(E[w_t])
        x_t^l = drop(RNN_l(x_t^{l-1}, state_{t-1}^l))
        logits_t = x_t^L W + b          (W = E^T with `tie_weights`)
        p(w_{t+1} | w_1..w_t) = softmax(logits_t)

    A functional Keras model whose config is its constructor arguments; it
    outputs logits (the softmax belongs to the loss). With `stateful=True`
    the final states of each batch are the initial states of the next one
    (truncated backpropagation through time over a long stream); the batch
    size is then fixed and `reset_states()` starts over.

    It implements the generation contract of `kzoo.generation`
    (`generation_cache`, `generation_step`): the cache is the recurrent
    state, so decoding costs one cell step per layer and token.

    Args:
        vocabulary_size: positive int.
        embedding_dim: positive int, size of the token embeddings.
        units: positive int, units of every recurrent layer.
        num_layers: positive int, number of stacked recurrent layers.
        cell_type: `"lstm"` (default), `"gru"` or `"rnn"` (Elman).
        dropout: rate in [0, 1) of the dropout on the embeddings, between
            layers and before the output projection (active in training only).
        tie_weights: share the embedding matrix with the output projection;
            needs `units == embedding_dim`.
        stateful: carry the recurrent states from batch to batch.
        batch_size: fixed batch size; required when `stateful`.
        seed: optional int seed of the dropout layers.
        input_dropout: optional rate for the dropout on the embeddings
            (default: `dropout`).
        hidden_dropout: optional rate for the dropout between recurrent
            layers (default: `dropout`).
        output_dropout: optional rate for the dropout before the output
            projection (default: `dropout`).
        variational_dropout: if True, the three dropouts above draw one mask
            per sequence and batch, shared by all time steps (AWD-LSTM's
            "locked" dropout, Gal & Ghahramani 2016); default False: a new
            mask at every step (Zaremba et al.).
        embedding_dropout: rate in [0, 1) at which whole word types are
            dropped from the input embeddings once per batch (see
            `EmbeddingDropout`; AWD-LSTM uses 0.1).
        recurrent_weight_dropout: rate in [0, 1) of DropConnect on the
            recurrent kernel of every layer ("weight drop": one mask per
            batch, shared by every step; AWD-LSTM uses 0.5).
        activation_regularization: float >= 0, `alpha` of AR,
            `alpha * mean(h^2)` on the last layer's dropped outputs (AWD: 2).
        temporal_activation_regularization: float >= 0, `beta` of TAR,
            `beta * mean((h_t - h_{t-1})^2)` on the last layer's outputs
            before dropout (AWD: 1). Both through
            `kzoo.layers.ActivationRegularization`, in training only.
        softmax: `"full"` (default) or `"sampled"`. With `"sampled"`,
            `fit` trains on a sampled softmax over `num_sampled` log-uniform
            candidates per batch (see `kzoo.layers.SampledSoftmax`: cost
            `O(num_sampled)` instead of `O(vocabulary_size)` per token,
            tied weights stay tied): in training the model returns its last
            hidden states and `compute_loss` ignores the compiled loss.
            `evaluate`, `predict` and direct calls are exact (logits over
            the whole vocabulary), so validation perplexities are true ones.
            The log-uniform proposal assumes ids sorted by falling frequency.
        num_sampled: positive int < `vocabulary_size`, candidates per
            training batch with `softmax="sampled"`.
        dtype: optional dtype policy.
        **kwargs: `keras.Model` arguments (`name`, ...).

    All the AWD-LSTM options (`input_dropout` to `softmax`) are off by
    default, and with them off the model is the one described above.

    Call arguments:
        token_ids: `(batch, time)` int tensor.
        training: whether dropout is active (with `softmax="sampled"`, a
            training call returns the last hidden states
            `(batch, time, units)` instead of logits).

    Returns:
        `(batch, time, vocabulary_size)` logits.

    Example:

    >>> backbone = LanguageModelBackbone(100, embedding_dim=16, units=32, num_layers=2)
    >>> logits = backbone(np.zeros((2, 7), "int32"))     # (2, 7, 100)

    AWD-LSTM regularisation and a sampled softmax for a large vocabulary:

    >>> awd = LanguageModelBackbone(
    ...     30000, embedding_dim=256, units=256, num_layers=3, tie_weights=True,
    ...     input_dropout=0.4, hidden_dropout=0.25, output_dropout=0.4,
    ...     variational_dropout=True, embedding_dropout=0.1,
    ...     recurrent_weight_dropout=0.5, activation_regularization=2.0,
    ...     temporal_activation_regularization=1.0, softmax="sampled", num_sampled=1024)
    >>> awd.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> awd.fit(x, y)          # sampled softmax + AR/TAR in training
    >>> awd.evaluate(x, y)     # exact cross-entropy

    Reference:
        Zaremba, Sutskever & Vinyals, "Recurrent Neural Network
        Regularization", arXiv:1409.2329, 2014.
        Merity, Keskar & Socher, "Regularizing and Optimizing LSTM Language
        Models", ICLR 2018, https://arxiv.org/abs/1708.02182
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim=200,
        units=200,
        num_layers=2,
        cell_type="lstm",
        dropout=0.0,
        tie_weights=False,
        stateful=False,
        batch_size=None,
        seed=None,
        input_dropout=None,
        hidden_dropout=None,
        output_dropout=None,
        variational_dropout=False,
        embedding_dropout=0.0,
        recurrent_weight_dropout=0.0,
        activation_regularization=0.0,
        temporal_activation_regularization=0.0,
        softmax="full",
        num_sampled=1024,
        dtype=None,
        **kwargs,
    ):
        check_units(vocabulary_size, "vocabulary_size")
        check_units(embedding_dim, "embedding_dim")
        check_units(units, "units")
        check_units(num_layers, "num_layers")
        check_choice(cell_type, tuple(RECURRENT_LAYERS), "cell_type")
        dropout = check_rate(dropout, "dropout")
        tie_weights = check_bool(tie_weights, "tie_weights")
        if tie_weights and units != embedding_dim:
            raise ValueError(
                "`tie_weights=True` reuses the embedding matrix as the output "
                "projection, so `units` must equal `embedding_dim`. Received: "
                f"units={units}, embedding_dim={embedding_dim}"
            )
        if batch_size is not None:
            check_units(batch_size, "batch_size")
        stateful = check_bool(stateful, "stateful")
        seed = check_seed(seed)
        if stateful and batch_size is None:
            raise ValueError("`stateful=True` needs a fixed `batch_size`.")
        rates = {
            name: dropout if rate is None else check_rate(rate, name)
            for name, rate in (
                ("input_dropout", input_dropout),
                ("hidden_dropout", hidden_dropout),
                ("output_dropout", output_dropout),
            )
        }
        variational_dropout = check_bool(variational_dropout, "variational_dropout")
        embedding_dropout = check_rate(embedding_dropout, "embedding_dropout")
        recurrent_weight_dropout = check_rate(recurrent_weight_dropout, "recurrent_weight_dropout")
        activation_regularization = check_number(
            activation_regularization, "activation_regularization", 0.0, float("inf")
        )
        temporal_activation_regularization = check_number(
            temporal_activation_regularization,
            "temporal_activation_regularization",
            0.0,
            float("inf"),
        )
        check_choice(softmax, SOFTMAXES, "softmax")
        check_units(num_sampled, "num_sampled")
        if softmax == "sampled" and num_sampled >= vocabulary_size:
            raise ValueError(
                "`softmax='sampled'` scores `num_sampled` candidates instead of the whole "
                f"vocabulary, so `num_sampled` must be below vocabulary_size={vocabulary_size}. "
                f"Received: num_sampled={num_sampled}"
            )
        if softmax == "sampled" and units == vocabulary_size:
            raise ValueError(
                "`softmax='sampled'` tells hidden states from logits by their width, so "
                f"`units` must differ from `vocabulary_size`. Received: units={units}"
            )

        # === Layers ===
        # Held in locals until `super().__init__` has run: the PyTorch backend
        # refuses sublayer attributes on an uninitialised module.
        if tie_weights:
            embedding = TiedEmbedding(vocabulary_size, embedding_dim, dtype=dtype, name="embedding")
            output_projection = None
        else:
            embedding = keras.layers.Embedding(
                vocabulary_size, embedding_dim, dtype=dtype, name="embedding"
            )
            output_projection = keras.layers.Dense(
                vocabulary_size, dtype=dtype, name="output_projection"
            )
        layer_class = RECURRENT_LAYERS[cell_type]
        # Passed only when on, so the default layers' configs stay as they were.
        weight_drop = {}
        if recurrent_weight_dropout > 0:
            weight_drop = {"recurrent_weight_dropout": recurrent_weight_dropout}
            if seed is not None:
                weight_drop["seed"] = seed + 1000
        recurrent_layers = [
            layer_class(
                units,
                return_sequences=True,
                stateful=stateful,
                dtype=dtype,
                name=f"{cell_type}_{i}",
                **weight_drop,
            )
            for i in range(num_layers)
        ]
        # Rate of dropout_i: before layer i (0: on the embeddings), the last before the output.
        layer_rates = (
            [rates["input_dropout"]]
            + [rates["hidden_dropout"]] * (num_layers - 1)
            + [rates["output_dropout"]]
        )
        widths = [embedding_dim] + [units] * num_layers
        dropout_layers = [
            keras.layers.Dropout(
                rate,
                noise_shape=(None, 1, width) if variational_dropout else None,
                seed=None if seed is None else seed + i,
                dtype=dtype,
                name=f"dropout_{i}",
            )
            for i, (rate, width) in enumerate(zip(layer_rates, widths))
        ]
        regularizers = {}
        if embedding_dropout > 0:
            regularizers["embedding"] = EmbeddingDropout(
                embedding_dropout,
                vocabulary_size,
                seed=None if seed is None else seed + 2000,
                dtype=dtype,
                name="embedding_dropout",
            )
        # AWD-LSTM: TAR on the last layer's raw outputs, AR on its dropped ones.
        if temporal_activation_regularization > 0:
            regularizers["tar"] = ActivationRegularization(
                alpha=0.0,
                beta=temporal_activation_regularization,
                dtype=dtype,
                name="temporal_activation_regularization",
            )
        if activation_regularization > 0:
            regularizers["ar"] = ActivationRegularization(
                alpha=activation_regularization,
                beta=0.0,
                dtype=dtype,
                name="activation_regularization",
            )

        # === Functional model ===
        token_ids = keras.Input(
            shape=(None,), batch_size=batch_size, dtype="int32", name="token_ids"
        )
        x = embedding(token_ids)  # (batch, time, embedding_dim)
        if "embedding" in regularizers:
            x = regularizers["embedding"](x, token_ids)
        for i, layer in enumerate(recurrent_layers):
            if layer_rates[i] > 0:
                x = dropout_layers[i](x)
            x = layer(x)  # (batch, time, units)
        if "tar" in regularizers:
            x = regularizers["tar"](x)
        if layer_rates[-1] > 0:
            x = dropout_layers[-1](x)
        if "ar" in regularizers:
            x = regularizers["ar"](x)
        hidden = x
        logits = _project(embedding, output_projection, hidden)  # (batch, time, vocabulary_size)
        # With a sampled softmax, training calls stop at the hidden states:
        # a second functional model over the same layers (not tracked).
        hidden_model = keras.Model(token_ids, hidden) if softmax == "sampled" else None
        super().__init__(inputs=token_ids, outputs=logits, **kwargs)
        if dtype is not None:  # the functional constructor does not take `dtype`
            self.dtype_policy = keras.dtype_policies.get(dtype)
        self.embedding = embedding
        self.output_projection = output_projection
        self.recurrent_layers = recurrent_layers
        self.dropout_layers = dropout_layers
        if softmax == "sampled":
            untracked_cache(self, "sampled_softmax").get("hidden_model", lambda: hidden_model)
            self.candidate_seed_generator = keras.random.SeedGenerator(
                None if seed is None else seed + 3000
            )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.num_layers = num_layers
        self.cell_type = cell_type
        self.dropout = dropout
        self.tie_weights = tie_weights
        self.stateful = stateful
        self.batch_size = batch_size
        self.seed = seed
        self.input_dropout = input_dropout
        self.hidden_dropout = hidden_dropout
        self.output_dropout = output_dropout
        self.variational_dropout = variational_dropout
        self.embedding_dropout = embedding_dropout
        self.recurrent_weight_dropout = recurrent_weight_dropout
        self.activation_regularization = activation_regularization
        self.temporal_activation_regularization = temporal_activation_regularization
        self.softmax = softmax
        self.num_sampled = num_sampled

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "num_layers": self.num_layers,
            "cell_type": self.cell_type,
            "dropout": self.dropout,
            "tie_weights": self.tie_weights,
            "stateful": self.stateful,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }
        # The AWD-LSTM options only when set: configs (and so the files) of
        # models without them stay as they were.
        for name, default in AWD_DEFAULTS.items():
            if getattr(self, name) != default:
                config[name] = getattr(self, name)
        return config

    # === Sampled softmax training ===

    def call(self, inputs, training=None, mask=None, **kwargs):
        if training and self.softmax == "sampled":
            hidden_model = untracked_cache(self, "sampled_softmax").get("hidden_model")
            return hidden_model(inputs, training=True)  # (batch, time, units)
        return super().call(inputs, training=training, mask=mask, **kwargs)

    def output_weights(self):
        """`(weights (V, d), bias (V,) or None)` of the output projection."""
        if self.output_projection is None:
            return self.embedding.embeddings, getattr(self.embedding, "output_bias", None)
        return ops.transpose(self.output_projection.kernel), self.output_projection.bias

    def sampled_token_loss(self, hidden, targets):
        """Per-token sampled softmax loss `(batch, time)` of hidden states and next ids.

        Draws `num_sampled` candidates (log-uniform, with replacement, shared
        by the batch) from the model's seed generator; see
        `kzoo.layers.sampled_softmax.sampled_softmax_cross_entropy`.
        """
        weights, bias = self.output_weights()
        sampled = draw_candidates(
            self.num_sampled, self.vocabulary_size, "log_uniform", self.candidate_seed_generator
        )
        log_expected = candidate_log_probabilities(
            sampled, self.vocabulary_size, "log_uniform"
        ) + math.log(self.num_sampled)
        return sampled_softmax_cross_entropy(
            hidden, targets, weights, bias, sampled, log_expected, remove_accidental_hits=True
        )

    def _is_hidden(self, y_pred):
        return (
            self.softmax == "sampled"
            and not isinstance(y_pred, (list, tuple, dict))
            and y_pred.shape[-1] != self.vocabulary_size
        )

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not (training and self._is_hidden(y_pred)):
            return super().compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
            )
        token_loss = self.sampled_token_loss(y_pred, y)  # (batch, time)
        if sample_weight is not None:
            weight = ops.cast(sample_weight, "float32")
            if len(weight.shape) == 1:
                weight = ops.expand_dims(weight, -1)
            token_loss = token_loss * weight
        # As Keras's "sum_over_batch_size" reduction: the exact loss's scale.
        loss = ops.mean(token_loss)
        for extra in self.losses:  # AR/TAR and any weight regularizers
            loss = loss + ops.cast(ops.sum(extra), "float32")
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if self._is_hidden(y_pred):
            # A sampled training step has no logits: only the loss is reported.
            # The compiled metrics are still built (from the logits' spec), as
            # Keras reads all metrics' results at the end of `fit`.
            compiled = getattr(self, "_compile_metrics", None)
            if compiled is not None and not compiled.built:
                logits_shape = tuple(y_pred.shape[:-1]) + (self.vocabulary_size,)
                compiled.build(y, keras.KerasTensor(logits_shape, dtype=y_pred.dtype))
            return {m.name: m.result() for m in self.metrics if m.name == "loss"}
        return super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for old, new in RENAMED_ARGUMENTS.items():
            if old in config:
                if new in config:
                    raise ValueError(
                        f"The config has both `{old}` (the earlier name) and `{new}`; keep `{new}`."
                    )
                config[new] = config.pop(old)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.get(config["dtype"])
        return cls(**config)

    def save_stateless(self, path, weights_dtype="auto", max_megabytes=10.0):
        """Saves a stateless copy (any batch size) without the optimizer state.

        The way to ship a model trained statefully (truncated BPTT): the
        file loads as a plain model for scoring and generation. Arguments as
        in `kzoo.models.saving.save_compact`.

        Returns:
            The stored weights dtype, "float32" or "float16".
        """
        config = {**self.get_config(), "stateful": False, "batch_size": None}
        return save_compact(self, path, weights_dtype, max_megabytes, config=config)

    def check_inputs(self, x):
        """Refuses concrete ids outside `[0, vocabulary_size)` (`predict`, `evaluate`)."""
        check_id_matrix(x, self.vocabulary_size, "x")

    def check_targets(self, y):
        check_token_ids(y, self.vocabulary_size, "y")

    def reset_states(self):
        """Zeros the carried states of a stateful model (no-op otherwise)."""
        for layer in self.recurrent_layers:
            if layer.stateful:
                layer.reset_states()

    # === Token-by-token decoding (the `kzoo.generation` contract) ===

    def generation_cache(self, batch_size, context=None):
        """Zero recurrent states for `batch_size` rows: a flat tuple, layer by layer.

        Args:
            batch_size: int (or scalar tensor).
            context: must be None: a language model is conditioned on its
                prompt only.
        """
        if context is not None:
            raise ValueError(
                f"{type(self).__name__} takes no `context` (it is conditioned on the "
                f"prompt only). Received a {type(context).__name__}."
            )
        return tuple(
            ops.zeros((batch_size, size), dtype=self.compute_dtype)
            for layer in self.recurrent_layers
            for size in state_sizes(layer.cell)
        )

    def generation_step(self, prompt, cache, index):
        """Advances the state by the token at `index - 1`; logits for `index`.

        Args:
            prompt: `(batch, length)` int tensor.
            cache: the flat tuple of states from `generation_cache` or the
                previous step.
            index: int scalar tensor, the position to predict (>= 1).

        Returns:
            `(logits (batch, vocabulary_size), hidden (batch, units),
            new cache)`.
        """
        batch_size = ops.shape(prompt)[0]
        token = ops.slice(prompt, [0, index - 1], [batch_size, 1])  # (batch, 1)
        x = self.embedding(token)[:, 0, :]  # (batch, embedding_dim)
        states, new_states, offset = list(cache), [], 0
        for layer in self.recurrent_layers:
            n = len(state_sizes(layer.cell))
            x, layer_states = layer.cell(x, states[offset : offset + n], training=False)
            new_states.extend(layer_states)
            offset += n
        return _project(self.embedding, self.output_projection, x), x, tuple(new_states)


def _project(embedding, output_projection, hidden):
    if output_projection is None:
        return embedding(hidden, reverse=True)
    return output_projection(hidden)
