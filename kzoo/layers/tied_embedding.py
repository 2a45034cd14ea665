"""An embedding whose transposed matrix also maps hidden vectors to logits."""

import keras
from keras import ops

from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_bool, check_units


@register_serializable
class TiedEmbedding(keras.layers.Layer):
    """Token embedding whose transpose also maps hidden vectors to logits.

    One matrix E of shape `(input_dim, output_dim)` serves both ends of a
    language model (Press & Wolf, 2017; Inan et al., 2017):

        forward:  e_t = E[token_t]
        reverse:  logits_t = h_t E^T + b

    Args:
        input_dim: positive int, vocabulary size.
        output_dim: positive int, embedding size (must equal the size of the
            vectors given in reverse mode).
        embeddings_initializer: initializer of E. Default `"uniform"`
            (uniform in [-0.05, 0.05], as `keras.layers.Embedding`).
        use_output_bias: whether the reverse mode adds a bias `b`
            `(input_dim,)`.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: int token ids `(...)` or, with `reverse=True`, float vectors
            `(..., output_dim)`.
        reverse: False to embed, True to compute logits.

    Returns:
        `(..., output_dim)` embeddings or `(..., input_dim)` logits.

    Example:

    >>> layer = TiedEmbedding(100, 16)
    >>> vectors = layer(np.array([[1, 2, 3]]))          # (1, 3, 16)
    >>> logits = layer(vectors, reverse=True)           # (1, 3, 100)

    Reference:
        Press & Wolf, "Using the Output Embedding to Improve Language Models",
        EACL 2017; Inan et al., "Tying Word Vectors and Word Classifiers", ICLR 2017.
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        use_output_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_dim = check_units(input_dim, "input_dim")
        self.output_dim = check_units(output_dim, "output_dim")
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.use_output_bias = check_bool(use_output_bias, "use_output_bias")

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
        )
        self.output_bias = None
        if self.use_output_bias:
            self.output_bias = self.add_weight(
                name="output_bias", shape=(self.input_dim,), initializer="zeros"
            )

    def call(self, inputs, reverse=False):
        if not reverse:
            return ops.take(self.embeddings, ops.cast(inputs, "int32"), axis=0)
        if inputs.shape[-1] is not None and inputs.shape[-1] != self.output_dim:
            raise ValueError(
                f"{self.name}: reverse mode needs vectors of size {self.output_dim}. "
                f"Received shape {tuple(inputs.shape)}."
            )
        logits = ops.matmul(inputs, ops.transpose(self.embeddings))  # (..., input_dim)
        if self.use_output_bias:
            logits = logits + self.output_bias
        return logits

    def get_config(self):
        config = {
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            "use_output_bias": self.use_output_bias,
        }
        return {**super().get_config(), **config}
