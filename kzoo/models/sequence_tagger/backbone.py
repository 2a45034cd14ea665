"""The network of a `SequenceTagger`: token features and a BiLSTM stack."""

import keras
from keras import ops

from kzoo.layers.character_encoder import CharacterEncoder
from kzoo.layers.stacked_rnn import StackedRNN
from kzoo.layers.unknown_word_dropout import UnknownWordDropout
from kzoo.models.sequence_tagger.preprocessor import CASINGS, PAD, UNK
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_bool, check_choice, check_int, check_rate, check_seed

CHAR_ENCODERS = (None, "cnn", "lstm")


@register_serializable
class SequenceTaggerBackbone(keras.Model):
    """Token features -> bidirectional LSTM stack, one vector per token.

    For token t of a sentence:

        x_t = [E_word[w_t]; char_features(c_t); E_case[k_t]]
        h_t = BiLSTM^L(dropout(x))_t

    with an optional character encoder (`kzoo.layers.CharacterEncoder`, a
    CNN or a BiLSTM over the token's characters) and an optional casing
    embedding. Padding (word id 0) is masked in the BiLSTM stack, so a
    sentence gets the same vectors whatever it is batched with.

    Inputs are a dict of int arrays, all 0 at padding: `"words"` `(batch,
    time)` word ids, `"chars"` `(batch, time, max_word_length)` character
    ids and `"casing"` `(batch, time)` casing ids (`CASINGS`); a
    `SequenceTaggerPreprocessor` makes them from raw sentences.

    Args:
        word_vocabulary_size: int >= 2, rows of the word embedding (id 0 is
            padding, id 1 the unknown word).
        char_vocabulary_size: int >= 2, rows of the character embedding;
            ignored (may be `None`) when `char_encoder` is `None`.
        word_dim: word embedding size.
        char_encoder: `"cnn"`, `"lstm"` or `None` (no character features).
        char_dim: character embedding size.
        char_units: CNN filters or char-LSTM units per direction.
        max_word_length: characters per token in the `"chars"` input.
        use_casing: add a casing embedding.
        casing_dim: casing embedding size.
        lstm_units: units per direction of each BiLSTM layer.
        num_layers: number of BiLSTM layers.
        dropout: dropout on the token features and between BiLSTM layers,
            in [0, 1).
        word_dropout: probability in [0, 1) of replacing a training word by
            the unknown id (`kzoo.layers.UnknownWordDropout`); 0 = off.
        seed: int seed for the dropouts.
        **kwargs: `keras.Model` arguments (`name`).

    Call arguments:
        inputs: the dict described above.
        training: whether dropout is active.

    Returns:
        float `(batch, time, 2 * lstm_units)`.

    Example:

    >>> backbone = SequenceTaggerBackbone(1000, 60, word_dim=32, lstm_units=16)
    >>> x = {"words": np.ones((2, 5), "int32"), "chars": np.ones((2, 5, 20), "int32"),
    ...      "casing": np.ones((2, 5), "int32")}
    >>> backbone(x).shape
    (2, 5, 32)
    """

    def __init__(
        self,
        word_vocabulary_size,
        char_vocabulary_size=None,
        word_dim=100,
        char_encoder="cnn",
        char_dim=25,
        char_units=50,
        max_word_length=20,
        use_casing=True,
        casing_dim=8,
        lstm_units=100,
        num_layers=1,
        dropout=0.5,
        word_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        word_vocabulary_size = check_int(word_vocabulary_size, "word_vocabulary_size", minimum=2)
        char_encoder = check_choice(char_encoder, CHAR_ENCODERS, "char_encoder")
        if char_encoder is not None:
            char_vocabulary_size = check_int(
                char_vocabulary_size, "char_vocabulary_size", minimum=2
            )
        word_dim = check_int(word_dim, "word_dim", minimum=1)
        char_dim = check_int(char_dim, "char_dim", minimum=1)
        char_units = check_int(char_units, "char_units", minimum=1)
        max_word_length = check_int(max_word_length, "max_word_length", minimum=1)
        use_casing = check_bool(use_casing, "use_casing")
        casing_dim = check_int(casing_dim, "casing_dim", minimum=1)
        lstm_units = check_int(lstm_units, "lstm_units", minimum=1)
        num_layers = check_int(num_layers, "num_layers", minimum=1)
        dropout = check_rate(dropout, "dropout")
        word_dropout = check_rate(word_dropout, "word_dropout")
        seed = check_seed(seed)

        # === Layers ===
        words = keras.Input((None,), dtype="int32", name="words")
        chars = keras.Input((None, max_word_length), dtype="int32", name="chars")
        casing = keras.Input((None,), dtype="int32", name="casing")

        # === Functional graph ===
        word_ids = words
        if word_dropout:
            word_ids = UnknownWordDropout(
                word_dropout, unknown_id=UNK, seed=seed, name="word_dropout"
            )(words)
        features = [
            keras.layers.Embedding(
                word_vocabulary_size, word_dim, mask_zero=True, name="word_embedding"
            )(word_ids)  # (batch, time, word_dim)
        ]
        if char_encoder is not None:
            features.append(
                CharacterEncoder(
                    char_vocabulary_size, char_encoder, char_dim, char_units, name="char_features"
                )(chars)
            )
        if use_casing:
            features.append(
                keras.layers.Embedding(len(CASINGS), casing_dim, name="casing_embedding")(casing)
            )
        x = (
            features[0]
            if len(features) == 1
            else keras.layers.Concatenate(name="features")(features)
        )
        x = keras.layers.Dropout(dropout, seed=seed, name="feature_dropout")(x)
        # The padding mask comes from the word ids, passed explicitly: the
        # character and casing features carry none.
        padding_mask = ops.not_equal(words, PAD)  # (batch, time)
        hidden = StackedRNN(
            lstm_units,
            num_layers=num_layers,
            bidirectional=True,
            dropout=dropout,
            return_sequences=True,
            seed=seed,
            name="bilstm",
        )(x, mask=padding_mask)  # (batch, time, 2 * lstm_units)
        super().__init__({"words": words, "chars": chars, "casing": casing}, hidden, **kwargs)

        # === Config ===
        self.word_vocabulary_size = word_vocabulary_size
        self.char_vocabulary_size = char_vocabulary_size
        self.word_dim = word_dim
        self.char_encoder = char_encoder
        self.char_dim = char_dim
        self.char_units = char_units
        self.max_word_length = max_word_length
        self.use_casing = use_casing
        self.casing_dim = casing_dim
        self.lstm_units = lstm_units
        self.num_layers = num_layers
        self.dropout = dropout
        self.word_dropout = word_dropout
        self.seed = seed

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "word_vocabulary_size": self.word_vocabulary_size,
            "char_vocabulary_size": self.char_vocabulary_size,
            "word_dim": self.word_dim,
            "char_encoder": self.char_encoder,
            "char_dim": self.char_dim,
            "char_units": self.char_units,
            "max_word_length": self.max_word_length,
            "use_casing": self.use_casing,
            "casing_dim": self.casing_dim,
            "lstm_units": self.lstm_units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "word_dropout": self.word_dropout,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
