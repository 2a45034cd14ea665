"""The language model network: embedding, stacked recurrent layers, logits."""

import keras
from keras import ops

from kzoo.layers import GRU, LSTM, SimpleRNN
from kzoo.layers.stacked_cells import state_sizes
from kzoo.layers.tied_embedding import TiedEmbedding
from kzoo.models.checked_inputs import CheckedTokenInputs
from kzoo.models.saving import save_compact
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import (
    check_bool,
    check_choice,
    check_id_matrix,
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
        dtype: optional dtype policy.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        token_ids: `(batch, time)` int tensor.
        training: whether dropout is active.

    Returns:
        `(batch, time, vocabulary_size)` logits.

    Example:

    >>> backbone = LanguageModelBackbone(100, embedding_dim=16, units=32, num_layers=2)
    >>> logits = backbone(np.zeros((2, 7), "int32"))     # (2, 7, 100)

    Reference:
        Zaremba, Sutskever & Vinyals, "Recurrent Neural Network
        Regularization", arXiv:1409.2329, 2014.
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
        recurrent_layers = [
            layer_class(
                units,
                return_sequences=True,
                stateful=stateful,
                dtype=dtype,
                name=f"{cell_type}_{i}",
            )
            for i in range(num_layers)
        ]
        dropout_layers = [
            keras.layers.Dropout(
                dropout, seed=None if seed is None else seed + i, dtype=dtype, name=f"dropout_{i}"
            )
            for i in range(num_layers + 1)
        ]

        # === Functional model ===
        token_ids = keras.Input(
            shape=(None,), batch_size=batch_size, dtype="int32", name="token_ids"
        )
        x = embedding(token_ids)  # (batch, time, embedding_dim)
        for i, layer in enumerate(recurrent_layers):
            if dropout > 0:
                x = dropout_layers[i](x)
            x = layer(x)  # (batch, time, units)
        if dropout > 0:
            x = dropout_layers[-1](x)
        logits = _project(embedding, output_projection, x)  # (batch, time, vocabulary_size)
        super().__init__(inputs=token_ids, outputs=logits, **kwargs)
        if dtype is not None:  # the functional constructor does not take `dtype`
            self.dtype_policy = keras.dtype_policies.get(dtype)
        self.embedding = embedding
        self.output_projection = output_projection
        self.recurrent_layers = recurrent_layers
        self.dropout_layers = dropout_layers

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

    def get_config(self):
        return {
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
