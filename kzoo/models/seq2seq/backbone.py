"""The Seq2Seq network: a (bi)directional recurrent encoder and an attention decoder."""

import keras
from keras import ops

from kzoo import backend
from kzoo.layers import (
    GRU,
    LSTM,
    RNN,
    AttentionDecoderCell,
    BahdanauAttention,
    Bidirectional,
    GRUCell,
    LSTMCell,
    LuongAttention,
)
from kzoo.models.checked_inputs import CheckedTokenInputs
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import (
    check_bool,
    check_choice,
    check_id_matrix,
    check_number,
    check_seed,
    check_token_id,
    check_token_ids,
    check_units,
    concrete_numpy,
)

_CELLS = {"lstm": (LSTM, LSTMCell), "gru": (GRU, GRUCell)}
_ATTENTIONS = ("luong", "bahdanau")


@register_serializable
class Seq2SeqBackbone(CheckedTokenInputs, keras.Model):
    """A (bi)directional recurrent encoder and an attention decoder, on ids.

    Encoder: an embedding of the source ids, then `encoder_layers` recurrent
    layers (`Bidirectional` ones with `units // 2` per direction when
    `bidirectional=True`), masked where the source equals `pad_token_id`.
    Its outputs are the attention memory `(batch, source_time, units)`; the
    last layer's final states (forward and backward concatenated) start the
    decoder.

    Decoder: one `AttentionDecoderCell` (Luong input feeding, attentional
    layer of width `units`) around an LSTM/GRU cell of `units`, attention
    "luong" (general score) or "bahdanau" (additive, `units` wide), then a
    dense projection to `target_vocab_size` logits:

    $$h_t, s_t = f([E y_{t-1}; \\tilde h_{t-1}], s_{t-1}), \\quad
      c_t = \\mathrm{att}(h_t, M), \\quad
      \\tilde h_t = \\tanh([h_t; c_t] W_c), \\quad z_t = \\tilde h_t W_o + b_o$$

    Training uses teacher forcing. With `teacher_forcing_ratio < 1`
    (scheduled sampling, Bengio et al. 2015) each decoder input after the
    first is, with probability `1 - teacher_forcing_ratio`, the embedding of
    the model's own previous argmax prediction instead of the true token;
    the coins are drawn before the time loop. Inference and evaluation
    always use the true previous tokens.

    This class is the network only (ids in, logits out). `kzoo.models.Seq2Seq`
    adds the preprocessor (raw text <-> ids), compile defaults, generation and
    `translate`.

    Args:
        source_vocab_size: int, including padding and reserved ids.
        target_vocab_size: int, including padding, start and end ids.
        embedding_dim: int, width of both embeddings.
        units: int, width of the memory, the decoder cell and the attentional
            layer (even if `bidirectional`).
        encoder_layers: int, number of stacked encoder layers.
        bidirectional: bool.
        cell_type: "lstm" or "gru", for encoder and decoder.
        attention: "luong" or "bahdanau".
        dropout: float in [0, 1), on embeddings and attentional outputs.
        teacher_forcing_ratio: float in [0, 1], the probability of feeding the
            true previous token during training.
        pad_token_id, start_token_id, end_token_id: ints in
            `[0, target_vocab_size)` (`end_token_id` may be None: no end).
        seed: optional int for the scheduled-sampling coins.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: `(source_ids, decoder_input_ids)`, int tensors `(batch,
            source_time)` and `(batch, target_time)`; `decoder_input_ids`
            starts with `start_token_id` (the targets shifted right).
        training: bool.

    Returns:
        Logits `(batch, target_time, target_vocab_size)`.

    Example:

    >>> backbone = Seq2SeqBackbone(1000, 800, embedding_dim=64, units=128)
    >>> logits = backbone((source_ids, decoder_input_ids))

    Reference:
        Sutskever, Vinyals, Le, "Sequence to Sequence Learning with Neural
        Networks", NeurIPS 2014. Luong, Pham, Manning, EMNLP 2015. Bahdanau,
        Cho, Bengio, ICLR 2015. Bengio et al., "Scheduled Sampling for
        Sequence Prediction with Recurrent Neural Networks", NeurIPS 2015.
    """

    def __init__(
        self,
        source_vocab_size,
        target_vocab_size,
        embedding_dim=128,
        units=256,
        encoder_layers=1,
        bidirectional=True,
        cell_type="lstm",
        attention="luong",
        dropout=0.0,
        teacher_forcing_ratio=1.0,
        pad_token_id=0,
        start_token_id=1,
        end_token_id=2,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("source_vocab_size", source_vocab_size),
            ("target_vocab_size", target_vocab_size),
            ("embedding_dim", embedding_dim),
            ("units", units),
            ("encoder_layers", encoder_layers),
        ):
            check_units(value, name)
        bidirectional = check_bool(bidirectional, "bidirectional")
        if bidirectional and units % 2:
            raise ValueError(
                "`units` must be even with bidirectional=True (units // 2 per "
                f"direction). Received: units={units}"
            )
        check_choice(cell_type, tuple(_CELLS), "cell_type")
        check_choice(attention, _ATTENTIONS, "attention")
        dropout = check_number(dropout, "dropout", 0, 1)
        teacher_forcing_ratio = check_number(
            teacher_forcing_ratio, "teacher_forcing_ratio", 0, 1, high_inclusive=True
        )
        # Each of them is embedded by the decoder (the end and pad tokens by
        # beam search's finished hypotheses), so each must be a target id.
        pad_token_id = check_token_id(pad_token_id, target_vocab_size, "pad_token_id")
        start_token_id = check_token_id(start_token_id, target_vocab_size, "start_token_id")
        end_token_id = check_token_id(
            end_token_id, target_vocab_size, "end_token_id", allow_none=True
        )
        seed = check_seed(seed)
        self.source_vocab_size = source_vocab_size
        self.target_vocab_size = target_vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.encoder_layers = encoder_layers
        self.bidirectional = bidirectional
        self.cell_type = cell_type
        self.attention = attention
        self.dropout = dropout
        self.teacher_forcing_ratio = teacher_forcing_ratio
        self.pad_token_id = pad_token_id
        self.start_token_id = start_token_id
        self.end_token_id = end_token_id
        self.seed = seed

        layer_class, cell_class = _CELLS[cell_type]
        self.source_embedding = keras.layers.Embedding(
            source_vocab_size, embedding_dim, name="source_embedding"
        )
        self.target_embedding = keras.layers.Embedding(
            target_vocab_size, embedding_dim, name="target_embedding"
        )
        self.encoder = []
        for i in range(encoder_layers):
            last = i == encoder_layers - 1
            if bidirectional:
                layer = Bidirectional(
                    layer_class(
                        units // 2,
                        return_sequences=True,
                        return_state=last,
                        name=f"encoder_{i}_forward",
                    ),
                    name=f"encoder_{i}",
                )
            else:
                layer = layer_class(
                    units, return_sequences=True, return_state=last, name=f"encoder_{i}"
                )
            self.encoder.append(layer)
        if attention == "luong":
            attention_layer = LuongAttention(score="general", name="attention")
        else:
            attention_layer = BahdanauAttention(units, name="attention")
        # The cell is reached through `self.decoder.cell` only: tracked once,
        # `summary()` lists its weights once (under "decoder").
        self.decoder = RNN(
            AttentionDecoderCell(
                cell_class(units, name="decoder_cell"),
                attention_layer,
                attention_layer_size=units,
                memory_dim=units,
                name="attention_decoder_cell",
            ),
            return_sequences=True,
            name="decoder",
        )
        self.embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout")
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.projection = keras.layers.Dense(target_vocab_size, name="projection")
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def decoder_cell(self):
        """The `AttentionDecoderCell` that `decoder` runs over time."""
        return self.decoder.cell

    # --- input checks -------------------------------------------------------

    def check_source_ids(self, source_ids, name="source_ids"):
        """Refuses concrete source ids that are not `(batch, source_time)` ids in
        `[0, source_vocab_size)`; returns them as a NumPy array (or unchanged
        when symbolic)."""
        values = concrete_numpy(source_ids)
        if values is None:
            if source_ids is None:
                raise ValueError(
                    f"`{name}` must be a (batch, source_time) int array. Received None."
                )
            return source_ids
        if values.ndim != 2:
            raise ValueError(
                f"`{name}` must have shape (batch, source_time). Received shape {values.shape}."
            )
        return check_id_matrix(values, self.source_vocab_size, name)

    def check_inputs(self, x):
        """Checks `(source_ids, decoder_input_ids)` of `predict`/`evaluate`."""
        if isinstance(x, (list, tuple)) and len(x) == 2:
            self.check_source_ids(x[0], "x[0] (source_ids)")
            check_token_ids(x[1], self.target_vocab_size, "x[1] (decoder_input_ids)")
        elif concrete_numpy(x) is not None:
            raise ValueError(
                f"{type(self).__name__} expects inputs `(source_ids, decoder_input_ids)`. "
                f"Received {type(x).__name__}."
            )

    def check_targets(self, y):
        check_token_ids(y, self.target_vocab_size, "y")

    # --- building -----------------------------------------------------------

    def build(self, inputs_shape=None):
        self.source_embedding.build((None, None))
        self.target_embedding.build((None, None))
        width = self.embedding_dim
        for layer in self.encoder:
            layer.build((None, None, width))
            width = self.units
        self.decoder_cell.build((None, self.embedding_dim), (None, None, self.units))
        self.decoder.build((None, None, self.embedding_dim))
        self.projection.build((None, self.units))
        self.built = True

    # --- encoder ------------------------------------------------------------

    def encode(self, source_ids, training=False):
        """Runs the encoder.

        Args:
            source_ids: `(batch, source_time)` int ids, padded with
                `pad_token_id`.
            training: bool.

        Returns:
            `(memory, memory_mask, initial_states)`: `(batch, source_time,
            units)`, `(batch, source_time)` bool, and the decoder's initial
            states (inner cell states, then a zero attentional state).
        """
        source_ids = ops.convert_to_tensor(source_ids)
        if len(source_ids.shape) != 2:
            raise ValueError(
                "`source_ids` must have shape (batch, source_time). Received "
                f"shape {tuple(source_ids.shape)}."
            )
        mask = ops.not_equal(source_ids, self.pad_token_id)
        x = self.embedding_dropout(self.source_embedding(source_ids), training=training)
        states = []
        for layer in self.encoder:
            result = layer(x, mask=mask, training=training)
            if isinstance(result, (list, tuple)):
                x, *states = result
            else:
                x = result
        if self.bidirectional:
            half = len(states) // 2
            states = [
                ops.concatenate([f, b], axis=-1) for f, b in zip(states[:half], states[half:])
            ]
        attentional = ops.zeros((ops.shape(x)[0], self.units), dtype=x.dtype)
        return x, mask, list(states) + [attentional]

    def decoder_constants(self, memory, memory_mask=None):
        """The keyword constants of every decoder step (keys projected once).

        Checks that `memory_mask` matches `memory`.
        """
        if memory_mask is not None:
            m, k = tuple(memory.shape[:2]), tuple(memory_mask.shape)
            if len(k) != 2 or any(a is not None and b is not None and a != b for a, b in zip(m, k)):
                raise ValueError(
                    f"`memory_mask` must have shape (batch, source_time) = {m}, "
                    f"matching memory shape {tuple(memory.shape)}. Received "
                    f"memory_mask shape {k}."
                )
        return self.decoder_cell.prepare_constants(memory, memory_mask)

    # --- decoder ------------------------------------------------------------

    def decode_step(self, token_ids, states, constants, training=False):
        """One decoder step: previous tokens `(batch,)` -> logits, new states."""
        x = self.target_embedding(token_ids)
        x = self.embedding_dropout(x, training=training)
        output, states = self.decoder_cell(x, states, training=training, **constants)
        output = self.output_dropout(output, training=training)
        return self.projection(output), states

    def call(self, inputs, training=False):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                f"{type(self).__name__} expects inputs `(source_ids, decoder_input_ids)`. "
                f"Received {type(inputs).__name__}."
            )
        source_ids, decoder_input_ids = inputs
        memory, memory_mask, states = self.encode(source_ids, training=training)
        constants = self.decoder_constants(memory, memory_mask)
        embedded = self.embedding_dropout(
            self.target_embedding(decoder_input_ids), training=training
        )
        if training and self.teacher_forcing_ratio < 1.0:
            return self._scheduled_sampling(embedded, states, constants)
        outputs = self.decoder(
            embedded, initial_state=states, training=training, constants=constants
        )
        outputs = self.output_dropout(outputs, training=training)
        return self.projection(outputs)

    def _scheduled_sampling(self, embedded, states, constants):
        batch, steps = ops.shape(embedded)[0], ops.shape(embedded)[1]
        coins = keras.random.uniform((batch, steps), seed=self.seed_generator)
        teacher = ops.cast(coins < self.teacher_forcing_ratio, embedded.dtype)
        # The first input is always the start token.
        teacher = ops.concatenate([ops.ones_like(teacher[:, :1]), teacher[:, 1:]], axis=1)
        inputs = ops.concatenate([embedded, teacher[..., None]], axis=-1)
        width = self.embedding_dim

        def step(x_t, step_states):
            *cell_states, previous_prediction = step_states
            use_true = x_t[:, width:]
            x = use_true * x_t[:, :width] + (1.0 - use_true) * previous_prediction
            output, cell_states = self.decoder_cell(x, cell_states, training=True, **constants)
            logits = self.projection(self.output_dropout(output, training=True))
            predicted = ops.stop_gradient(self.target_embedding(ops.argmax(logits, axis=-1)))
            return logits, list(cell_states) + [predicted]

        initial = list(states) + [ops.zeros_like(embedded[:, 0])]
        initial_output = ops.zeros((batch, self.target_vocab_size), embedded.dtype)
        _, logits, _ = backend.rnn(step, inputs, initial, initial_output)
        return logits

    def attention_weights(self, source_ids, decoder_input_ids):
        """Attention weights of teacher-forced decoding, `(batch, target_time,
        source_time)` (numpy), for visualization."""
        source_ids = self.check_source_ids(source_ids)
        check_token_ids(decoder_input_ids, self.target_vocab_size, "decoder_input_ids")
        source_ids = ops.convert_to_tensor(source_ids, "int32")
        memory, memory_mask, states = self.encode(source_ids)
        cell = self.decoder_cell
        # A second cell sharing the inner cell and attention, which also
        # emits the alignments.
        tracing = AttentionDecoderCell(
            cell.cell,
            cell.attention,
            attention_layer_size=cell.attention_layer_size,
            alignment_history=True,
            memory_dim=self.units,
            memory_length=int(memory.shape[1]),
        )
        tracing.build((None, self.embedding_dim), tuple(memory.shape))
        tracing.attention_kernel.assign(cell.attention_kernel)
        outputs = RNN(tracing, return_sequences=True)(
            self.target_embedding(ops.convert_to_tensor(decoder_input_ids, "int32")),
            initial_state=states,
            constants=tracing.prepare_constants(memory, memory_mask),
        )
        _, alignments = tracing.split_outputs(outputs)
        return ops.convert_to_numpy(alignments)

    def get_config(self):
        return {
            **super().get_config(),
            "source_vocab_size": self.source_vocab_size,
            "target_vocab_size": self.target_vocab_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "encoder_layers": self.encoder_layers,
            "bidirectional": self.bidirectional,
            "cell_type": self.cell_type,
            "attention": self.attention,
            "dropout": self.dropout,
            "teacher_forcing_ratio": self.teacher_forcing_ratio,
            "pad_token_id": self.pad_token_id,
            "start_token_id": self.start_token_id,
            "end_token_id": self.end_token_id,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("trainable", None)
        return cls(**config)
