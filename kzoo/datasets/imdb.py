"""IMDB Large Movie Review Dataset v1.0 (binary sentiment), read from raw text.

50,000 labelled reviews (25,000 train, 25,000 test, half positive and half
negative in each) plus 50,000 unlabelled training reviews, in the folder layout
of the official archive `aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt` and
`aclImdb/train/unsup/`.

Unlike `keras.datasets.imdb` (a pre-tokenised `imdb.npz`), this module reads the
original reviews and builds its own vocabulary from the training reviews.

Reference:
    Maas et al., "Learning Word Vectors for Sentiment Analysis", ACL-HLT 2011.
    https://ai.stanford.edu/~amaas/data/sentiment/
"""

import os
import re

import numpy as np

from kzoo.datasets._download import check_split_size, fetch

ORIGIN = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
FNAME = "aclImdb_v1.tar.gz"
LABELS = {"neg": 0, "pos": 1, "unsup": -1}

# Fixed texts whose probabilities a shipped IMDB classifier records (its
# `.expected.json`), so that every backend can be checked against them: a
# clear positive and negative review, an empty text, non-English text,
# `<br />` markup and a review far longer than the training length.
SAMPLE_TEXTS = (
    "This movie was wonderful, the best film I have seen this year.",
    "A dull, boring and far too long film. I want my money back.",
    "",
    "Ce film était magnifique ! 素晴らしい映画 — ÉNORME.",
    "It was okay.<br /><br />Not great, not terrible.",
    "An absolute masterpiece of acting and direction. " * 300,
)

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_REVIEW_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")


def clean_review(text):
    """Replaces the HTML line breaks (`<br />`) of a review by a space."""
    return _BREAK.sub(" ", text)


def load_texts(split="train", include_unsup=False, path=None, shuffle_seed=None):
    """Loads the reviews of one split as cleaned texts and integer labels.

    Reviews are ordered by folder (neg, pos, unsup) and then by numeric id,
    then shuffled with `shuffle_seed` when one is given, so the order is the
    same on every machine. The first call extracts the archive's 100,000 files
    into the Keras cache (about 30 s on a 2-core machine); later calls reuse
    them.

    Args:
        split: `"train"` or `"test"`.
        include_unsup: also return the 50,000 unlabelled training reviews
            (label -1). Only for `split="train"`.
        path: the official `aclImdb_v1.tar.gz` (or a re-pack of it), or a
            folder holding `aclImdb/` or the `train/`/`test/` folders, used as
            it is (e.g. a subset). Default: downloaded into (or found in) the
            Keras cache, where every folder must hold its published number of
            reviews (12,500 per class, 50,000 unlabelled); see
            `kzoo.datasets._download.fetch` for `KZOO_DATA_DIR`.
        shuffle_seed: seed of a NumPy permutation applied to the sorted
            reviews, or `None` to keep them sorted.

    Returns:
        `(texts, labels)`: a list of str (UTF-8 decoded, `<br />` replaced by a
        space) and an int32 array, 0 = negative, 1 = positive, -1 = unlabelled.

    Example:
        >>> texts, labels = load_texts("test", shuffle_seed=0)
    """
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test'. Received: split={split!r}")
    if include_unsup and split != "train":
        raise ValueError(
            "`include_unsup=True` needs split='train' (only the training set has "
            f"unlabelled reviews). Received: split={split!r}"
        )
    root = _find_root(fetch(FNAME, ORIGIN, local_name=FNAME, extract=True, path=path))
    folders = ["neg", "pos"] + (["unsup"] if include_unsup else [])
    texts, labels = [], []
    for folder in folders:
        directory = os.path.join(root, split, folder)
        if not os.path.isdir(directory):
            raise ValueError(f"IMDB folder not found: {directory}")
        names = sorted((n for n in os.listdir(directory) if n.endswith(".txt")), key=_review_key)
        if path is None:  # the cached dataset, not a user's own copy
            check_split_size("imdb", f"{split}/{folder}", len(names), "reviews", directory)
        for name in names:
            file_path = os.path.join(directory, name)
            with open(file_path, "rb") as f:
                data = f.read()
            try:
                texts.append(clean_review(data.decode("utf-8")))
            except UnicodeDecodeError as e:
                raise ValueError(f"{file_path} is not valid UTF-8: {e}") from e
            labels.append(LABELS[folder])
    labels = np.asarray(labels, dtype="int32")
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(texts))
        texts = [texts[i] for i in order]
        labels = labels[order]
    return texts, labels


def load_data(
    num_words=20000,
    maxlen=400,
    padding="post",
    truncating="post",
    path=None,
    shuffle_seed=113,
):
    """Loads IMDB as padded integer sequences with a vocabulary from train only.

    Texts are cleaned (`clean_review`), lower-cased and stripped of punctuation,
    split on whitespace and indexed by `keras.layers.TextVectorization` adapted
    on the 25,000 training reviews: index 0 is padding, 1 is out-of-vocabulary,
    then words by decreasing training frequency (ties in reverse byte order, as
    `TextVectorization` sorts them). Sequences are then padded or truncated to
    `maxlen` with `keras.utils.pad_sequences`.

    Args:
        num_words: size of the vocabulary including the padding and OOV
            entries (so indices are `< num_words`), or `None` for all words.
        maxlen: length of every returned sequence.
        padding: `"pre"` or `"post"`: where zeros are added to short reviews.
        truncating: `"pre"` or `"post"`: where long reviews are cut.
        path: see `load_texts`.
        shuffle_seed: seed of the permutation applied to each split (`None`:
            sorted, all negative reviews first).

    Returns:
        `((x_train, y_train), (x_test, y_test), vocabulary)`: int32 arrays of
        shape `(25000, maxlen)` and `(25000,)`, and the list of words where
        `vocabulary[i]` is the word of index `i` (`""` and `"[UNK]"` first).

    Example:
        >>> (x_train, y_train), (x_test, y_test), vocab = load_data(
        ...     num_words=10000, maxlen=200)
    """
    if num_words is not None and (
        isinstance(num_words, bool) or not isinstance(num_words, int) or num_words < 3
    ):
        # TextVectorization needs room for at least one learned word.
        raise ValueError(
            "`num_words` must be an int >= 3 (padding and OOV included) or None. "
            f"Received: num_words={num_words!r}"
        )
    if isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1:
        raise ValueError(f"`maxlen` must be an int >= 1. Received: maxlen={maxlen!r}")
    for name, value in (("padding", padding), ("truncating", truncating)):
        if value not in ("pre", "post"):
            raise ValueError(f"`{name}` must be 'pre' or 'post'. Received: {name}={value!r}")
    train_texts, y_train = load_texts("train", path=path, shuffle_seed=shuffle_seed)
    test_texts, y_test = load_texts("test", path=path, shuffle_seed=shuffle_seed)

    import keras

    vectorizer = keras.layers.TextVectorization(
        max_tokens=num_words,
        standardize="lower_and_strip_punctuation",
        split="whitespace",
        output_mode="int",
    )
    vectorizer.adapt(np.asarray(train_texts, dtype=object), batch_size=1024)
    sequences = []
    for texts in (train_texts, test_texts):
        seqs = _vectorize(vectorizer, texts)
        sequences.append(
            keras.utils.pad_sequences(
                seqs,
                maxlen=maxlen,
                dtype="int32",
                padding=padding,
                truncating=truncating,
                value=0,
            )
        )
    vocabulary = [str(w) for w in vectorizer.get_vocabulary()]
    return (sequences[0], y_train), (sequences[1], y_test), vocabulary


def _vectorize(vectorizer, texts, batch_size=1024):
    """Full-length index sequences (no padding, no truncation)."""
    import keras

    sequences = []
    for start in range(0, len(texts), batch_size):
        batch = np.asarray(texts[start : start + batch_size], dtype=object)
        ids = keras.ops.convert_to_numpy(vectorizer(batch))  # (batch, longest)
        # No word maps to 0, so each row is its tokens followed by padding.
        lengths = np.count_nonzero(ids, axis=1)
        sequences.extend(row[:n].astype("int32") for row, n in zip(ids, lengths))
    return sequences


def _find_root(directory):
    for candidate in (os.path.join(directory, "aclImdb"), directory):
        if os.path.isdir(os.path.join(candidate, "train")) or os.path.isdir(
            os.path.join(candidate, "test")
        ):
            return candidate
    raise ValueError(
        f"No IMDB data in {directory}: expected an `aclImdb/` folder or "
        "`train/` and `test/` folders."
    )


def _review_key(name):
    match = _REVIEW_NAME.match(name)
    return (int(match.group(1)) if match else -1, name)
