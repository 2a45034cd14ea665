"""`LanguageModel`: the recurrent language model task (text in, text out)."""

import math

import keras
import numpy as np

from kzoo.metrics.perplexity import Perplexity
from kzoo.models.language_model.backbone import AWD_DEFAULTS, LanguageModelBackbone
from kzoo.models.language_model.preprocessor import (
    TOKEN_LEVELS,
    LanguageModelPreprocessor,
)
from kzoo.models.task import Task
from kzoo.utils.serialization import register_serializable
from kzoo.utils.untracked import untracked_cache
from kzoo.utils.validation import check_choice, check_int, check_token_id, check_token_ids

# Stateful copies kept for `evaluate_stream`, one per batch size.
MAX_STREAM_TWINS = 4


@register_serializable
class LanguageModel(Task, LanguageModelBackbone):
    """Recurrent language model task: trains on ids, generates text.

    The network is `LanguageModelBackbone` (embedding, stacked LSTM/GRU/RNN
    layers with Zaremba et al.'s dropout, logits over the vocabulary); this
    class adds the vocabulary (`preprocessor`, a `LanguageModelPreprocessor`
    stored in the model's config and so in its `.keras` file), compile
    defaults, `generate` (text or ids in, text or ids out, any sampler) and
    `evaluate_stream` (perplexity of a long stream with the state carried).

    `compile()` with no arguments uses Adam,
    `SparseCategoricalCrossentropy(from_logits=True)` (the model outputs
    logits) and the `Perplexity` metric. Train it on `(tokens[:-1],
    tokens[1:])` windows (see `bptt_batches`).

    Args:
        vocabulary_size: positive int; taken from `vocabulary` if omitted.
        embedding_dim: positive int, size of the token embeddings.
        units: positive int, units of every recurrent layer.
        num_layers: positive int, number of stacked recurrent layers.
        cell_type: `"lstm"` (default), `"gru"` or `"rnn"`.
        dropout: rate in [0, 1) on the embeddings, between layers and before
            the output projection (training only).
        tie_weights: share the embedding matrix with the output projection;
            needs `units == embedding_dim`.
        stateful: carry the recurrent states from batch to batch.
        batch_size: fixed batch size; required when `stateful`.
        vocabulary: optional list of str, the token of each id; lets
            `generate()` take and return text.
        token_level: `"character"` (default: text is split into characters)
            or `"word"` (split on whitespace); used only with `vocabulary`.
        seed: optional int seed of the dropout layers.
        **kwargs: the other arguments of `LanguageModelBackbone`: the
            AWD-LSTM options (`input_dropout`, `hidden_dropout`,
            `output_dropout`, `variational_dropout`, `embedding_dropout`,
            `recurrent_weight_dropout`, `activation_regularization`,
            `temporal_activation_regularization`) and training with a sampled
            softmax (`softmax="sampled"`, `num_sampled`), all off by default;
            and `keras.Model` arguments (`name`, `dtype`).

    Called like `LanguageModelBackbone`: `(batch, time)` token ids in,
    `(batch, time, vocabulary_size)` logits out.

    Example:

    >>> model = kzoo.models.LanguageModel(vocabulary=list("abc "), embedding_dim=16,
    ...                                   units=32, num_layers=2, dropout=0.2)
    >>> model.compile()  # Adam, cross-entropy from logits, perplexity
    >>> model.generate("ab", max_length=20, sampler="top_k", k=2, seed=0)
    >>> model.generate("ab", max_length=20, sampler="beam", num_beams=4)

    Reference:
        Zaremba, Sutskever & Vinyals, "Recurrent Neural Network
        Regularization", arXiv:1409.2329, 2014.
    """

    task = "generate"

    def __init__(self, vocabulary_size=None, vocabulary=None, token_level="character", **kwargs):
        token_level = check_choice(token_level, TOKEN_LEVELS, "token_level")
        preprocessor = None
        if vocabulary is not None:
            preprocessor = LanguageModelPreprocessor(vocabulary, token_level)
            if vocabulary_size is None:
                vocabulary_size = preprocessor.vocabulary_size
            elif vocabulary_size != preprocessor.vocabulary_size:
                raise ValueError(
                    f"`vocabulary` has {preprocessor.vocabulary_size} tokens but "
                    f"vocabulary_size={vocabulary_size}."
                )
        elif vocabulary_size is None:
            raise ValueError("Give `vocabulary_size`, `vocabulary`, or both.")
        # The network's arguments (embedding_dim, units, ...) are the backbone's.
        super().__init__(vocabulary_size, **kwargs)
        # A plain object: neither Keras's tracker nor `.keras` saving walks it;
        # the vocabulary is saved through `get_config`.
        self.preprocessor = preprocessor
        self.token_level = token_level

    @property
    def vocabulary(self):
        return None if self.preprocessor is None else self.preprocessor.vocabulary

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary,
            "token_level": self.token_level,
        }

    def compile_defaults(self):
        return {
            "optimizer": "adam",
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": [Perplexity(from_logits=True)],
        }

    # === Text <-> ids ===

    def _require_preprocessor(self, what):
        if self.preprocessor is None:
            raise ValueError(
                f"{what} needs the model's `vocabulary`; this model has none, so pass "
                "token ids (ints) instead of text."
            )
        return self.preprocessor

    def encode(self, text):
        """Maps a string to a list of token ids (see `LanguageModelPreprocessor.encode`)."""
        return self._require_preprocessor("Encoding text").encode(text)

    def decode(self, token_ids):
        """Maps a sequence of token ids back to a string."""
        return self._require_preprocessor("Decoding to text").decode(token_ids)

    # === Generation ===

    def generate(self, prompt, max_length, sampler="greedy", seed=None, **sampler_options):
        """Continues prompts one token at a time, carrying the RNN state.

        The prompt is fed through the same single-step function as the
        generated tokens, so each position costs one cell step per layer and
        nothing is ever recomputed. The loop is `kzoo.generation`'s, compiled
        (`jax.jit`, `tf.function`; eager under `torch.no_grad` on PyTorch).

        Args:
            prompt: a string, a list of strings (needs `vocabulary`), a list
                of token ids, or a list of such lists / a 2-D int array (a
                batch; rows may differ in length). Must not be empty.
            max_length: total length of each output, prompt included; must
                exceed the longest prompt.
            sampler: `"greedy"`, `"random"`, `"top_k"`, `"top_p"`, `"beam"`
                or a sampler object (see `kzoo.generation.get_sampler`).
            seed: optional int; equal seeds give equal samples. With `None` a
                named sampler's random state carries on between calls.
            **sampler_options: options of a sampler given by name:
                `temperature` (> 0), `k` (>= 1), `p` (in (0, 1]),
                `num_beams`, `length_penalty` (GNMT alpha), `num_results`
                (n-best).

        Returns:
            The kind of `prompt`: a string, a list of strings, a 1-D int
            array `(max_length,)` or a 2-D int array `(batch, max_length)`.
            With beam search and `num_results > 1`, each prompt gives the
            `num_results` best continuations, best first: a list of strings
            (a list of such lists for a batch), or an extra axis of that size
            before the length axis for ids.

        Raises:
            ValueError: empty prompt, unknown characters, ids outside the
                vocabulary, `max_length` too small, bad sampler options.

        Example:

        >>> model.generate("ROMEO:", max_length=100, sampler="top_p", p=0.9, seed=0)
        >>> model.generate(["a", "bc"], 30, sampler="beam", num_beams=4, num_results=2)
        """
        from kzoo.generation import generate_ids

        rows, as_text, single = self._prompt_rows(prompt)
        longest = max(len(row) for row in rows)
        max_length = check_int(max_length, "max_length")
        if max_length <= longest:
            raise ValueError(
                f"`max_length` ({max_length}) is the total output length and must exceed "
                f"the longest prompt ({longest} tokens)."
            )
        token_ids = np.zeros((len(rows), max_length), dtype="int32")
        prompt_mask = np.zeros((len(rows), max_length), dtype="bool")
        for r, row in enumerate(rows):
            token_ids[r, : len(row)] = row
            prompt_mask[r, : len(row)] = True
        output, _ = generate_ids(
            self, token_ids, prompt_mask, sampler=sampler, seed=seed, **sampler_options
        )
        n_best = output.shape[1] > 1  # (batch, num_results, max_length)
        if not n_best:
            output = output[:, 0]
        if as_text:
            texts = [
                [self.decode(ids) for ids in generated] if n_best else self.decode(generated)
                for generated in output
            ]
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
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        sequence_length = check_int(sequence_length, "sequence_length", minimum=1)
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
            target.assign(keras.ops.copy(source))
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
        def make_twin():
            config = {
                **LanguageModelBackbone.get_config(self),
                "name": f"{self.name}_stream",
                "stateful": True,
                "batch_size": batch_size,
                "dropout": 0.0,
            }
            for name in AWD_DEFAULTS:  # training-only options: off for scoring
                config.pop(name, None)
            return LanguageModelBackbone.from_config(config)

        twins = untracked_cache(self, "stream_twins", max_size=MAX_STREAM_TWINS)
        return twins.get(batch_size, make_twin)


def _cross_entropy_sum(logits, targets):
    """Sum of -log softmax(logits)[target], in float64."""
    logits = np.asarray(logits, dtype="float64")  # (batch, time, vocabulary)
    peak = logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(logits - peak).sum(axis=-1)) + peak[..., 0]
    picked = np.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return float(np.sum(log_norm - picked))
