"""BiLSTM(-CRF) sequence tagger that reads raw tokens (e.g. CoNLL-2003 NER).

`SequenceTagger` is a functional Keras model whose config holds its word and
character vocabularies and its tag set, so a saved `.keras` file tags raw
sentences after loading, on any backend:

    tagger = keras.saving.load_model("saved_models/ner_crf.keras")
    tagger.predict(["EU rejects German call to boycott British lamb ."])
    # [['B-ORG', 'O', 'B-MISC', 'O', 'O', 'O', 'B-MISC', 'O', 'O']]

Per token the network concatenates a word embedding, optional character
features (a CNN with max pooling or a BiLSTM over the token's characters) and
an optional casing embedding, runs a bidirectional LSTM stack over the
sentence and scores every tag. The scores are decoded per token (softmax) or
jointly with a linear-chain CRF (Viterbi). Padding is masked everywhere, so a
sentence gets the same tags whatever it is batched with.
"""

import math
import re
from collections import Counter

import keras
import numpy as np
from keras import ops

from kzoo.layers import LSTM, Bidirectional, StackedRNN
from kzoo.layers.crf import CRF, first_argmax
from kzoo.models.checked_inputs import CheckedTokenInputs, variables_kept_on_error
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_bool, check_seed, check_token_ids, concrete_numpy

PAD, UNK = 0, 1  # reserved ids of the word and character vocabularies
DECODERS = ("softmax", "crf")
CHAR_ENCODERS = (None, "cnn", "lstm")

# Casing classes of a token; id 0 is padding.
CASINGS = ("pad", "lower", "title", "upper", "mixed", "numeric", "mostly_numeric",
           "has_digit", "other")  # fmt: skip
_DIGIT = re.compile(r"\d")


def casing_of(token):
    """The casing class id of a token (index into `CASINGS`).

    Example:
    >>> [CASINGS[casing_of(t)] for t in ["EU", "rejects", "German", "1996-08-22", "."]]
    ['upper', 'lower', 'title', 'mostly_numeric', 'other']
    """
    digits = sum(c.isdigit() for c in token)
    if token.isdigit():
        return CASINGS.index("numeric")
    if digits / len(token) > 0.5:
        return CASINGS.index("mostly_numeric")
    if digits:
        return CASINGS.index("has_digit")
    if token.islower():
        return CASINGS.index("lower")
    if token.isupper():
        return CASINGS.index("upper")
    if token[0].isupper() and (len(token) == 1 or token[1:].islower()):
        return CASINGS.index("title")
    if any(c.isalpha() for c in token):
        return CASINGS.index("mixed")
    return CASINGS.index("other")


def _check_positive(value, name, allow_zero=False):
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"`{name}` must be an int >= {low}. Received: {name}={value!r}")
    return int(value)


def _check_rate(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={value!r}")
    return float(value)


def _check_vocabulary(vocabulary, name):
    if isinstance(vocabulary, str) or not all(isinstance(v, str) for v in vocabulary):
        raise ValueError(f"`{name}` must be a list of strings.")
    vocabulary = list(vocabulary)
    if len(set(vocabulary)) != len(vocabulary):
        duplicates = sorted(k for k, n in Counter(vocabulary).items() if n > 1)
        raise ValueError(f"`{name}` has duplicate entries: {duplicates[:5]}")
    return vocabulary


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
        vocabulary_size: number of character ids (including 0 and 1).
        encoder: `"cnn"` or `"lstm"`.
        embedding_dim: int >= 1, character embedding size.
        units: int >= 1, CNN filters or LSTM units per direction.
        kernel_size: CNN window in characters.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        char_ids: int tensor `(batch, time, chars)`.

    Returns:
        `(batch, time, units)` for the CNN, `(batch, time, 2 * units)` for
        the LSTM; zeros for tokens without characters (padding).

    Example:
    >>> enc = CharacterEncoder(60, "cnn", embedding_dim=16, units=32)
    >>> enc(np.ones((2, 7, 12), "int32")).shape
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
        self.vocabulary_size = _check_positive(vocabulary_size, "vocabulary_size")
        if encoder not in CHAR_ENCODERS[1:]:
            raise ValueError(
                f"`encoder` must be one of {list(CHAR_ENCODERS[1:])}. Received: encoder={encoder!r}"
            )
        self.encoder = encoder
        self.embedding_dim = _check_positive(embedding_dim, "embedding_dim")
        self.units = _check_positive(units, "units")
        self.kernel_size = _check_positive(kernel_size, "kernel_size")
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
        valid = ops.not_equal(ids, PAD)
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


@register_serializable
class UnknownWordDropout(keras.layers.Layer):
    """Replaces word ids by the unknown id with probability `rate` in training.

    The model sees the unknown id on words it knows, so it learns to tag
    unknown words (frequent in test text) from their characters and casing.
    Padding ids stay padding; at inference the ids pass unchanged.

    Args:
        rate: float in [0, 1), the replacement probability per token.
        unknown_id: int, the id that replaces a word.
        seed: optional int seed.

    Call arguments:
        word_ids: int tensor of any shape.
        training: bool.

    Example:

    >>> drop = UnknownWordDropout(0.1)
    >>> drop(np.array([[5, 7, 0]]), training=True).shape
    (1, 3)

    Reference:
        Lample et al., "Neural Architectures for Named Entity Recognition",
        NAACL 2016 (replacing training words by the unknown token).
    """

    def __init__(self, rate, unknown_id=UNK, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _check_rate(rate, "rate")
        self.unknown_id = _check_positive(unknown_id, "unknown_id", allow_zero=True)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, word_ids, training=False):
        if not training or self.rate == 0.0:
            return word_ids
        coins = keras.random.uniform(ops.shape(word_ids), seed=self.seed_generator)
        replace = ops.logical_and(coins < self.rate, ops.greater(word_ids, self.unknown_id))
        return ops.where(replace, ops.cast(self.unknown_id, word_ids.dtype), word_ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self.rate,
            "unknown_id": self.unknown_id,
            "seed": self.seed,
        }


class TaggingBatches(keras.utils.PyDataset):
    """Length-bucketed batches of encoded sentences for `fit`/`predict`.

    Sentences are grouped by length into buckets (padded to the bucket
    length, so only a few tensor shapes occur and JAX compiles a few step
    functions); each batch holds sentences of one bucket.

    Args:
        tagger: the `SequenceTagger` that encodes the tokens.
        sentences: list of token lists.
        tags: optional list of tag lists (targets); None for prediction.
        batch_size: sentences per batch.
        shuffle: reshuffle the batches (and the sentences within buckets)
            after every epoch.
        seed: seed of the shuffling.
        pad_batches: fill the last batch of each bucket with empty rows
            (all padding) up to `batch_size`, so every batch of a bucket has
            the same shape. Empty rows add nothing to the loss.
    """

    def __init__(
        self,
        tagger,
        sentences,
        tags=None,
        batch_size=32,
        shuffle=False,
        seed=None,
        pad_batches=True,
    ):
        super().__init__()
        self.tagger = tagger
        self.sentences = [list(s) for s in sentences]
        self.tags = None if tags is None else [list(t) for t in tags]
        self.batch_size = _check_positive(batch_size, "batch_size")
        self.shuffle = shuffle
        self.pad_batches = pad_batches
        self.rng = np.random.default_rng(seed)
        lengths = np.array([len(s) for s in self.sentences])
        if len(lengths) and lengths.min() == 0:
            raise ValueError(
                f"Sentence {int(np.argmin(lengths))} is empty; every sentence needs a token."
            )
        self.padded = np.array([tagger.bucket_length(n) for n in lengths], dtype=int)
        self._make_batches()

    def _make_batches(self):
        batches = []
        for length in np.unique(self.padded):
            members = np.flatnonzero(self.padded == length)
            if self.shuffle:
                members = self.rng.permutation(members)
            batches += [
                members[i : i + self.batch_size] for i in range(0, len(members), self.batch_size)
            ]
        if self.shuffle:
            batches = [batches[i] for i in self.rng.permutation(len(batches))]
        # Keras's TensorFlow data adapter fixes the tensor spec from the first
        # two batches; with equal lengths there, a later bucket would not fit.
        first = [self.padded[b[0]] for b in batches]
        other = next((i for i, n in enumerate(first) if n != first[0]), None)
        if other is not None and other != 1:
            batches[1], batches[other] = batches[other], batches[1]
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        members = self.batches[index]
        length = int(self.padded[members[0]])
        rows = self.batch_size if self.pad_batches else len(members)
        x = self.tagger.encode([self.sentences[i] for i in members], length=length, rows=rows)
        if self.tags is None:
            return (x,)
        y = self.tagger.encode_tags([self.tags[i] for i in members], length=length, rows=rows)
        return x, y

    def on_epoch_end(self):
        if self.shuffle:
            self._make_batches()


class _InferenceCache:
    """Decoding models of a tagger, kept out of Keras tracking and saving.

    They share the tagger's layers, so tracking them would save every weight
    a second time.
    """

    def __init__(self):
        self.decoders = {}


@register_serializable
class SequenceTagger(CheckedTokenInputs, keras.Model):
    """Token features -> bidirectional LSTM stack -> softmax or CRF tags.

    For token t of a sentence:

        x_t = [E_word[w_t]; char_features(c_t); E_case[k_t]]
        h_t = BiLSTM^L(dropout(x))_t
        s_t = W dropout(h_t) + b                    (tag scores, emissions)

    `decoder="softmax"` predicts argmax_k s_{t,k} per token and trains with
    the token cross-entropy averaged over valid tokens; `decoder="crf"`
    predicts the Viterbi path of a linear-chain CRF over s and trains with the
    CRF negative log-likelihood averaged over sentences (`kzoo.layers.crf`).

    Inputs are a dict of int arrays: `"words"` `(batch, time)` word ids,
    `"chars"` `(batch, time, max_word_length)` character ids and `"casing"`
    `(batch, time)` casing ids, all 0 at padding. `encode` makes them from
    tokens; `predict` accepts raw sentences directly.

    Args:
        word_vocabulary: list of (normalized) words; word id = index + 2
            (0 = padding, 1 = unknown). See `build_vocabularies`.
        tags: list of tag strings; a tag's id is its index.
        char_vocabulary: list of characters (id = index + 2); required when
            `char_encoder` is set.
        word_dim: word embedding size.
        char_encoder: `"cnn"`, `"lstm"` or `None` (no character features).
        char_dim: character embedding size.
        char_units: CNN filters or char-LSTM units per direction.
        max_word_length: characters kept per token (longer tokens are cut).
        use_casing: add a casing embedding (`CASINGS`).
        casing_dim: casing embedding size.
        lstm_units: units per direction of each BiLSTM layer.
        num_layers: number of BiLSTM layers.
        dropout: dropout on the token features, between BiLSTM layers and
            before the output layer, in [0, 1).
        word_dropout: probability in [0, 1) of replacing a training word by
            the unknown id (see `UnknownWordDropout`); 0 = off.
        decoder: `"crf"` or `"softmax"`.
        lowercase: lower-case words before the vocabulary lookup (the
            characters and casing keep the case).
        normalize_digits: map every digit to "0" before the word lookup.
        buckets: sentence lengths that batches are padded to (longer ones are
            padded to a multiple of the largest).
        seed: int seed for dropout.
        **kwargs: `keras.Model` arguments (`name`).

    Call arguments:
        inputs: the dict described above.
        training: whether dropout is active.

    Returns:
        `call`: float tag scores `(batch, time, num_tags)`. `predict` on raw
        sentences: a list of tag lists; on encoded inputs: int tag ids
        `(batch, time)` with -1 at padding.

    Example:
    >>> words, chars = SequenceTagger.build_vocabularies(train_tokens)
    >>> tagger = SequenceTagger(words, conll2003.TAGS, chars, decoder="crf")
    >>> tagger.compile(optimizer="adam")
    >>> tagger.fit(tagger.batches(train_tokens, train_tags, shuffle=True), epochs=5)
    >>> tagger.predict(["EU rejects German call to boycott British lamb ."])

    Reference:
        Huang, Xu and Yu, "Bidirectional LSTM-CRF Models for Sequence
        Tagging", 2015. Lample et al., "Neural Architectures for Named Entity
        Recognition", NAACL 2016. Chiu and Nichols, "Named Entity Recognition
        with Bidirectional LSTM-CNNs", TACL 2016 (casing features).
    """

    def __init__(
        self,
        word_vocabulary,
        tags,
        char_vocabulary=None,
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
        decoder="crf",
        lowercase=True,
        normalize_digits=True,
        buckets=(8, 16, 32, 64, 128),
        seed=None,
        **kwargs,
    ):
        word_vocabulary = _check_vocabulary(word_vocabulary, "word_vocabulary")
        tags = _check_vocabulary(tags, "tags")
        if not tags:
            raise ValueError("`tags` must hold at least one tag.")
        if char_encoder not in CHAR_ENCODERS:
            raise ValueError(
                f"`char_encoder` must be one of {list(CHAR_ENCODERS)}. "
                f"Received: char_encoder={char_encoder!r}"
            )
        if char_encoder is not None and not char_vocabulary:
            raise ValueError(
                f"char_encoder={char_encoder!r} needs a `char_vocabulary` (see "
                "`SequenceTagger.build_vocabularies`)."
            )
        char_vocabulary = _check_vocabulary(char_vocabulary or [], "char_vocabulary")
        if decoder not in DECODERS:
            raise ValueError(
                f"`decoder` must be one of {list(DECODERS)}. Received: decoder={decoder!r}"
            )
        buckets = sorted(_check_positive(b, "buckets") for b in buckets)
        if not buckets:
            raise ValueError("`buckets` must hold at least one length.")
        for name, value in (
            ("word_dim", word_dim),
            ("char_dim", char_dim),
            ("char_units", char_units),
            ("max_word_length", max_word_length),
            ("casing_dim", casing_dim),
            ("lstm_units", lstm_units),
            ("num_layers", num_layers),
        ):
            _check_positive(value, name)
        dropout = _check_rate(dropout, "dropout")
        word_dropout = _check_rate(word_dropout, "word_dropout")
        for name, value in (
            ("use_casing", use_casing),
            ("lowercase", lowercase),
            ("normalize_digits", normalize_digits),
        ):
            check_bool(value, name)
        seed = check_seed(seed)
        num_tags = len(tags)

        words = keras.Input((None,), dtype="int32", name="words")
        chars = keras.Input((None, max_word_length), dtype="int32", name="chars")
        casing = keras.Input((None,), dtype="int32", name="casing")
        word_ids = words
        if word_dropout:
            word_ids = UnknownWordDropout(word_dropout, seed=seed, name="word_dropout")(words)
        features = [
            keras.layers.Embedding(
                len(word_vocabulary) + 2, word_dim, mask_zero=True, name="word_embedding"
            )(word_ids)  # (batch, time, word_dim), carries the padding mask
        ]
        if char_encoder is not None:
            features.append(
                CharacterEncoder(
                    len(char_vocabulary) + 2,
                    char_encoder,
                    char_dim,
                    char_units,
                    name="char_features",
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
        # The mask is passed explicitly: `Concatenate` marks a step valid when
        # any of its inputs is, and the character and casing features carry
        # no mask, so the word embedding's padding mask would be lost.
        padding_mask = ops.not_equal(words, PAD)  # (batch, time)
        x = StackedRNN(
            lstm_units,
            num_layers=num_layers,
            bidirectional=True,
            dropout=dropout,
            return_sequences=True,
            seed=seed,
            name="bilstm",
        )(x, mask=padding_mask)  # (batch, time, 2 * lstm_units)
        x = keras.layers.Dropout(dropout, seed=None if seed is None else seed + 1, name="dropout")(
            x
        )
        emissions = keras.layers.Dense(num_tags, name="emissions")(x)
        super().__init__({"words": words, "chars": chars, "casing": casing}, emissions, **kwargs)

        self.word_vocabulary = word_vocabulary
        self.tags = tags
        self.char_vocabulary = char_vocabulary
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
        self.decoder_type = decoder
        self.lowercase = lowercase
        self.normalize_digits = normalize_digits
        self.buckets = buckets
        self.seed = seed
        self.crf = None
        if decoder == "crf":
            self.crf = CRF(num_tags, name="crf")
            self.crf.build((None, None, num_tags))
        self._inference = _InferenceCache()
        self._word_index = {w: i + 2 for i, w in enumerate(word_vocabulary)}
        self._char_index = {c: i + 2 for i, c in enumerate(char_vocabulary)}
        self._tag_index = {t: i for i, t in enumerate(tags)}

    # ------------------------------------------------------------ vocabulary
    @staticmethod
    def build_vocabularies(
        sentences, min_count=1, lowercase=True, normalize_digits=True, min_char_count=1
    ):
        """Word and character vocabularies of training sentences.

        Args:
            sentences: list of token lists.
            min_count: words seen fewer times are left out (they become the
                unknown word).
            lowercase, normalize_digits: as in the constructor; must match it.
            min_char_count: the same for characters.

        Returns:
            `(word_vocabulary, char_vocabulary)`, most frequent first.
        """
        words, chars = Counter(), Counter()
        for tokens in sentences:
            for token in tokens:
                words[SequenceTagger._normalize(token, lowercase, normalize_digits)] += 1
                chars.update(token)
        word_list = [
            w for w, n in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count
        ]
        char_list = [
            c
            for c, n in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))
            if n >= min_char_count
        ]
        return word_list, char_list

    @staticmethod
    def _normalize(token, lowercase, normalize_digits):
        if lowercase:
            token = token.lower()
        if normalize_digits:
            token = _DIGIT.sub("0", token)
        return token

    # -------------------------------------------------------------- encoding
    def bucket_length(self, length):
        """The padded length of a sentence of `length` tokens."""
        for bucket in self.buckets:
            if length <= bucket:
                return bucket
        top = self.buckets[-1]
        return top * math.ceil(length / top)

    @staticmethod
    def _tokens(sentence, position):
        if isinstance(sentence, str):
            tokens = sentence.split()
        elif isinstance(sentence, (list, tuple)) and all(isinstance(t, str) for t in sentence):
            tokens = list(sentence)
        else:
            raise ValueError(
                f"Sentence {position} must be a string (split on whitespace) or a list of "
                f"token strings. Received {type(sentence).__name__}: {sentence!r:.80}"
            )
        if not tokens or any(not t for t in tokens):
            raise ValueError(
                f"Sentence {position} has no tokens or an empty token: {sentence!r:.80}"
            )
        return tokens

    def encode(self, sentences, length=None, rows=None):
        """Model inputs for a list of sentences (strings or token lists).

        Args:
            sentences: list of whitespace-tokenized strings or token lists.
            length: padded length (default: the bucket of the longest).
            rows: pad the batch with empty rows up to this many (default: one
                row per sentence).

        Returns:
            dict of int32 arrays `words (n, length)`, `chars (n, length,
            max_word_length)`, `casing (n, length)`.
        """
        token_lists = [self._tokens(s, i) for i, s in enumerate(sentences)]
        longest = max((len(t) for t in token_lists), default=1)
        length = self.bucket_length(longest) if length is None else length
        if longest > length:
            raise ValueError(f"A sentence has {longest} tokens, more than length={length}.")
        n, width = max(len(token_lists), rows or 0), self.max_word_length
        words = np.zeros((n, length), "int32")
        chars = np.zeros((n, length, width), "int32")
        casing = np.zeros((n, length), "int32")
        for i, tokens in enumerate(token_lists):
            for t, token in enumerate(tokens):
                word = self._normalize(token, self.lowercase, self.normalize_digits)
                words[i, t] = self._word_index.get(word, UNK)
                casing[i, t] = casing_of(token)
                chars[i, t, : min(len(token), width)] = [
                    self._char_index.get(c, UNK) for c in token[:width]
                ]
        return {"words": words, "chars": chars, "casing": casing}

    def encode_tags(self, tag_lists, length, rows=None):
        """Tag ids `(rows or n, length)`, 0 at padding (masked in the loss)."""
        out = np.zeros((max(len(tag_lists), rows or 0), length), "int32")
        for i, tags in enumerate(tag_lists):
            try:
                out[i, : len(tags)] = [self._tag_index[t] for t in tags]
            except KeyError as e:
                raise ValueError(
                    f"Sentence {i} has tag {e.args[0]!r}, not one of this tagger's tags {self.tags}."
                ) from None
        return out

    def batches(self, sentences, tags=None, batch_size=32, shuffle=False, seed=None):
        """A `TaggingBatches` dataset for `fit`, `evaluate` or `predict`."""
        if tags is not None:
            if len(tags) != len(sentences):
                raise ValueError(f"{len(sentences)} sentences but {len(tags)} tag lists.")
            for i, (s, t) in enumerate(zip(sentences, tags)):
                if len(s) != len(t):
                    raise ValueError(f"Sentence {i} has {len(s)} tokens but {len(t)} tags.")
        return TaggingBatches(self, sentences, tags, batch_size, shuffle, seed)

    # ---------------------------------------------------------------- checks
    def check_inputs(self, x):
        """Checks the dict of `encode` given to `predict`/`evaluate`: its keys,
        shapes and that every id has an embedding row."""
        if concrete_numpy(x) is None and not isinstance(x, dict):
            return  # a dataset or symbolic inputs: left to Keras
        if not isinstance(x, dict) or not {"words", "chars", "casing"} <= set(x):
            raise ValueError(
                "SequenceTagger takes the dict of `encode` with keys 'words', 'chars' "
                f"and 'casing'. Received {type(x).__name__}"
                + (f" with keys {sorted(x)}." if isinstance(x, dict) else ".")
            )
        words = concrete_numpy(x["words"])
        if words is None:
            return
        chars, casing = concrete_numpy(x["chars"]), concrete_numpy(x["casing"])
        width = self.max_word_length
        for name, values, shape in (
            ("words", words, words.shape[:2]),
            ("chars", chars, words.shape[:2] + (width,)),
            ("casing", casing, words.shape[:2]),
        ):
            if values is not None and (values.ndim != len(shape) or values.shape != shape):
                raise ValueError(
                    f"`x['{name}']` must have shape {shape} (batch, time"
                    + (", max_word_length)" if name == "chars" else ")")
                    + f" to match x['words']. Received shape {values.shape}."
                )
        if words.ndim != 2:
            raise ValueError(f"`x['words']` must be (batch, time). Received {words.shape}.")
        check_token_ids(words, len(self.word_vocabulary) + 2, "x['words']")
        if self.char_encoder is not None:
            check_token_ids(chars, len(self.char_vocabulary) + 2, "x['chars']")
        if self.use_casing:
            check_token_ids(casing, len(CASINGS), "x['casing']")

    def check_targets(self, y):
        check_token_ids(y, len(self.tags), "y (tag ids)")

    # ------------------------------------------------------------------ loss
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        mask = ops.not_equal(x["words"], PAD)  # (batch, time)
        y = ops.cast(y, "int32")
        if self.decoder_type == "crf":
            per_sentence = -self.crf.log_likelihood(y_pred, y, mask)  # (batch,), 0 if empty
            if sample_weight is not None:
                per_sentence = per_sentence * ops.cast(sample_weight, per_sentence.dtype)
            # Mean over real sentences; rows that are all padding do not count.
            sentences = ops.sum(ops.cast(ops.any(mask, axis=1), per_sentence.dtype))
            loss = ops.sum(per_sentence) / ops.maximum(sentences, 1.0)
        else:
            log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
            picked = ops.take_along_axis(log_probs, ops.expand_dims(y, -1), axis=-1)[..., 0]
            weights = ops.cast(mask, "float32")
            if sample_weight is not None:
                weights = weights * ops.expand_dims(ops.cast(sample_weight, "float32"), -1)
            loss = -ops.sum(picked * weights) / ops.maximum(ops.sum(weights), 1.0)
        for extra in self.losses:
            loss = loss + ops.cast(extra, loss.dtype)
        return loss

    # -------------------------------------------------------------- decoding
    def decoding_model(self, length):
        """A model from inputs padded to `length` tokens to tag ids.

        It shares this tagger's layers and ends in the decoding: argmax per
        token, or the CRF's Viterbi path; padding steps get -1. One model is
        kept per length, so each compiles for a static time axis once.
        """
        length = _check_positive(length, "length")
        if length not in self._inference.decoders:
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
            self._inference.decoders[length] = keras.Model(inputs, tags, name=f"decoder_{length}")
        return self._inference.decoders[length]

    def predict(self, x, batch_size=None, verbose=0, steps=None, callbacks=None):
        """Tags: a list of tag lists for raw sentences, else tag ids.

        Args:
            x: a string or a list of sentences (whitespace-tokenized strings
                or token lists), or encoded inputs (`encode` output, a dict;
                ids outside a vocabulary raise a `ValueError`).
            batch_size: sentences per batch (default 32).
            verbose, steps, callbacks: as in `keras.Model.predict` (encoded
                inputs only).

        Returns:
            For sentences, one list of tag strings per sentence. For encoded
            inputs, int32 tag ids `(batch, time)`, -1 at padding.
        """
        if isinstance(x, str):
            x = [x]
        if isinstance(x, (list, tuple)):
            return self.tag(x, batch_size=batch_size or 32)
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
        """Tags sentences (whitespace-tokenized strings or token lists).

        A single string is one sentence.

        Returns:
            A list with one list of tag strings per sentence.
        """
        if isinstance(sentences, str):
            sentences = [sentences]
        if not isinstance(sentences, (list, tuple)):
            raise ValueError(
                "`sentences` must be a list of sentences (whitespace-tokenized strings or "
                f"token lists). Received {type(sentences).__name__}."
            )
        token_lists = [self._tokens(s, i) for i, s in enumerate(sentences)]
        results = [None] * len(token_lists)
        if not token_lists:
            return results
        data = self.batches(token_lists, batch_size=batch_size)
        for index, members in enumerate(data.batches):
            (inputs,) = data[index]
            ids = self.decoding_model(inputs["words"].shape[1]).predict_on_batch(inputs)
            ids = ops.convert_to_numpy(ids)
            for row, i in enumerate(members):
                results[i] = [self.tags[k] for k in ids[row, : len(token_lists[i])]]
        return results

    # ---------------------------------------------------------------- config
    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "word_vocabulary": list(self.word_vocabulary),
            "tags": list(self.tags),
            "char_vocabulary": list(self.char_vocabulary),
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
            "decoder": self.decoder_type,
            "lowercase": self.lowercase,
            "normalize_digits": self.normalize_digits,
            "buckets": list(self.buckets),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
