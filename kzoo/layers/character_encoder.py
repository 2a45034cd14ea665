"""Per-token features computed from each token's characters."""

import keras
from keras import ops

from kzoo.layers.bidirectional import Bidirectional
from kzoo.layers.recurrent_layers import LSTM
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_choice, check_int

ENCODERS = ("cnn", "lstm")


@register_serializable
class CharacterEncoder(keras.layers.Layer):
    """Per-token features computed from the token's characters.

    Character ids `(batch, time, chars)` (0 = padding) are embedded, then
    either convolved and max-pooled over the valid characters (`"cnn"`, Ma
    and Hovy 2016):

        f = max_j relu(conv1d(E[c])_j) over valid characters j

    or read by a bidirectional LSTM whose final forward and backward states
    are concatenated (`"lstm"`, Lample et al. 2016). Every token is encoded
    on its own, so padding tokens or other tokens never change its features.

    Args:
        vocabulary_size: int >= 1, number of character ids (including the
            padding id 0).
        encoder: `"cnn"` or `"lstm"`.
        embedding_dim: int >= 1, character embedding size.
        units: int >= 1, CNN filters or LSTM units per direction.
        kernel_size: int >= 1, CNN window in characters.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        char_ids: int tensor `(batch, time, chars)`.

    Returns:
        `(batch, time, units)` for the CNN, `(batch, time, 2 * units)` for
        the LSTM; zeros for tokens without characters (padding).

    Example:

    >>> encoder = kzoo.layers.CharacterEncoder(60, "cnn", embedding_dim=16, units=32)
    >>> encoder(np.ones((2, 7, 12), "int32")).shape
    (2, 7, 32)

    Reference:
        Ma and Hovy, "End-to-end Sequence Labeling via Bi-directional
        LSTM-CNNs-CRF", ACL 2016. Lample et al., "Neural Architectures for
        Named Entity Recognition", NAACL 2016.
    """

    def __init__(
        self, vocabulary_size, encoder="cnn", embedding_dim=25, units=50, kernel_size=3, **kwargs
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = check_int(vocabulary_size, "vocabulary_size", minimum=1)
        self.encoder = check_choice(encoder, ENCODERS, "encoder")
        self.embedding_dim = check_int(embedding_dim, "embedding_dim", minimum=1)
        self.units = check_int(units, "units", minimum=1)
        self.kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size, self.embedding_dim, name="char_embedding"
        )
        if encoder == "cnn":
            self.conv = keras.layers.Conv1D(
                self.units, self.kernel_size, padding="same", activation="relu", name="char_conv"
            )
        else:
            self.rnn = Bidirectional(LSTM(self.units), name="char_bilstm")

    def build(self, input_shape):
        chars = input_shape[-1]
        self.embedding.build((None, chars))
        if self.encoder == "cnn":
            self.conv.build((None, chars, self.embedding_dim))
        else:
            self.rnn.build((None, chars, self.embedding_dim))

    def call(self, char_ids):
        shape = ops.shape(char_ids)
        ids = ops.reshape(char_ids, (-1, shape[2]))  # (batch * time, chars)
        valid = ops.not_equal(ids, 0)
        x = self.embedding(ids) * ops.expand_dims(ops.cast(valid, self.compute_dtype), -1)
        if self.encoder == "cnn":
            h = self.conv(x)  # (batch * time, chars, units), >= 0 after relu
            # Padding characters must not win the max; relu outputs are >= 0,
            # so zeroing them leaves the max over valid characters.
            h = h * ops.expand_dims(ops.cast(valid, h.dtype), -1)
            features = ops.max(h, axis=1)
        else:
            features = self.rnn(x, mask=valid)  # (batch * time, 2 * units)
            has_chars = ops.any(valid, axis=1, keepdims=True)
            features = ops.where(has_chars, features, ops.zeros_like(features))
        return ops.reshape(features, (shape[0], shape[1], -1))  # (batch, time, features)

    def compute_output_shape(self, input_shape):
        width = self.units if self.encoder == "cnn" else 2 * self.units
        return (input_shape[0], input_shape[1], width)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "encoder": self.encoder,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "kernel_size": self.kernel_size,
        }
