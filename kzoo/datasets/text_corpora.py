"""Plain-text corpora for character-level language models.

- `"tinyshakespeare"`: Karpathy's char-rnn `input.txt`, 1,115,394 characters
  of Shakespeare plays (public domain).
- `"nietzsche"`: the `nietzsche.txt` of the Keras character-LSTM example,
  Beyond Good and Evil followed by part of Human, All Too Human (Project
  Gutenberg translations, public domain).
"""

from kzoo.datasets._download import check_split_size, fetch, read_text

# name -> (file name in the Keras cache, origin, name under KZOO_DATA_DIR)
CORPORA = {
    "tinyshakespeare": (
        "tinyshakespeare.txt",
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        "tinyshakespeare.txt.gz",
    ),
    "nietzsche": (
        "nietzsche.txt",
        "https://s3.amazonaws.com/text-datasets/nietzsche.txt",
        "nietzsche.txt.gz",
    ),
}


def load_text(name, path=None):
    """Loads a corpus as one string.

    Args:
        name: `"tinyshakespeare"` or `"nietzsche"`.
        path: a text file, plain or gzipped, to read instead. Default:
            downloaded into (or found in) the Keras cache; see
            `kzoo.datasets._download.fetch` for `KZOO_DATA_DIR`.

    Returns:
        The UTF-8 decoded text, unchanged (line endings included).

    Example:
        >>> text = load_text("tinyshakespeare")
        >>> text[:14]
        'First Citizen:'
    """
    if name not in CORPORA:
        raise ValueError(f"Unknown corpus {name!r}; expected one of {sorted(CORPORA)}.")
    fname, origin, local_name = CORPORA[name]
    file_path = fetch(fname, origin, local_name=local_name, path=path)
    text = read_text(file_path)
    if path is None:  # the cached file, not a user's own copy
        check_split_size("text_corpora", name, len(text), "characters", file_path)
    return text
