"""Raw sentences <-> id arrays for Seq2Seq, with both vocabularies in the model file.

Plain Python and NumPy: no TensorFlow, so a loaded model translates raw text on
every Keras backend.
"""

import collections

import numpy as np

from kzoo.preprocessing import check_texts
from kzoo.preprocessing.text import detokenize, learn_casing, split_words
from kzoo.utils.serialization import register_serializable
from kzoo.utils.validation import check_bool, check_int


def _check_vocabulary(vocabulary, name, required):
    if not isinstance(vocabulary, (list, tuple)) or not all(
        isinstance(word, str) for word in vocabulary
    ):
        raise ValueError(
            f"`{name}` must be a list of str (the token of each id). Received: "
            f"{type(vocabulary).__name__}"
        )
    index = {word: i for i, word in enumerate(vocabulary)}
    if len(index) != len(vocabulary):
        duplicates = [w for w, n in collections.Counter(vocabulary).items() if n > 1]
        raise ValueError(f"`{name}` has duplicate entries: {duplicates[:5]}")
    missing = [token for token in required if token not in index]
    if missing:
        raise ValueError(
            f"`{name}` must contain the special tokens {list(required)}. Missing: {missing}"
        )
    return list(vocabulary), index


@register_serializable
class Seq2SeqPreprocessor:
    """Sentences <-> id arrays for `kzoo.models.Seq2Seq`.

    Both sides are split by `split_words` (words and single punctuation marks,
    lowercased by default) and looked up in their vocabularies; unknown tokens
    map to `unknown_token`. Targets get `start_token` before and `end_token`
    after them. Generated ids are written back as sentences by `detokenize`,
    with `target_casing` restoring the usual casing of words such as names.
    Everything is plain Python and NumPy (no TensorFlow), and the vocabularies
    are part of the config, so a saved `Seq2Seq` holds them.

    Args:
        source_vocabulary: list of str, the source token of each id; must hold
            `pad_token` and `unknown_token`.
        target_vocabulary: list of str, the target token of each id; must hold
            `pad_token`, `start_token`, `end_token` and `unknown_token`, with
            `pad_token` at the same id as in the source vocabulary (the
            network masks one padding id).
        lowercase: bool, lowercase texts before splitting.
        target_casing: optional dict from a target token to its usual written
            form (`{"tom": "Tom", "i": "I"}`), used by `detokenize`.
        pad_token, start_token, end_token, unknown_token: str.

    Call arguments:
        sources: a str or a list of str.
        targets: optional list of str of the same length.
        length: optional int, the padded source (and target) length; default
            the longest row.

    Returns:
        `source_ids` `(batch, length)` int32 without targets; with targets
        `((source_ids, decoder_input_ids), target_ids)`, the decoder inputs
        starting with the start token and the targets ending with the end
        token (both `(batch, target_length)`), ready for `Seq2Seq.fit`.

    Example:

    >>> pre = Seq2SeqPreprocessor.from_pairs(pairs, 6000, 5000)  # (spanish, english)
    >>> (source, decoder_in), target = pre(["Hola."], ["Hello."])
    >>> pre.decode([1, 5, 4, 2])
    'Hello.'
    """

    def __init__(
        self,
        source_vocabulary,
        target_vocabulary,
        lowercase=True,
        target_casing=None,
        pad_token="<pad>",
        start_token="<s>",
        end_token="</s>",
        unknown_token="<unk>",
    ):
        for name, value in (
            ("pad_token", pad_token),
            ("start_token", start_token),
            ("end_token", end_token),
            ("unknown_token", unknown_token),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"`{name}` must be a non-empty str. Received: {name}={value!r}")
        self.source_vocabulary, self._source_index = _check_vocabulary(
            source_vocabulary, "source_vocabulary", (pad_token, unknown_token)
        )
        self.target_vocabulary, self._target_index = _check_vocabulary(
            target_vocabulary,
            "target_vocabulary",
            (pad_token, start_token, end_token, unknown_token),
        )
        if self._source_index[pad_token] != self._target_index[pad_token]:
            raise ValueError(
                f"`pad_token` {pad_token!r} must have the same id in both vocabularies. "
                f"Received: source id {self._source_index[pad_token]}, target id "
                f"{self._target_index[pad_token]}."
            )
        self.lowercase = check_bool(lowercase, "lowercase")
        target_casing = dict(target_casing or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in target_casing.items()):
            raise ValueError("`target_casing` must map str tokens to str written forms.")
        self.target_casing = target_casing
        self.pad_token = pad_token
        self.start_token = start_token
        self.end_token = end_token
        self.unknown_token = unknown_token

    @classmethod
    def from_pairs(cls, pairs, source_vocabulary_size, target_vocabulary_size, lowercase=True):
        """Builds the vocabularies (most frequent tokens first) and the target
        casing from raw `(source, target)` sentence pairs.

        Args:
            pairs: iterable of `(source str, target str)`.
            source_vocabulary_size, target_vocabulary_size: int, including the
                4 special tokens (`<pad>`, `<s>`, `</s>`, `<unk>`: ids 0-3).
            lowercase: bool.

        Returns:
            A `Seq2SeqPreprocessor`.
        """
        specials = ["<pad>", "<s>", "</s>", "<unk>"]
        sizes = {}
        for name, size in (
            ("source_vocabulary_size", source_vocabulary_size),
            ("target_vocabulary_size", target_vocabulary_size),
        ):
            sizes[name] = check_int(size, name, minimum=len(specials) + 1)
        pairs = list(pairs)
        vocabularies = []
        for side, name in ((0, "source_vocabulary_size"), (1, "target_vocabulary_size")):
            counts = collections.Counter(
                token for pair in pairs for token in split_words(pair[side], lowercase)
            )
            words = [w for w, _ in counts.most_common(sizes[name] - len(specials))]
            vocabularies.append(specials + words)
        casing = learn_casing((t for _, t in pairs), vocabularies[1]) if lowercase else {}
        return cls(*vocabularies, lowercase=lowercase, target_casing=casing)

    # --- ids ------------------------------------------------------------------

    @property
    def source_vocabulary_size(self):
        return len(self.source_vocabulary)

    @property
    def target_vocabulary_size(self):
        return len(self.target_vocabulary)

    @property
    def pad_token_id(self):
        return self._target_index[self.pad_token]

    @property
    def start_token_id(self):
        return self._target_index[self.start_token]

    @property
    def end_token_id(self):
        return self._target_index[self.end_token]

    def tokenize(self, text):
        """One sentence -> its tokens (list of str)."""
        return split_words(text, self.lowercase)

    def encode_source(self, texts):
        """Source texts -> one int32 id array per text (unpadded)."""
        unknown = self._source_index[self.unknown_token]
        return [
            np.array([self._source_index.get(t, unknown) for t in self.tokenize(text)], "int32")
            for text in check_texts(texts, "sources")
        ]

    def encode_target(self, texts):
        """Target texts -> one int32 id array per text, with start and end ids."""
        unknown = self._target_index[self.unknown_token]
        return [
            np.array(
                [self.start_token_id]
                + [self._target_index.get(t, unknown) for t in self.tokenize(text)]
                + [self.end_token_id],
                "int32",
            )
            for text in check_texts(texts, "targets")
        ]

    def pad(self, sequences, length=None):
        """Right-pads id arrays with the pad id into one `(n, length)` int32 array
        (longer rows are cut to `length`)."""
        length = check_int(length, "length", minimum=1, allow_none=True)
        if length is None:
            length = max([len(ids) for ids in sequences] + [1])
        batch = np.full((len(sequences), length), self.pad_token_id, "int32")
        for row, ids in zip(batch, sequences):
            ids = ids[:length]
            row[: len(ids)] = ids
        return batch

    def __call__(self, sources, targets=None, length=None):
        source_ids = self.pad(self.encode_source(sources), length)
        if targets is None:
            return source_ids
        targets = check_texts(targets, "targets")
        if len(targets) != len(source_ids):
            raise ValueError(
                f"`targets` must have one text per source. Received {len(source_ids)} sources "
                f"and {len(targets)} targets."
            )
        target = self.pad(self.encode_target(targets), None if length is None else length + 1)
        return (source_ids, target[:, :-1]), target[:, 1:]

    # --- back to text -----------------------------------------------------------

    def target_tokens(self, ids):
        """Generated ids -> target tokens: a leading start id is dropped, and
        everything from the end (or pad) id on."""
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        if ids and ids[0] == self.start_token_id:
            ids = ids[1:]
        tokens = []
        for i in ids:
            if i in (self.end_token_id, self.pad_token_id):
                break
            if not 0 <= i < self.target_vocabulary_size:
                raise ValueError(
                    f"Target id {i} is outside the target vocabulary [0, "
                    f"{self.target_vocabulary_size})."
                )
            tokens.append(self.target_vocabulary[i])
        return tokens

    def decode(self, ids):
        """Generated ids -> a sentence (see `detokenize`)."""
        return detokenize(self.target_tokens(ids), self.target_casing)

    def get_config(self):
        return {
            "source_vocabulary": list(self.source_vocabulary),
            "target_vocabulary": list(self.target_vocabulary),
            "lowercase": self.lowercase,
            "target_casing": dict(self.target_casing),
            "pad_token": self.pad_token,
            "start_token": self.start_token,
            "end_token": self.end_token,
            "unknown_token": self.unknown_token,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return (
            f"Seq2SeqPreprocessor(source_vocabulary_size={self.source_vocabulary_size}, "
            f"target_vocabulary_size={self.target_vocabulary_size}, lowercase={self.lowercase})"
        )
