"""`Seq2Seq`: the translation task (raw sentences in, translated sentences out)."""

import keras
import numpy as np
from keras import ops

from kzoo.generation import generate_ids
from kzoo.losses import MaskedSequenceLoss
from kzoo.metrics.sequence import MaskedTokenAccuracy
from kzoo.models.seq2seq.backbone import Seq2SeqBackbone
from kzoo.models.seq2seq.preprocessor import Seq2SeqPreprocessor
from kzoo.models.task import Task
from kzoo.preprocessing import check_texts
from kzoo.utils.bucketing import bucket_length
from kzoo.utils.serialization import deserialize_component, register_serializable
from kzoo.utils.validation import check_int

# Padded source and output lengths are rounded up to a multiple of this, so
# that a compiled search is traced for few shapes.
_LENGTH_STEP = 8


@register_serializable
class Seq2Seq(Task, Seq2SeqBackbone):
    """Sequence-to-sequence translation: `Seq2SeqBackbone` + preprocessor + search.

    The network is `Seq2SeqBackbone` (its weights, config and call are
    unchanged here); this task adds

    - `preprocessor`: a `Seq2SeqPreprocessor` (tokenization, both
      vocabularies, detokenization), saved inside the `.keras` file, so
      `kzoo.models.load(path).translate([...])` needs nothing else;
    - `translate(texts)`: raw sentences in, detokenized sentences out (greedy
      or beam search), on every backend without TensorFlow;
    - `generate(source_ids)`: the same searches on ids;
    - `generation_cache` / `generation_step`: the keras-hub `next(prompt,
      cache, index)` contract, the cache holding the encoder memory and the
      decoder state;
    - `compile()` defaults: Adam, `MaskedSequenceLoss` on the logits and
      `MaskedTokenAccuracy`, both skipping padding.

    Args:
        source_vocab_size, target_vocab_size: ints; default the sizes of the
            preprocessor's vocabularies (and they must match them).
        *args, **kwargs: the other `Seq2SeqBackbone` arguments (`embedding_dim`,
            `units`, ...). `pad_token_id`, `start_token_id` and `end_token_id`
            default to the preprocessor's.
        preprocessor: optional `Seq2SeqPreprocessor` (or its config); needed by
            `translate` only.

    Call arguments:
        inputs: `(source_ids, decoder_input_ids)` as for `Seq2SeqBackbone`.
        training: bool.

    Returns:
        Logits `(batch, target_time, target_vocab_size)`.

    Example:

    >>> preprocessor = Seq2SeqPreprocessor.from_pairs(pairs, 6000, 5000)
    >>> model = Seq2Seq(preprocessor=preprocessor, embedding_dim=128, units=256)
    >>> model.compile()
    >>> model.fit(*preprocessor(spanish, english))
    >>> model.translate(["¿Dónde está la estación?"], sampler="beam", num_beams=4)
    ['Where is the station?']
    """

    task = "translate"
    # The decoder constants in the generation cache (`AttentionDecoderCell.
    # prepare_constants`): never changed by a step, so beam search shares them
    # between the beams of a sentence instead of reordering them.
    generation_static_keys = ("memory", "memory_mask", "projected_keys")

    def __init__(self, source_vocab_size=None, target_vocab_size=None, *args, **kwargs):
        preprocessor = deserialize_component(
            kwargs.pop("preprocessor", None), Seq2SeqPreprocessor, "preprocessor"
        )
        if preprocessor is not None:
            for name, value in (
                ("source_vocab_size", preprocessor.source_vocabulary_size),
                ("target_vocab_size", preprocessor.target_vocabulary_size),
            ):
                given = source_vocab_size if name == "source_vocab_size" else target_vocab_size
                if given is not None and given != value:
                    raise ValueError(
                        f"`{name}` must equal the preprocessor's vocabulary size {value}. "
                        f"Received: {name}={given!r}"
                    )
            source_vocab_size = preprocessor.source_vocabulary_size
            target_vocab_size = preprocessor.target_vocabulary_size
            for name in ("pad_token_id", "start_token_id", "end_token_id"):
                value = getattr(preprocessor, name)
                if kwargs.setdefault(name, value) != value:
                    raise ValueError(
                        f"`{name}` must be the preprocessor's ({value}). "
                        f"Received: {name}={kwargs[name]!r}"
                    )
        if source_vocab_size is None or target_vocab_size is None:
            raise ValueError(
                "`source_vocab_size` and `target_vocab_size` are needed when no "
                "`preprocessor` gives them. Received: source_vocab_size="
                f"{source_vocab_size!r}, target_vocab_size={target_vocab_size!r}"
            )
        super().__init__(source_vocab_size, target_vocab_size, *args, **kwargs)
        # A plain object (no layer, no weights): Keras neither tracks nor
        # saves it as a weight group; `get_config` carries it.
        self.preprocessor = preprocessor

    @property
    def vocabulary_size(self):
        """The target vocabulary size: what `generation_step` returns logits over."""
        return self.target_vocab_size

    def compile_defaults(self):
        """Adam (clipnorm 1), the masked cross-entropy of the logits, and the
        token accuracy, both over the non-padding targets only."""
        return {
            "optimizer": keras.optimizers.Adam(1e-3, clipnorm=1.0),
            "loss": MaskedSequenceLoss(self.pad_token_id),
            "metrics": [MaskedTokenAccuracy(self.pad_token_id)],
        }

    # --- generation contract ---------------------------------------------------

    def generation_cache(self, batch_size, context=None):
        """Encodes the source: the cache the decoding loop starts from.

        Args:
            batch_size: int, the number of rows (that of `context`).
            context: `(batch, source_time)` int source ids, padded with
                `pad_token_id`.

        Returns:
            A flat dict of tensors with a leading batch axis: the decoder
            states `"state_0"`, `"state_1"`, ... (updated by every step; the
            last is the attentional vector), and the decoder constants
            (encoder memory, its mask and projected keys, named by
            `generation_static_keys`), the same at every step.
        """
        if context is None:
            raise ValueError(
                "Seq2Seq.generation_cache needs `context`: the (batch, source_time) source ids."
            )
        memory, memory_mask, states = self.encode(context)
        cache = {f"state_{i}": state for i, state in enumerate(states)}
        cache.update(self.decoder_constants(memory, memory_mask))
        return cache

    def generation_step(self, prompt, cache, index):
        """One decoder step: the token at `index - 1` -> logits of the next one.

        Args:
            prompt: `(batch, max_length)` int ids, filled up to `index - 1`.
            cache: the dict of `generation_cache`.
            index: int (scalar tensor), the position to predict.

        Returns:
            `(logits, hidden, cache)`: `(batch, target_vocab_size)` logits,
            the attentional vector `(batch, units)`, and the cache with the
            new decoder states.
        """
        previous = ops.take(prompt, index - 1, axis=1)  # (batch,)
        names = [f"state_{i}" for i in range(len(cache) - len(self.generation_static_keys))]
        constants = {name: cache[name] for name in self.generation_static_keys}
        logits, states = self.decode_step(previous, [cache[name] for name in names], constants)
        # The last state is the attentional vector, the input of the projection.
        return logits, states[-1], {**cache, **dict(zip(names, states))}

    # --- generation on ids -------------------------------------------------------

    def generate(
        self,
        source_ids,
        max_length=32,
        sampler="greedy",
        seed=None,
        batch_size=64,
        **sampler_options,
    ):
        """Generates target ids for source ids through `kzoo.generation.generate_ids`.

        The encoder and the search run in one compiled call per batch
        (`jax.jit`, `tf.function`; eager under `torch.no_grad` on PyTorch).

        Args:
            source_ids: `(batch, source_time)` int array padded with
                `pad_token_id`, ids in `[0, source_vocab_size)`.
            max_length: int >= 2, the output length including the start token.
            sampler: `"greedy"`, `"beam"`, `"random"`, `"top_k"`, `"top_p"` or
                a sampler object (see `kzoo.generation.get_sampler`).
            seed: optional int: resets a random sampler's state first, so equal
                seeds give equal outputs.
            batch_size: rows per compiled call.
            **sampler_options: options of a named sampler: `num_beams`,
                `length_penalty` (GNMT alpha), `num_results` (n-best) for
                `"beam"`; `temperature`, `k`, `p` for the random samplers.

        Returns:
            `(token_ids, scores)`: `(batch, num_results, max_length)` int32
            ids starting with the start token, padded after the end token
            (`num_results` is 1 except for an n-best beam search), and for
            beam search the `(batch, num_results)` length-penalized
            log-probabilities, best first (`None` for the other samplers).
        """
        max_length = check_int(max_length, "max_length", minimum=2)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        source_ids = self.check_source_ids(source_ids)
        if not self.built:
            self.build()
        tokens, scores = [], []
        for start in range(0, len(source_ids), batch_size):
            chunk = source_ids[start : start + batch_size]
            prompt = np.full((len(chunk), max_length), self.pad_token_id, "int32")
            prompt[:, 0] = self.start_token_id
            chunk_tokens, chunk_scores = generate_ids(
                self,
                prompt,
                sampler=sampler,
                context=chunk,
                stop_token_ids=self.end_token_id,
                pad_token_id=self.pad_token_id,
                # Reset once: the later batches continue the random stream.
                seed=seed if start == 0 else None,
                **sampler_options,
            )
            tokens.append(chunk_tokens)
            scores.append(chunk_scores)
        if not tokens:
            return np.zeros((0, 1, max_length), "int32"), None
        if scores[0] is None:
            return np.concatenate(tokens), None
        return np.concatenate(tokens), np.concatenate(scores)

    # --- raw text -------------------------------------------------------------------

    def translate(
        self,
        texts,
        sampler="greedy",
        num_beams=None,
        length_penalty=None,
        max_length=None,
        seed=None,
        batch_size=64,
        **sampler_options,
    ):
        """Translates raw sentences: tokenize, search, detokenize.

        Args:
            texts: a str or a list of str.
            sampler: `"greedy"` (default), `"beam"`, or a random sampler
                (`"random"`, `"top_k"`, `"top_p"`; see
                `kzoo.generation.get_sampler`).
            num_beams: beam width for `sampler="beam"` (default 4).
            length_penalty: GNMT alpha >= 0 for `sampler="beam"` (default
                0.6, as in GNMT: it offsets beam search's preference for short
                outputs).
            max_length: optional int >= 1, the most tokens generated per
                sentence (the end token included); default twice the longest
                source plus 8, rounded up to a multiple of 8 (few compiled
                shapes).
            seed: optional int for the random samplers (equal seeds give
                equal outputs); greedy and beam search are deterministic.
            batch_size: sentences per compiled call.
            **sampler_options: `temperature`, `k`, `p` of a random sampler.

        Returns:
            A list of str (a str for a str input): each translation written
            with punctuation spacing and casing restored
            (`Seq2SeqPreprocessor.decode`). An empty (or all-whitespace)
            sentence translates to "".

        Raises:
            ValueError: the model has no preprocessor, or a bad argument.

        Example:

        >>> model = kzoo.models.load("saved_models/translate_spa_eng.keras")
        >>> model.translate(["¿Dónde está Tom?", "Tengo hambre."])
        ['Where is Tom?', "I'm hungry."]
        """
        preprocessor = self.preprocessor
        if preprocessor is None:
            raise ValueError(
                "`translate` needs the model's preprocessor (vocabularies and "
                "tokenization); this Seq2Seq has none. Build it with "
                "`Seq2Seq(preprocessor=Seq2SeqPreprocessor(...), ...)`, or generate on ids "
                "with `generate(source_ids)`."
            )
        single = isinstance(texts, (str, bytes))
        texts = check_texts(texts)
        if sampler == "beam":
            sampler_options["num_beams"] = 4 if num_beams is None else num_beams
            sampler_options["length_penalty"] = 0.6 if length_penalty is None else length_penalty
        else:
            for name, value in (("num_beams", num_beams), ("length_penalty", length_penalty)):
                if value is not None:
                    raise ValueError(
                        f"`{name}` applies to sampler='beam' only. Received: {name}={value!r} "
                        f"with sampler={sampler!r}"
                    )
        if sampler_options.get("num_results", 1) != 1:
            raise ValueError(
                "`translate` returns one translation per sentence; for n-best lists call "
                "`generate(..., sampler='beam', num_results=n)`. Received: "
                f"num_results={sampler_options['num_results']!r}"
            )
        max_length = check_int(max_length, "max_length", minimum=1, allow_none=True)
        sequences = preprocessor.encode_source(texts)
        rows = [i for i, ids in enumerate(sequences) if len(ids)]
        outputs = [""] * len(texts)
        if rows:
            longest = max(len(sequences[i]) for i in rows)
            source = preprocessor.pad(
                [sequences[i] for i in rows], bucket_length(longest, _LENGTH_STEP)
            )
            if max_length is None:
                max_length = bucket_length(2 * longest + 8, _LENGTH_STEP)
            tokens, _ = self.generate(
                source,
                max_length=max_length + 1,  # and the start token
                sampler=sampler,
                seed=seed,
                batch_size=batch_size,
                **sampler_options,
            )
            for i, row in zip(rows, tokens[:, 0]):
                outputs[i] = preprocessor.decode(row)
        return outputs[0] if single else outputs

    def get_config(self):
        config = super().get_config()
        config["preprocessor"] = (
            None
            if self.preprocessor is None
            else keras.saving.serialize_keras_object(self.preprocessor)
        )
        return config
