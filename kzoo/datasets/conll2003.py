"""CoNLL-2003 English named-entity recognition data (IOB2 tags).

One token per line, `word POS chunk NER`; blank lines end sentences and
`-DOCSTART-` lines start documents. Splits: train (14,041 sentences, 203,621
tokens), valid (`eng.testa`) and test (`eng.testb`).

Reference:
    Tjong Kim Sang and De Meulder, "Introduction to the CoNLL-2003 Shared Task:
    Language-Independent Named Entity Recognition", CoNLL 2003.
    The text is Reuters news (RCV1): research use only.
"""

from typing import NamedTuple

from kzoo.datasets._download import check_split_size, fetch, read_text

ORIGIN = (
    "https://raw.githubusercontent.com/davidsbatista/NER-datasets/"
    "ab2e8178d7eb33f45f3f4c94dd0904115a38a549/CONLL2003/{split}.txt"
)
SPLITS = ("train", "valid", "test")

# Fixed tag order: a tag's index here is its class id.
TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
TAG_TO_ID = {tag: i for i, tag in enumerate(TAGS)}


class Sentence(NamedTuple):
    """One sentence: `tokens` and NER `tags`, plus `pos` and `chunk` tags.

    As a tuple it unpacks as `(tokens, tags, pos, chunk)`.
    """

    tokens: list
    tags: list
    pos: list
    chunk: list


def load_split(split="train", path=None):
    """Loads one split as a list of `Sentence` (documents markers skipped).

    Args:
        split: `"train"`, `"valid"` or `"test"`.
        path: a CoNLL file, plain or gzipped, to read instead. Default:
            downloaded into (or found in) the Keras cache; see
            `kzoo.datasets._download.fetch` for `KZOO_DATA_DIR`.

    Returns:
        A list of `Sentence(tokens, tags, pos, chunk)`, each field a list of
        str of the same length; tags are in `TAGS`.

    Example:
        >>> sentences = load_split("valid")
        >>> ids = [[TAG_TO_ID[t] for t in s.tags] for s in sentences]
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    file_path = fetch(
        f"{split}.txt",
        ORIGIN.format(split=split),
        local_name=f"conll2003/{split}.txt.gz",
        path=path,
    )
    sentences = parse_conll(read_text(file_path), source=file_path)
    if path is None:  # the cached file, not a user's own copy
        check_split_size("conll2003", split, len(sentences), "sentences", file_path)
    return sentences


def parse_conll(text, source="<text>"):
    """Parses CoNLL-2003 text (4 space-separated columns) into sentences."""
    sentences = []
    columns = ([], [], [], [])

    def flush():
        if columns[0]:
            sentences.append(Sentence(*(list(c) for c in columns)))
            for c in columns:
                c.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            flush()
            continue
        if fields[0] == "-DOCSTART-":
            flush()
            continue
        if len(fields) != 4:
            raise ValueError(
                f"{source}, line {number}: expected 4 columns 'word POS chunk NER', "
                f"got {len(fields)}: {line[:80]!r}"
            )
        if fields[3] not in TAG_TO_ID:
            raise ValueError(
                f"{source}, line {number}: unknown NER tag {fields[3]!r}; expected one of {TAGS}"
            )
        for column, value in zip(columns, (fields[0], fields[3], fields[1], fields[2])):
            column.append(value)
    flush()
    return sentences
