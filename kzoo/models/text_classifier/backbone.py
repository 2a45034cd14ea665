"""The text classifier's network on ids: embedding, recurrent layers, pooling."""

import keras

from kzoo.layers import GRU, LSTM, Bidirectional, SimpleRNN
from kzoo.layers.pooling import (
    AttentionPooling1D,
    GlobalMaskedAveragePooling1D,
    GlobalMaskedMaxPooling1D,
)
from kzoo.layers.reverse_sequence import ReverseSequence
from kzoo.layers.word_type_dropout import WordTypeDropout
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_bool, check_choice, check_int, check_rate, check_seed

CELL_TYPES = {"rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}
POOLINGS = ("last", "max", "mean", "attention")


def check_pooling(pooling):
    """`pooling` as a str or a list of distinct names of `POOLINGS`."""
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
class TextClassifierBackbone(keras.Model):
    """Token ids to one feature vector per text: embedding, RNNs, mask-aware pooling.

        e_t = Embedding(ids_t)                    (id 0 = padding, masked)
        h_{1..T} = RNN_L(... RNN_1(e_{1..T}))     (each optionally bidirectional)
        z = [pool_1(h), pool_2(h), ...]           (last, max, mean, attention)

    Padding never changes a text's features: the recurrent layers keep their
    state over padded steps and every pooling skips them. A functional model:
    `(batch, time)` int ids (0 = padding) in, `(batch, features)` out, with
    `features = directions * units * len(pooling)`.
    `kzoo.models.TextClassifier` puts a dense head on it.

    Args:
        vocabulary_size: int >= 2, number of ids (padding and OOV included).
        embedding_dim: positive int.
        cell_type: `"gru"` (default), `"lstm"` or `"rnn"`.
        units: positive int, units per direction of every recurrent layer.
        num_layers: positive int, number of stacked recurrent layers.
        bidirectional: wrap each recurrent layer in `kzoo.layers.Bidirectional`.
        dropout: input dropout of every cell, one mask per sequence
            (variational, as `keras.layers.LSTM(dropout=...)`); between
            stacked layers it acts as inter-layer dropout.
        recurrent_dropout: dropout of the recurrent state, one mask per
            sequence (Gal & Ghahramani, 2016).
        recurrent_weight_dropout: rate in [0, 1) of DropConnect on the
            recurrent kernel of every recurrent layer (both directions):
            AWD-LSTM's "weight drop", the option the `LanguageModel` has
            too, so ULMFiT fine-tunes the classifier with the language
            model's regularisation. In training each call draws one mask
            per layer, shared by the batch and all time steps, applied
            before the fused kernel runs; inference uses the whole kernel
            (see `kzoo.layers.cell_base.RecurrentCell`). Works for every
            `cell_type`. Default 0.0: off.
        embedding_dropout: drops whole tokens: each token's embedding vector
            is zeroed with this rate.
        spatial_dropout: drops whole embedding channels for a sequence
            (`SpatialDropout1D`, the "locked" dropout of AWD-LSTM).
        word_type_dropout: drops whole word types per batch: every
            occurrence of a drawn word becomes the unknown id 1
            (`kzoo.layers.WordTypeDropout`, the embedding dropout of AWD-LSTM).
        pooling: one of `"last"`, `"max"`, `"mean"`, `"attention"`, or a list
            of them whose results are concatenated, e.g. `["max", "mean"]`.
        attention_units: hidden size of the attention scorer.
        sequence_length: optional fixed number of time steps of the input
            (default `None`: any length).
        reverse: read every text from its last token to its first (the
            valid steps of each row reversed by `kzoo.layers.ReverseSequence`,
            padding left in place): the backward model of ULMFiT's forward/
            backward pair, which starts from a language model trained on
            reversed text. Its layers are named with the prefix `"backward_"`,
            so a forward and a backward backbone can sit in one model.
        seed: optional int seed of all dropout layers.
        **kwargs: `keras.Model` arguments (`name`, `trainable`).

    Example:

    >>> backbone = kzoo.models.TextClassifierBackbone(20000, cell_type="lstm", units=32)
    >>> backbone(np.array([[4, 8, 15, 0]])).shape  # bidirectional, max pooling
    (1, 64)

    Reference:
        Merity et al., 2018, "Regularizing and Optimizing LSTM Language
        Models" (AWD-LSTM), https://arxiv.org/abs/1708.02182
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim=128,
        cell_type="gru",
        units=64,
        num_layers=1,
        bidirectional=True,
        dropout=0.0,
        recurrent_dropout=0.0,
        recurrent_weight_dropout=0.0,
        embedding_dropout=0.0,
        spatial_dropout=0.0,
        word_type_dropout=0.0,
        pooling="max",
        attention_units=64,
        sequence_length=None,
        reverse=False,
        seed=None,
        **kwargs,
    ):
        vocabulary_size = check_int(vocabulary_size, "vocabulary_size", minimum=2)
        embedding_dim = check_int(embedding_dim, "embedding_dim", minimum=1)
        check_choice(cell_type, tuple(CELL_TYPES), "cell_type")
        units = check_int(units, "units", minimum=1)
        num_layers = check_int(num_layers, "num_layers", minimum=1)
        bidirectional = check_bool(bidirectional, "bidirectional")
        reverse = check_bool(reverse, "reverse")
        prefix = "backward_" if reverse else ""
        rates = {
            name: check_rate(rate, name)
            for name, rate in (
                ("dropout", dropout),
                ("recurrent_dropout", recurrent_dropout),
                ("recurrent_weight_dropout", recurrent_weight_dropout),
                ("embedding_dropout", embedding_dropout),
                ("spatial_dropout", spatial_dropout),
                ("word_type_dropout", word_type_dropout),
            )
        }
        pooling = check_pooling(pooling)
        attention_units = check_int(attention_units, "attention_units", minimum=1)
        sequence_length = check_int(sequence_length, "sequence_length", minimum=1, allow_none=True)
        seed = check_seed(seed)
        poolings = [pooling] if isinstance(pooling, str) else pooling

        def seed_for(offset):
            return None if seed is None else seed + offset

        # === Layers ===
        embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, mask_zero=True, name=f"{prefix}embedding"
        )
        needs_sequence = any(name != "last" for name in poolings)
        needs_last = "last" in poolings
        recurrent_layers = []
        for i in range(num_layers):
            last_layer = i == num_layers - 1
            layer = CELL_TYPES[cell_type](
                units,
                return_sequences=needs_sequence or not last_layer,
                return_state=last_layer and needs_last and needs_sequence,
                dropout=rates["dropout"],
                recurrent_dropout=rates["recurrent_dropout"],
                # AWD-LSTM weight drop: one mask per call, from the cell's seed.
                recurrent_weight_dropout=rates["recurrent_weight_dropout"],
                seed=seed_for(10 + i),
                name=f"{prefix}{cell_type}_{i}",
            )
            if bidirectional:
                layer = Bidirectional(layer, name=f"{prefix}bidirectional_{i}")
            recurrent_layers.append(layer)
        pooling_layers = {
            "max": GlobalMaskedMaxPooling1D(name=f"{prefix}max_pooling"),
            "mean": GlobalMaskedAveragePooling1D(name=f"{prefix}mean_pooling"),
            "attention": AttentionPooling1D(attention_units, name=f"{prefix}attention_pooling"),
        }

        # === Functional model ===
        token_ids = keras.Input(shape=(sequence_length,), dtype="int32", name="token_ids")
        ids = token_ids
        if rates["word_type_dropout"] > 0:
            ids = WordTypeDropout(
                rates["word_type_dropout"],
                vocabulary_size,
                seed=seed_for(4),
                name=f"{prefix}word_type_dropout",
            )(ids)
        if reverse:
            ids = ReverseSequence(name="reverse")(ids)
        x = embedding(ids)  # (batch, time, embedding_dim), mask (batch, time)
        if rates["embedding_dropout"] > 0:
            # One draw per (sequence, token), shared by all channels.
            x = keras.layers.Dropout(
                rates["embedding_dropout"],
                noise_shape=(None, None, 1),
                seed=seed_for(0),
                name=f"{prefix}embedding_dropout",
            )(x)
        if rates["spatial_dropout"] > 0:
            x = keras.layers.SpatialDropout1D(
                rates["spatial_dropout"], seed=seed_for(1), name=f"{prefix}spatial_dropout"
            )(x)
        for layer in recurrent_layers:
            x = layer(x)
        last = None
        if needs_last and needs_sequence:
            # [sequences, *forward states, *backward states]; h is state 0.
            x, *states = x
            last = states[0]
            if bidirectional:
                last = keras.layers.Concatenate(name=f"{prefix}last_states")(
                    [states[0], states[len(states) // 2]]
                )
        elif needs_last:
            last, x = x, None  # the final output: (batch, directions * units)
        features = [last if name == "last" else pooling_layers[name](x) for name in poolings]
        pooled = features[0]
        if len(features) > 1:
            pooled = keras.layers.Concatenate(name=f"{prefix}pooled")(features)
        super().__init__(inputs=token_ids, outputs=pooled, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.cell_type = cell_type
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = rates["dropout"]
        self.recurrent_dropout = rates["recurrent_dropout"]
        self.recurrent_weight_dropout = rates["recurrent_weight_dropout"]
        self.embedding_dropout = rates["embedding_dropout"]
        self.spatial_dropout = rates["spatial_dropout"]
        self.word_type_dropout = rates["word_type_dropout"]
        self.pooling = pooling
        self.attention_units = attention_units
        self.sequence_length = sequence_length
        self.reverse = reverse
        self.seed = seed

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "cell_type": self.cell_type,
            "units": self.units,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "recurrent_weight_dropout": self.recurrent_weight_dropout,
            "embedding_dropout": self.embedding_dropout,
            "spatial_dropout": self.spatial_dropout,
            "word_type_dropout": self.word_type_dropout,
            "pooling": self.pooling,
            "attention_units": self.attention_units,
            "sequence_length": self.sequence_length,
            "reverse": self.reverse,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "cell" in config:  # the name before `cell_type`
            config["cell_type"] = config.pop("cell")
        return cls(**config)
