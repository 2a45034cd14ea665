"""`SequenceTagger`: raw sentences in, one tag per token out (e.g. CoNLL-2003 NER)."""

import inspect

import keras
import numpy as np
from keras import ops

from kzoo.layers.crf import CRF, first_argmax
from kzoo.models.checked_inputs import CheckedTokenInputs, variables_kept_on_error
from kzoo.models.sequence_tagger.backbone import CHAR_ENCODERS, SequenceTaggerBackbone
from kzoo.models.sequence_tagger.preprocessor import (
    CASINGS,
    PAD,
    SequenceTaggerPreprocessor,
)
from kzoo.models.task import Task
from kzoo.utils.bucketing import BucketedBatches
from kzoo.utils.serialization import register_serializable
from kzoo.utils.untracked import untracked_cache
from kzoo.utils.validation import (
    check_choice,
    check_int,
    check_seed,
    check_token_ids,
    concrete_numpy,
)

DECODERS = ("softmax", "crf")
INPUTS = ("words", "chars", "casing")
# `SequenceTaggerBackbone` arguments a tagger takes by name (besides
# `max_word_length`, which the preprocessor shares); their defaults are the
# backbone's.
BACKBONE_ARGUMENTS = (
    "word_dim",
    "char_encoder",
    "char_dim",
    "char_units",
    "use_casing",
    "casing_dim",
    "lstm_units",
    "num_layers",
    "dropout",
    "word_dropout",
)
BACKBONE_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(SequenceTaggerBackbone.__init__).parameters.items()
    if name in BACKBONE_ARGUMENTS
}


def _read_from(part, name):
    """A read-only property giving `self.<part>.<name>`."""
    return property(
        lambda self: getattr(getattr(self, part), name),
        doc=f"`{name}` of the tagger's {part} (read-only).",
    )


@register_serializable
class SequenceTagger(Task, CheckedTokenInputs, keras.Model):
    """BiLSTM(-CRF) tagger: tokens -> features -> BiLSTM stack -> tag scores -> tags.

    The model is three parts, keras-hub style:

    - `tagger.preprocessor` (`SequenceTaggerPreprocessor`): tokenizes raw
      sentences and maps tokens to word, character and casing ids and tags
      to tag ids; its vocabularies are part of the config, so a `.keras`
      file tags raw text after loading, on every backend, without
      TensorFlow;
    - `tagger.backbone` (`SequenceTaggerBackbone`): word embedding, optional
      character encoder and casing embedding, bidirectional LSTM stack, one
      vector `h_t` per token;
    - the head: tag scores (emissions) `s_t = W dropout(h_t) + b`, decoded
      per token (`decoder="softmax"`: argmax) or jointly by a linear-chain
      CRF (`decoder="crf"`: Viterbi over `s`, `tagger.crf`).

    Training: `compile()` needs no loss. With `decoder="crf"` the loss is
    the CRF negative log-likelihood (`CRF.negative_log_likelihood`, mean
    over sentences); with `"softmax"` the token cross-entropy averaged over
    the valid tokens. Padding (word id 0) is masked everywhere, so a
    sentence gets the same scores and tags whatever it is batched with.

    Args:
        word_vocabulary: list of (normalized) words; word id = index + 2
            (0 = padding, 1 = unknown). See `build_vocabularies`.
        tags: list of tag strings; a tag's id is its index.
        char_vocabulary: list of characters (id = index + 2); required when
            `char_encoder` is set.
        max_word_length: characters kept per token (longer tokens are cut).
        decoder: `"crf"` or `"softmax"`.
        lowercase: lower-case words before the vocabulary lookup (the
            characters and casing keep the case).
        normalize_digits: map every digit to "0" before the word lookup.
        buckets: sentence lengths that batches are padded to (longer ones are
            padded to a multiple of the largest).
        seed: int seed for dropout.
        **kwargs: the `SequenceTaggerBackbone` arguments (`word_dim`,
            `char_encoder`, `char_dim`, `char_units`, `use_casing`,
            `casing_dim`, `lstm_units`, `num_layers`, `dropout` (also before
            the output layer), `word_dropout`; see its docstring), and
            `keras.Model` arguments (`name`).

    Call arguments:
        inputs: dict of int arrays `"words"` `(batch, time)`, `"chars"`
            `(batch, time, max_word_length)`, `"casing"` `(batch, time)`,
            all 0 at padding (see `encode`).
        training: whether dropout is active.

    Returns:
        `call`: float tag scores `(batch, time, num_tags)`. `tag` on raw
        sentences: per sentence a list of `(token, tag)`; `predict` on raw
        sentences: per sentence a list of tags; `predict` on encoded inputs:
        int32 tag ids `(batch, time)` with -1 at padding.

    Example:

    ```python
    words, chars = SequenceTagger.build_vocabularies(train_tokens)
    tagger = SequenceTagger(words, conll2003.TAGS, chars, decoder="crf")
    tagger.compile()  # adam; the CRF loss is built in
    tagger.fit(tagger.batches(train_tokens, train_tags, shuffle=True), epochs=5)
    tagger.tag(["EU rejects German call to boycott British lamb."])
    # [[('EU', 'B-ORG'), ('rejects', 'O'), ('German', 'B-MISC'), ...]]
    ```

    Reference:
        Huang, Xu and Yu, "Bidirectional LSTM-CRF Models for Sequence
        Tagging", 2015. Lample et al., "Neural Architectures for Named Entity
        Recognition", NAACL 2016. Chiu and Nichols, "Named Entity Recognition
        with Bidirectional LSTM-CNNs", TACL 2016 (casing features).
    """

    task = "tag"

    def __init__(
        self,
        word_vocabulary,
        tags,
        char_vocabulary=None,
        max_word_length=20,
        decoder="crf",
        lowercase=True,
        normalize_digits=True,
        buckets=(8, 16, 32, 64, 128),
        seed=None,
        **kwargs,
    ):
        # The backbone's arguments (`word_dim`, `lstm_units`, `dropout`, ...)
        # come in through `kwargs`, next to `name`.
        backbone_arguments = {k: kwargs.pop(k) for k in BACKBONE_ARGUMENTS if k in kwargs}
        char_encoder = backbone_arguments.get("char_encoder", BACKBONE_DEFAULTS["char_encoder"])
        check_choice(char_encoder, CHAR_ENCODERS, "char_encoder")
        if char_encoder is not None and not char_vocabulary:
            raise ValueError(
                f"char_encoder={char_encoder!r} needs a `char_vocabulary` (see "
                "`SequenceTagger.build_vocabularies`). Received: char_vocabulary="
                f"{char_vocabulary!r}"
            )
        decoder = check_choice(decoder, DECODERS, "decoder")
        seed = check_seed(seed)
        preprocessor = SequenceTaggerPreprocessor(
            word_vocabulary,
            tags,
            char_vocabulary,
            max_word_length=max_word_length,
            lowercase=lowercase,
            normalize_digits=normalize_digits,
            buckets=buckets,
        )
        backbone = SequenceTaggerBackbone(
            preprocessor.word_vocabulary_size,
            preprocessor.char_vocabulary_size if char_encoder else None,
            max_word_length=max_word_length,
            seed=seed,
            **backbone_arguments,
        )
        dropout = backbone.get_config()["dropout"]

        # === Functional graph: the head extends the backbone's graph ===
        # (the layers keep the names and weight paths they had before the
        # split, so files saved earlier load unchanged)
        hidden = backbone.output  # (batch, time, 2 * lstm_units)
        x = keras.layers.Dropout(dropout, seed=None if seed is None else seed + 1, name="dropout")(
            hidden
        )
        emissions = keras.layers.Dense(preprocessor.num_tags, name="emissions")(x)
        super().__init__(backbone.input, emissions, **kwargs)  # (batch, time, num_tags)

        # === Parts and config ===
        # The backbone shares this model's layers: kept out of Keras's
        # tracking, so summary(), count_params() and saving see each once.
        untracked_cache(self, "parts").put("backbone", backbone)
        self.crf = None
        if decoder == "crf":
            self.crf = CRF(preprocessor.num_tags, name="crf")
            self.crf.build((None, None, preprocessor.num_tags))
        # Plain Python (vocabularies, tokenizer), rebuilt from the config.
        self.preprocessor = preprocessor
        self.decoder_type = decoder
        self.dropout = dropout
        self.seed = seed

    # ----------------------------------------------------- parts, vocabulary
    @property
    def backbone(self):
        """The `SequenceTaggerBackbone`: ids to one vector per token (shares
        this model's layers)."""
        return untracked_cache(self, "parts").get("backbone")

    # Settings kept by the parts, readable on the tagger as before the split.
    tags = _read_from("preprocessor", "tags")
    word_vocabulary = _read_from("preprocessor", "word_vocabulary")
    char_vocabulary = _read_from("preprocessor", "char_vocabulary")
    max_word_length = _read_from("preprocessor", "max_word_length")
    buckets = _read_from("preprocessor", "buckets")
    char_encoder = _read_from("backbone", "char_encoder")
    use_casing = _read_from("backbone", "use_casing")
    word_dropout = _read_from("backbone", "word_dropout")

    build_vocabularies = staticmethod(SequenceTaggerPreprocessor.build_vocabularies)

    def get_config(self):
        backbone = self.backbone.get_config()
        preprocessor = self.preprocessor.get_config()
        return {
            "name": self.name,
            "trainable": self.trainable,
            "word_vocabulary": preprocessor["word_vocabulary"],
            "tags": preprocessor["tags"],
            "char_vocabulary": preprocessor["char_vocabulary"],
            "max_word_length": backbone["max_word_length"],
            **{key: backbone[key] for key in BACKBONE_ARGUMENTS},
            "decoder": self.decoder_type,
            "lowercase": preprocessor["lowercase"],
            "normalize_digits": preprocessor["normalize_digits"],
            "buckets": preprocessor["buckets"],
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # -------------------------------------------------------------- encoding
    def encode(self, sentences, length=None, rows=None):
        """Model inputs for sentences; see `SequenceTaggerPreprocessor.encode`."""
        return self.preprocessor.encode(sentences, length=length, rows=rows)

    def encode_tags(self, tag_lists, length, rows=None):
        """Tag ids `(rows or n, length)`, 0 at padding (masked in the loss)."""
        return self.preprocessor.encode_tags(tag_lists, length, rows=rows)

    def bucket_length(self, length):
        """The padded length of a sentence of `length` tokens."""
        return self.preprocessor.bucket_length(length)

    def batches(self, sentences, tags=None, batch_size=32, shuffle=False, seed=None):
        """Length-bucketed batches for `fit` or `evaluate` (a `BucketedBatches`).

        Sentences are padded to their bucket length (`buckets`) and every
        batch holds sentences of one bucket; the last batch of a bucket is
        filled with empty rows (which add nothing to the loss), so each
        bucket gives one tensor shape and JAX compiles a few step functions.

        Args:
            sentences: list of sentences (token lists, or raw strings).
            tags: optional list of tag lists, one tag per token.
            batch_size: sentences per batch.
            shuffle: reshuffle sentences and batches every epoch.
            seed: seed of the shuffling.

        Returns:
            A `kzoo.utils.bucketing.BucketedBatches` of `(x, y)` (or `(x,)`).
        """
        token_lists = self.preprocessor.token_lists(sentences)
        if not token_lists:
            raise ValueError("`sentences` is empty; `batches` needs at least one sentence.")
        encoded = [self.preprocessor.encode_tokens(tokens) for tokens in token_lists]
        x = {key: [e[key] for e in encoded] for key in INPUTS}
        y = None
        if tags is not None:
            if len(tags) != len(token_lists):
                raise ValueError(f"{len(token_lists)} sentences but {len(tags)} tag lists.")
            for i, (tokens, sentence_tags) in enumerate(zip(token_lists, tags)):
                if len(tokens) != len(sentence_tags):
                    raise ValueError(
                        f"Sentence {i} has {len(tokens)} tokens but {len(sentence_tags)} tags."
                    )
            y = [self.preprocessor.tag_ids(t, i) for i, t in enumerate(tags)]
        return BucketedBatches(
            x,
            y,
            batch_size=batch_size,
            bucket_boundaries=self.buckets,
            shuffle=shuffle,
            pad_batches=True,
            padding_value=PAD,
            seed=seed,
        )

    # ---------------------------------------------------------------- checks
    def check_inputs(self, x):
        """Checks the dict of `encode` given to `predict`/`evaluate`/`fit`: its
        keys, shapes and that every id has an embedding row."""
        if concrete_numpy(x) is None and not isinstance(x, dict):
            return  # a dataset or symbolic inputs: left to Keras
        if not isinstance(x, dict) or not set(INPUTS) <= set(x):
            raise ValueError(
                "SequenceTagger takes the dict of `encode` with keys 'words', 'chars' "
                f"and 'casing'. Received {type(x).__name__}"
                + (f" with keys {sorted(x)}." if isinstance(x, dict) else ".")
            )
        words = concrete_numpy(x["words"])
        if words is None:
            return
        if words.ndim != 2:
            raise ValueError(f"`x['words']` must be (batch, time). Received shape {words.shape}.")
        chars, casing = concrete_numpy(x["chars"]), concrete_numpy(x["casing"])
        for name, values, shape in (
            ("chars", chars, words.shape + (self.max_word_length,)),
            ("casing", casing, words.shape),
        ):
            if values is not None and values.shape != shape:
                raise ValueError(
                    f"`x['{name}']` must have shape {shape} (batch, time"
                    + (", max_word_length)" if name == "chars" else ")")
                    + f" to match x['words']. Received shape {values.shape}."
                )
        check_token_ids(words, self.preprocessor.word_vocabulary_size, "x['words']")
        if self.char_encoder is not None:
            check_token_ids(chars, self.preprocessor.char_vocabulary_size, "x['chars']")
        if self.use_casing:
            check_token_ids(casing, len(CASINGS), "x['casing']")

    def check_targets(self, y):
        check_token_ids(y, len(self.tags), "y (tag ids)")

    # ------------------------------------------------------------------ loss
    def compile_defaults(self):
        # The loss is built in (`compute_loss`); there is nothing to choose.
        return {"optimizer": "adam", "loss": None, "metrics": None}

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Configures training; the loss is built in (see the class docstring).

        Args:
            optimizer: an optimizer or its name; `"auto"` is Adam.
            loss: must be left at `"auto"` (or `None`).
            metrics: optional metrics, computed on the tag scores.
            **kwargs: further `keras.Model.compile` arguments.
        """
        if loss is not None and not (isinstance(loss, str) and loss == "auto"):
            raise ValueError(
                "SequenceTagger computes its own loss (the CRF negative log-likelihood, or the "
                "token cross-entropy with decoder='softmax'); compile it without `loss`. "
                f"Received: loss={loss!r}"
            )
        super().compile(optimizer=optimizer, loss=None, metrics=metrics, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        mask = ops.not_equal(x["words"], PAD)  # (batch, time)
        y = ops.cast(y, "int32")
        if self.decoder_type == "crf":
            loss = self.crf.negative_log_likelihood(y_pred, y, mask, sample_weight)
        else:
            per_token = keras.losses.sparse_categorical_crossentropy(
                y, ops.cast(y_pred, "float32"), from_logits=True
            )  # (batch, time)
            weights = ops.cast(mask, "float32")
            if sample_weight is not None:
                weights = weights * ops.expand_dims(ops.cast(sample_weight, "float32"), -1)
            loss = ops.sum(per_token * weights) / ops.maximum(ops.sum(weights), 1.0)
        for extra in self.losses:
            loss = loss + ops.cast(extra, loss.dtype)
        return loss

    # -------------------------------------------------------------- decoding
    def decoding_model(self, length):
        """A model from inputs padded to `length` tokens to tag ids.

        It shares this tagger's layers and ends in the decoding: argmax per
        token, or the CRF's Viterbi path; padding steps get -1. One model is
        kept per length (out of Keras's tracking and saving), so each
        compiles for a static time axis once.
        """
        length = check_int(length, "length", minimum=1)
        return untracked_cache(self, "decoders").get(length, lambda: self._decoder(length))

    def _decoder(self, length):
        inputs = {
            "words": keras.Input((length,), dtype="int32", name="words"),
            "chars": keras.Input((length, self.max_word_length), dtype="int32", name="chars"),
            "casing": keras.Input((length,), dtype="int32", name="casing"),
        }
        emissions = self(inputs)  # (batch, length, num_tags)
        mask = ops.not_equal(inputs["words"], PAD)
        if self.decoder_type == "crf":
            tags = self.crf(emissions, mask=mask)
        else:
            tags = first_argmax(emissions, axis=-1)
        tags = ops.where(mask, tags, -1)
        return keras.Model(inputs, tags, name=f"decoder_{length}")

    def predict(self, x, batch_size=None, verbose=0, steps=None, callbacks=None):
        """Tags: a list of tag lists for raw sentences, else tag ids.

        Args:
            x: a string or a list of sentences (raw strings or token lists),
                or encoded inputs (`encode` output, a dict; ids outside a
                vocabulary raise a `ValueError`).
            batch_size: sentences per batch (default 32).
            verbose, steps, callbacks: as in `keras.Model.predict` (encoded
                inputs only).

        Returns:
            For sentences, one list of tag strings per sentence. For encoded
            inputs, int32 tag ids `(batch, time)`, -1 at padding.
        """
        if isinstance(x, (str, list, tuple)):
            tagged = self.tag(x, batch_size=batch_size or 32)
            return [[tag for _, tag in pairs] for pairs in tagged]
        if not isinstance(x, dict) or "words" not in x:
            raise ValueError(
                "`predict` takes sentences (a string or a list of strings/token lists) or "
                f"the dict of `encode`. Received {type(x).__name__}."
            )
        self.check_inputs(x)
        decoder = self.decoding_model(int(np.shape(x["words"])[1]))
        with variables_kept_on_error(decoder):
            return decoder.predict(
                x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks
            )

    def tag(self, sentences, batch_size=32):
        """Tags raw sentences: per sentence a list of `(token, tag)` pairs.

        Raw strings are tokenized by `tagger.preprocessor` (whitespace, with
        punctuation split off: see `SequenceTaggerPreprocessor`); a sentence
        given as a list of tokens is tagged as it is. A single string is one
        sentence.

        Args:
            sentences: a str, or a list of strs and/or token lists.
            batch_size: sentences per batch.

        Returns:
            A list with, per sentence, a list of `(token, tag)` tuples.

        Example:

        >>> tagger.tag(["EU rejects German call.", ["Peter", "Blackburn"]])
        [[('EU', 'B-ORG'), ('rejects', 'O'), ('German', 'B-MISC'), ('call', 'O'),
          ('.', 'O')], [('Peter', 'B-PER'), ('Blackburn', 'I-PER')]]
        """
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        token_lists = self.preprocessor.token_lists(sentences)
        if not token_lists:
            return []
        encoded = [self.preprocessor.encode_tokens(tokens) for tokens in token_lists]
        batches = BucketedBatches(
            {key: [e[key] for e in encoded] for key in INPUTS},
            batch_size=batch_size,
            bucket_boundaries=self.buckets,
            pad_batches=True,  # one shape per bucket: one compiled decoder each
            padding_value=PAD,
        )
        tag_ids = batches.map_batches(self._decode_batch, trim=True)
        return [
            list(zip(tokens, self.preprocessor.decode_tags([ids], [len(tokens)])[0]))
            for tokens, ids in zip(token_lists, tag_ids)
        ]

    def _decode_batch(self, inputs):
        decoder = self.decoding_model(inputs["words"].shape[1])
        with variables_kept_on_error(decoder):
            return decoder.predict_on_batch(inputs)
