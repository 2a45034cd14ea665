"""Recurrent language model: embedding, stacked LSTM/GRU, softmax over the vocabulary."""

import math

import keras
import numpy as np
from keras import ops

from kzoo.layers import GRU, LSTM
from kzoo.layers.stacked_cells import state_sizes
from kzoo.models.checked_inputs import CheckedTokenInputs
from kzoo.models.saving import save_compact
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import (
    check_bool,
    check_choice,
    check_id_matrix,
    check_rate,
    check_seed,
    check_token_id,
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


RECURRENT_LAYERS = {"lstm": _LSTM, "gru": _GRU}
TOKEN_LEVELS = ("character", "word")
UNKNOWN_WORD = "<unk>"


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


def _check_vocabulary(vocabulary, token_level):
    if vocabulary is None:
        return None
    if isinstance(vocabulary, str) or not all(isinstance(t, str) for t in vocabulary):
        raise ValueError(
            "`vocabulary` must be a list of str (the token of each id). "
            f"Received: vocabulary={vocabulary!r:.80}"
        )
    vocabulary = list(vocabulary)
    if not vocabulary:
        raise ValueError("`vocabulary` must not be empty.")
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError("`vocabulary` has repeated tokens; each id needs its own token.")
    if token_level == "character":
        long_tokens = [t for t in vocabulary if len(t) != 1]
        if long_tokens:
            raise ValueError(
                "With token_level='character' every vocabulary entry must be one "
                f"character. Received entries {long_tokens[:5]!r}."
            )
    return vocabulary


@register_serializable
class LanguageModel(CheckedTokenInputs, keras.Model):
    """Recurrent language model: next-token logits from a stack of LSTM/GRU layers.

    With dropout p applied only to non-recurrent connections (Zaremba et al.,
    2014), for layers l = 1..L:

        x_t^0 = drop(E[w_t])
        x_t^l = drop(RNN_l(x_t^{l-1}, state_{t-1}^l))
        logits_t = x_t^L W + b          (W = E^T with `tie_weights`)
        p(w_{t+1} | w_1..w_t) = softmax(logits_t)

    The model outputs logits; train it with
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True)` on
    `(tokens[:-1], tokens[1:])` windows (see `bptt_batches`). A functional
    Keras model; its config is its constructor arguments.

    With `stateful=True` the final states of each batch are the initial
    states of the next one (truncated backpropagation through time over a
    long stream); the batch size is then fixed and `reset_states()` starts
    over. `generate()` decodes one token at a time with the RNN state as the
    cache; `evaluate_stream()` scores a long token stream with the state
    carried across it.

    Args:
        vocabulary_size: positive int; taken from `vocabulary` if omitted.
        embedding_dim: positive int, size of the token embeddings.
        hidden_units: positive int, units of every recurrent layer.
        num_layers: positive int, number of stacked recurrent layers.
        cell: `"lstm"` (default) or `"gru"`.
        dropout: rate in [0, 1) of the dropout on the embeddings, between
            layers and before the output projection (active in training only).
        tie_weights: share the embedding matrix with the output projection;
            needs `hidden_units == embedding_dim`.
        stateful: carry the recurrent states from batch to batch.
        batch_size: fixed batch size; required when `stateful`.
        vocabulary: optional list of str, the token of each id; lets
            `generate()` take and return text.
        token_level: `"character"` (default: text is split into characters)
            or `"word"` (split on whitespace); used only with `vocabulary`.
        seed: optional int seed of the dropout layers.
        **kwargs: `keras.Model` arguments (`name`, `dtype`, ...).

    Call arguments:
        token_ids: `(batch, time)` int tensor.
        training: whether dropout is active.

    Returns:
        `(batch, time, vocabulary_size)` logits.

    Example:

    >>> model = kzoo.models.LanguageModel(vocabulary=list("abc "), embedding_dim=16,
    ...                                   hidden_units=32, num_layers=2, dropout=0.2)
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> model.generate("ab", max_length=20, sampler="top_k", k=2, seed=0)

    Reference:
        Zaremba, Sutskever & Vinyals, "Recurrent Neural Network
        Regularization", arXiv:1409.2329, 2014.
    """

    def __init__(
        self,
        vocabulary_size=None,
        embedding_dim=200,
        hidden_units=200,
        num_layers=2,
        cell="lstm",
        dropout=0.0,
        tie_weights=False,
        stateful=False,
        batch_size=None,
        vocabulary=None,
        token_level="character",
        seed=None,
        dtype=None,
        **kwargs,
    ):
        token_level = check_choice(token_level, TOKEN_LEVELS, "token_level")
        vocabulary = _check_vocabulary(vocabulary, token_level)
        if vocabulary_size is None:
            if vocabulary is None:
                raise ValueError("Give `vocabulary_size`, `vocabulary`, or both.")
            vocabulary_size = len(vocabulary)
        check_units(vocabulary_size, "vocabulary_size")
        if vocabulary is not None and len(vocabulary) != vocabulary_size:
            raise ValueError(
                f"`vocabulary` has {len(vocabulary)} tokens but vocabulary_size={vocabulary_size}."
            )
        check_units(embedding_dim, "embedding_dim")
        check_units(hidden_units, "hidden_units")
        check_units(num_layers, "num_layers")
        check_choice(cell, tuple(RECURRENT_LAYERS), "cell")
        dropout = check_rate(dropout, "dropout")
        if tie_weights and hidden_units != embedding_dim:
            raise ValueError(
                "`tie_weights=True` reuses the embedding matrix as the output "
                "projection, so `hidden_units` must equal `embedding_dim`. Received: "
                f"hidden_units={hidden_units}, embedding_dim={embedding_dim}"
            )
        if batch_size is not None:
            check_units(batch_size, "batch_size")
        tie_weights = check_bool(tie_weights, "tie_weights")
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
        layer_class = RECURRENT_LAYERS[cell]
        recurrent_layers = [
            layer_class(
                hidden_units,
                return_sequences=True,
                stateful=stateful,
                dtype=dtype,
                name=f"{cell}_{i}",
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
            x = layer(x)  # (batch, time, hidden_units)
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
        self.hidden_units = hidden_units
        self.num_layers = num_layers
        self.cell = cell
        self.dropout = dropout
        self.tie_weights = tie_weights
        self.stateful = stateful
        self.batch_size = batch_size
        self.vocabulary = vocabulary
        self.token_level = token_level
        self.seed = seed

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "hidden_units": self.hidden_units,
            "num_layers": self.num_layers,
            "cell": self.cell,
            "dropout": self.dropout,
            "tie_weights": self.tie_weights,
            "stateful": self.stateful,
            "batch_size": self.batch_size,
            "vocabulary": self.vocabulary,
            "token_level": self.token_level,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.get(config["dtype"])
        return cls(**config)

    def save_stateless(self, path, weights_dtype="auto", max_megabytes=10.0):
        """Saves a stateless copy (any batch size) without the optimizer state.

        The way to ship a model trained statefully (truncated BPTT): the
        file loads as a plain model for scoring and `generate`. Arguments as
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

    # === Token-by-token decoding (the keras-hub `next` contract) ===

    def generation_cache(self, batch_size):
        """Zero recurrent states for `batch_size` rows: a flat tuple, layer by layer."""
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
            `(logits (batch, vocabulary_size), hidden (batch, hidden_units),
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

    # === Text <-> ids ===

    def _require_vocabulary(self, what):
        if self.vocabulary is None:
            raise ValueError(
                f"{what} needs the model's `vocabulary`; this model has none, so pass "
                "token ids (ints) instead of text."
            )

    def tokenize(self, text):
        """Splits `text` into tokens (characters or whitespace-separated words)."""
        return list(text) if self.token_level == "character" else text.split()

    def encode(self, text):
        """Maps a string to a list of token ids.

        Unknown characters raise a `ValueError` that lists them. Unknown words
        become `<unk>` when the vocabulary has it (as in Mikolov's PTB), and
        raise otherwise.
        """
        self._require_vocabulary("Encoding text")
        if not isinstance(text, str):
            raise ValueError(f"`text` must be a str. Received: {type(text).__name__}")
        index = self.__dict__.get("_kzoo_token_index")
        if index is None:
            index = {token: i for i, token in enumerate(self.vocabulary)}
            self.__dict__["_kzoo_token_index"] = index
        tokens = self.tokenize(text)
        unknown = sorted({t for t in tokens if t not in index})
        if unknown and self.token_level == "word" and UNKNOWN_WORD in index:
            return [index.get(t, index[UNKNOWN_WORD]) for t in tokens]
        if unknown:
            raise ValueError(
                f"The text has {len(unknown)} {self.token_level}(s) outside the model's "
                f"vocabulary: {unknown[:10]!r}"
            )
        return [index[t] for t in tokens]

    def decode(self, token_ids):
        """Maps a sequence of token ids back to a string."""
        self._require_vocabulary("Decoding to text")
        ids = np.asarray(token_ids).reshape(-1)
        check_token_ids(ids, self.vocabulary_size, "token_ids")
        tokens = [self.vocabulary[int(i)] for i in ids]
        return "".join(tokens) if self.token_level == "character" else " ".join(tokens)

    # === Generation ===

    def generate(
        self,
        prompt,
        max_length,
        sampler="greedy",
        seed=None,
        temperature=None,
        k=None,
        p=None,
    ):
        """Continues prompts one token at a time, carrying the RNN state.

        The prompt is fed through the same single-step function as the
        generated tokens, so each position costs one cell step per layer and
        nothing is ever recomputed. The loop runs compiled (`jax.jit`,
        `tf.function`, or PyTorch's predict function) through
        `kzoo.generation.decode` with a keras-hub sampler.

        Args:
            prompt: a string, a list of strings (needs `vocabulary`), a list
                of token ids, or a list of such lists / a 2-D int array (a
                batch; rows may differ in length). Must not be empty.
            max_length: total length of each output, prompt included; must
                exceed the longest prompt.
            sampler: `"greedy"`, `"temperature"`, `"top_k"`, `"top_p"` or a
                `keras_hub.samplers.Sampler` (see
                `kzoo.generation.get_sampler`).
            seed: optional int; equal seeds give equal samples. With `None` a
                named sampler's random state carries on between calls.
            temperature, k, p: options of a sampler given by name
                (temperature > 0, default 1; k >= 1; p in (0, 1]).

        Returns:
            The same kind as `prompt`: a string, a list of strings, a 1-D
            int array `(max_length,)` or a 2-D int array
            `(batch, max_length)`.

        Raises:
            ValueError: empty prompt, unknown characters, ids outside the
                vocabulary, `max_length` too small, bad sampler options.
        """
        from kzoo.generation.decoding import decode, resolve_sampler

        rows, as_text, single = self._prompt_rows(prompt)
        longest = max(len(row) for row in rows)
        if isinstance(max_length, bool) or not isinstance(max_length, int):
            raise ValueError(f"`max_length` must be an int. Received: max_length={max_length!r}")
        if max_length <= longest:
            raise ValueError(
                f"`max_length` ({max_length}) is the total output length and must exceed "
                f"the longest prompt ({longest} tokens)."
            )
        options = {
            name: value
            for name, value in (("temperature", temperature), ("k", k), ("p", p))
            if value is not None
        }
        if isinstance(sampler, str) and sampler != "greedy":
            options.setdefault("seed", seed)
        sampler = resolve_sampler(self, sampler, self.vocabulary_size, **options)

        token_ids = np.zeros((len(rows), max_length), dtype="int32")
        prompt_mask = np.zeros((len(rows), max_length), dtype="bool")
        for r, row in enumerate(rows):
            token_ids[r, : len(row)] = row
            prompt_mask[r, : len(row)] = True
        output = decode(self, token_ids, prompt_mask, sampler, seed=seed)
        if as_text:
            texts = [self.decode(row) for row in output]
            return texts[0] if single else texts
        return output[0] if single else output

    def _prompt_rows(self, prompt):
        """(list of id lists, prompt was text, prompt was a single sequence)."""
        if isinstance(prompt, str):
            rows, as_text, single = [self.encode(prompt)], True, True
        elif (
            isinstance(prompt, (list, tuple)) and prompt and all(isinstance(p, str) for p in prompt)
        ):
            rows, as_text, single = [self.encode(p) for p in prompt], True, False
        else:
            if isinstance(prompt, np.ndarray):
                prompt = prompt.tolist()
            if not isinstance(prompt, (list, tuple)):
                raise ValueError(
                    "`prompt` must be a string, a list of strings, or token ids. "
                    f"Received: {type(prompt).__name__}"
                )
            single = not prompt or not isinstance(prompt[0], (list, tuple))
            rows = [list(prompt)] if single else [list(row) for row in prompt]
            as_text = False
            for row in rows:
                bad = [
                    t for t in row if isinstance(t, bool) or not isinstance(t, (int, np.integer))
                ]
                if bad:
                    raise ValueError(f"Token ids must be ints. Received {bad[:5]!r}.")
            for r, row in enumerate(rows):
                name = "prompt" if single else f"prompt[{r}]"
                check_token_ids(np.asarray(row, dtype="int64"), self.vocabulary_size, name)
        if not rows or any(len(row) == 0 for row in rows):
            raise ValueError(
                "Empty prompt: generation needs at least one token to condition on "
                "(for a character model, e.g. a newline)."
            )
        return rows, as_text, single

    # === Scoring a long stream ===

    def evaluate_stream(self, token_ids, batch_size=1, sequence_length=256, start_token_id=None):
        """Mean next-token cross-entropy over a token stream, state carried.

        The stream is cut into `batch_size` contiguous parts scored in
        parallel, each from a zero state that is then carried across the
        whole part (a stateful copy of this model without dropout does the
        work, `sequence_length` tokens per call). With `batch_size=1` every
        token is scored.

        Args:
            token_ids: 1-D int array, the stream.
            batch_size: number of parallel parts; tokens past the last whole
                multiple of `batch_size` are not scored.
            sequence_length: tokens per compiled call (memory vs. speed only).
            start_token_id: if given, it is the context of the first token,
                so all `len(token_ids)` tokens are predicted (for PTB,
                `<eos>`: every sentence follows one). Otherwise the first
                token is only context.

        Returns:
            dict with `loss` (mean nats per token), `perplexity` (exp of the
            loss), `bits_per_token` (loss / ln 2) and `tokens` (count scored).
        """
        if token_ids is None or isinstance(token_ids, str):
            raise ValueError(
                "`token_ids` must be a 1-D array of int token ids. Received: "
                f"token_ids={token_ids!r:.80}"
            )
        ids = np.asarray(token_ids)
        if ids.ndim > 1:
            raise ValueError(
                "`token_ids` must be one 1-D stream; rows of a 2-D array would be "
                f"joined into one stream. Received shape {ids.shape}."
            )
        ids = ids.reshape(-1)
        check_token_ids(ids, self.vocabulary_size, "token_ids")
        ids = ids.astype("int64")
        check_units(batch_size, "batch_size")
        check_units(sequence_length, "sequence_length")
        start_token_id = check_token_id(
            start_token_id, self.vocabulary_size, "start_token_id", allow_none=True
        )
        if start_token_id is not None:
            inputs, targets = np.concatenate([[start_token_id], ids[:-1]]), ids
        else:
            inputs, targets = ids[:-1], ids[1:]
        per_row = len(targets) // batch_size
        if per_row == 0:
            raise ValueError(
                f"The stream has {len(targets)} tokens to score, fewer than "
                f"batch_size={batch_size}."
            )
        n = per_row * batch_size
        inputs = inputs[:n].reshape(batch_size, per_row).astype("int32")
        targets = targets[:n].reshape(batch_size, per_row)

        twin = self._stream_twin(batch_size)
        for source, target in zip(self.trainable_weights, twin.trainable_weights):
            # A copy: on JAX the two models must not share (donatable) buffers.
            target.assign(ops.copy(source))
        twin.reset_states()
        total = 0.0
        for start in range(0, per_row, sequence_length):
            logits = twin.predict_on_batch(inputs[:, start : start + sequence_length])
            total += _cross_entropy_sum(logits, targets[:, start : start + sequence_length])
        loss = total / n
        return {
            "loss": loss,
            "perplexity": math.exp(loss),
            "bits_per_token": loss / math.log(2),
            "tokens": n,
        }

    def _stream_twin(self, batch_size):
        twins = self.__dict__.setdefault("_kzoo_stream_twins", {})
        if batch_size not in twins:
            config = {
                **self.get_config(),
                "name": f"{self.name}_stream",
                "stateful": True,
                "batch_size": batch_size,
                "dropout": 0.0,
            }
            twins[batch_size] = type(self).from_config(config)
        return twins[batch_size]


def _project(embedding, output_projection, hidden):
    if output_projection is None:
        return embedding(hidden, reverse=True)
    return output_projection(hidden)


def _cross_entropy_sum(logits, targets):
    """Sum of -log softmax(logits)[target], in float64."""
    logits = np.asarray(logits, dtype="float64")  # (batch, time, vocabulary)
    peak = logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(logits - peak).sum(axis=-1)) + peak[..., 0]
    picked = np.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return float(np.sum(log_norm - picked))


def bptt_batches(token_ids, batch_size, sequence_length):
    """Cuts a token stream into inputs/targets for truncated BPTT.

    The stream is split into `batch_size` contiguous rows; batch b holds
    window b of every row, so with `fit(x, y, batch_size=batch_size,
    shuffle=False)` on a stateful model row j of each batch continues row j
    of the previous batch (Zaremba et al.'s PTB reader).

    Args:
        token_ids: 1-D int array.
        batch_size: positive int, the number of parallel rows.
        sequence_length: positive int, the BPTT window.

    Returns:
        `(x, y)` int32 arrays of shape `(num_batches * batch_size,
        sequence_length)`, `y` being `x` shifted by one token.
    """
    ids = np.asarray(token_ids).reshape(-1)
    check_units(batch_size, "batch_size")
    check_units(sequence_length, "sequence_length")
    row_length = len(ids) // batch_size
    num_batches = (row_length - 1) // sequence_length
    if num_batches < 1:
        raise ValueError(
            f"A stream of {len(ids)} tokens is too short for batch_size={batch_size} "
            f"and sequence_length={sequence_length}."
        )
    rows = ids[: batch_size * row_length].reshape(batch_size, row_length)
    span = num_batches * sequence_length

    def windows(block):  # (batch, span) -> (num_batches * batch, sequence_length)
        block = block.reshape(batch_size, num_batches, sequence_length)
        return block.transpose(1, 0, 2).reshape(-1, sequence_length).astype("int32")

    return windows(rows[:, :span]), windows(rows[:, 1 : span + 1])
