"""Recurrent text classifier on integer token ids."""

import keras

from kzoo.layers import GRU, LSTM, Bidirectional, SimpleRNN
from kzoo.models.checked_inputs import CheckedTokenInputs
from kzoo.models.pooling import (
    AttentionPooling1D,
    GlobalMaskedAveragePooling1D,
    GlobalMaskedMaxPooling1D,
)
from kzoo.models.word_type_dropout import WordTypeDropout
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import (
    check_bool,
    check_choice,
    check_id_matrix,
    check_rate,
    check_seed,
    check_units,
)

CELLS = {"rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}
POOLINGS = ("last", "max", "mean", "attention")


def _check_pooling(pooling):
    names = [pooling] if isinstance(pooling, str) else pooling
    if not isinstance(names, (list, tuple)) or not names:
        raise ValueError(
            f"`pooling` must be one of {POOLINGS} or a non-empty list of them. "
            f"Received: pooling={pooling!r}"
        )
    for name in names:
        check_choice(name, POOLINGS, "pooling")
    if len(set(names)) != len(names):
        raise ValueError(f"`pooling` lists a pooling twice. Received: pooling={pooling!r}")
    return pooling if isinstance(pooling, str) else list(pooling)


@register_serializable
class TextClassifier(CheckedTokenInputs, keras.Model):
    """Embedding, recurrent layers, mask-aware pooling and a dense head.

        e_t = Embedding(ids_t)                    (id 0 = padding, masked)
        h_{1..T} = RNN_L(... RNN_1(e_{1..T}))     (each optionally bidirectional)
        z = [pool_1(h), pool_2(h), ...]           (last, max, mean, attention)
        p = sigmoid(z W + b)  or  softmax(z W + b)

    Padding never changes a text's prediction: the recurrent layers keep
    their state over padded steps and every pooling skips them.

    The model takes `(batch, time)` int ids (0 = padding) and returns
    probabilities: `(batch, 1)` positive-class probabilities when
    `num_classes == 2`, else `(batch, num_classes)`. Use it with
    `model.compile(...)` and `model.fit(ids, labels)`; for raw strings wrap
    it with a tokenizer in `kzoo.models.TextPipeline`. `predict` and
    `evaluate` raise a `ValueError` for ids outside `[0, vocabulary_size)`
    (which no backend reports: JAX returns NaN, negative ids wrap around).

    Args:
        vocabulary_size: int >= 2, number of ids (padding and OOV included).
        embedding_dim: positive int.
        cell: `"gru"` (default), `"lstm"` or `"rnn"`.
        units: positive int, units per direction of every recurrent layer.
        num_layers: positive int, number of stacked recurrent layers.
        bidirectional: wrap each recurrent layer in `kzoo.layers.Bidirectional`.
        dropout: input dropout of every cell, one mask per sequence
            (variational, as `keras.layers.LSTM(dropout=...)`); between
            stacked layers it acts as inter-layer dropout.
        recurrent_dropout: dropout of the recurrent state, one mask per
            sequence (Gal & Ghahramani, 2016).
        embedding_dropout: drops whole tokens: each token's embedding vector
            is zeroed with this rate (word dropout, in the spirit of the
            AWD-LSTM embedding dropout).
        spatial_dropout: drops whole embedding channels for a sequence
            (`SpatialDropout1D`, the "locked" dropout of AWD-LSTM).
        word_type_dropout: drops whole word types per batch: every
            occurrence of a drawn word becomes the unknown id 1
            (`WordTypeDropout`, the embedding dropout of AWD-LSTM).
        pooling: one of `"last"`, `"max"`, `"mean"`, `"attention"`, or a list
            of them whose results are concatenated, e.g. `["max", "mean"]`.
        attention_units: hidden size of the attention scorer.
        hidden_units: size of an optional ReLU layer before the output
            (0: none).
        head_dropout: dropout rate on the pooled features (and on the hidden
            layer).
        num_classes: int >= 2; 2 gives one sigmoid output.
        sequence_length: optional fixed number of time steps of the input
            (default `None`: any length).
        seed: optional int seed of all dropout layers.
        **kwargs: `keras.Model` arguments (`name`, `trainable`).

    Example:

    >>> model = kzoo.models.TextClassifier(20000, cell="lstm", pooling=["max", "mean"])
    >>> model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    >>> model.fit(x_ids, y, epochs=2)
    >>> model.predict(x_ids).shape
    (n, 1)

    Reference:
        Merity et al., 2018, "Regularizing and Optimizing LSTM Language
        Models" (AWD-LSTM), https://arxiv.org/abs/1708.02182
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim=128,
        cell="gru",
        units=64,
        num_layers=1,
        bidirectional=True,
        dropout=0.0,
        recurrent_dropout=0.0,
        embedding_dropout=0.0,
        spatial_dropout=0.0,
        word_type_dropout=0.0,
        pooling="max",
        attention_units=64,
        hidden_units=0,
        head_dropout=0.0,
        num_classes=2,
        sequence_length=None,
        seed=None,
        **kwargs,
    ):
        if (
            isinstance(vocabulary_size, bool)
            or not isinstance(vocabulary_size, int)
            or (vocabulary_size < 2)
        ):
            raise ValueError(
                "`vocabulary_size` must be an int >= 2 (padding and OOV ids included). "
                f"Received: vocabulary_size={vocabulary_size!r}"
            )
        check_units(embedding_dim, "embedding_dim")
        check_choice(cell, tuple(CELLS), "cell")
        check_units(units)
        check_units(num_layers, "num_layers")
        for name, rate in (
            ("dropout", dropout),
            ("recurrent_dropout", recurrent_dropout),
            ("embedding_dropout", embedding_dropout),
            ("spatial_dropout", spatial_dropout),
            ("word_type_dropout", word_type_dropout),
            ("head_dropout", head_dropout),
        ):
            check_rate(rate, name)
        pooling = _check_pooling(pooling)
        check_units(attention_units, "attention_units")
        if isinstance(hidden_units, bool) or not isinstance(hidden_units, int) or hidden_units < 0:
            raise ValueError(
                f"`hidden_units` must be an int >= 0. Received: hidden_units={hidden_units!r}"
            )
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an int >= 2. Received: {num_classes!r}")
        if sequence_length is not None:
            check_units(sequence_length, "sequence_length")
        bidirectional = check_bool(bidirectional, "bidirectional")
        seed = check_seed(seed)
        poolings = [pooling] if isinstance(pooling, str) else pooling

        def seed_for(offset):
            return None if seed is None else seed + offset

        # === Layers ===
        embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, mask_zero=True, name="embedding"
        )
        embedding_dropout_layer = None
        if embedding_dropout > 0:
            # One draw per (sequence, token), shared by all channels.
            embedding_dropout_layer = keras.layers.Dropout(
                embedding_dropout,
                noise_shape=(None, None, 1),
                seed=seed_for(0),
                name="embedding_dropout",
            )
        spatial_dropout_layer = None
        if spatial_dropout > 0:
            spatial_dropout_layer = keras.layers.SpatialDropout1D(
                spatial_dropout, seed=seed_for(1), name="spatial_dropout"
            )
        needs_sequence = any(name != "last" for name in poolings)
        needs_last = "last" in poolings
        recurrent_layers = []
        for i in range(num_layers):
            last_layer = i == num_layers - 1
            layer = CELLS[cell](
                units,
                return_sequences=needs_sequence or not last_layer,
                return_state=last_layer and needs_last and needs_sequence,
                dropout=dropout,
                recurrent_dropout=recurrent_dropout,
                seed=seed_for(10 + i),
                name=f"{cell}_{i}",
            )
            if bidirectional:
                layer = Bidirectional(layer, name=f"bidirectional_{i}")
            recurrent_layers.append(layer)
        pooling_layers = {
            "max": GlobalMaskedMaxPooling1D(name="max_pooling"),
            "mean": GlobalMaskedAveragePooling1D(name="mean_pooling"),
            "attention": AttentionPooling1D(attention_units, name="attention_pooling"),
        }

        # === Functional model ===
        token_ids = keras.Input(shape=(sequence_length,), dtype="int32", name="token_ids")
        ids = token_ids
        if word_type_dropout > 0:
            ids = WordTypeDropout(
                word_type_dropout, vocabulary_size, seed=seed_for(4), name="word_type_dropout"
            )(ids)
        x = embedding(ids)  # (batch, time, embedding_dim), mask (batch, time)
        if embedding_dropout_layer is not None:
            x = embedding_dropout_layer(x)
        if spatial_dropout_layer is not None:
            x = spatial_dropout_layer(x)
        for layer in recurrent_layers:
            x = layer(x)
        last = None
        if needs_last and needs_sequence:
            # [sequences, *forward states, *backward states]; h is state 0.
            x, *states = x
            last = states[0]
            if bidirectional:
                last = keras.layers.Concatenate(name="last_states")(
                    [states[0], states[len(states) // 2]]
                )
        elif needs_last:
            last, x = x, None  # the final output: (batch, directions * units)
        features = []
        for name in poolings:
            features.append(last if name == "last" else pooling_layers[name](x))
        z = features[0]
        if len(features) > 1:
            z = keras.layers.Concatenate(name="pooled")(features)
        if head_dropout > 0:
            z = keras.layers.Dropout(head_dropout, seed=seed_for(2), name="head_dropout")(z)
        if hidden_units:
            z = keras.layers.Dense(hidden_units, activation="relu", name="hidden")(z)
            if head_dropout > 0:
                z = keras.layers.Dropout(head_dropout, seed=seed_for(3), name="hidden_dropout")(z)
        if num_classes == 2:
            outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="output")(z)
        else:
            outputs = keras.layers.Dense(
                num_classes, activation="softmax", dtype="float32", name="output"
            )(z)
        super().__init__(inputs=token_ids, outputs=outputs, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.embedding_dropout = float(embedding_dropout)
        self.spatial_dropout = float(spatial_dropout)
        self.word_type_dropout = float(word_type_dropout)
        self.pooling = pooling
        self.attention_units = attention_units
        self.hidden_units = hidden_units
        self.head_dropout = float(head_dropout)
        self.num_classes = num_classes
        self.sequence_length = sequence_length
        self.seed = seed

    def check_inputs(self, x):
        """Refuses concrete ids outside `[0, vocabulary_size)` (see `predict`)."""
        if isinstance(x, dict):
            x = x.get("token_ids")
        check_id_matrix(x, self.vocabulary_size, "x")

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "embedding_dropout": self.embedding_dropout,
            "spatial_dropout": self.spatial_dropout,
            "word_type_dropout": self.word_type_dropout,
            "pooling": self.pooling,
            "attention_units": self.attention_units,
            "hidden_units": self.hidden_units,
            "head_dropout": self.head_dropout,
            "num_classes": self.num_classes,
            "sequence_length": self.sequence_length,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
