"""Spanish-English sentence pairs from Tatoeba, as packaged by manythings.org/anki.

`spa.txt` holds one pair per line, `English<TAB>Spanish`, ordered roughly from
short to long; newer releases add a third, attribution column, which is dropped.
The shared copy (release of 2018-04-07) has 118,121 pairs.

License: CC-BY 2.0 (France). Attribution: www.manythings.org/anki and
tatoeba.org; keep it with any redistributed data or derived model.
"""

from kzoo.datasets._download import fetch, read_text

ORIGIN = "http://www.manythings.org/anki/spa-eng.zip"
FNAME = "spa-eng.zip"
LOCAL_NAME = "spa-eng.txt.gz"
MEMBER = "spa.txt"


def load_pairs(path=None):
    """Loads the (English, Spanish) sentence pairs in file order.

    Args:
        path: `spa-eng.zip` (any zip holding a `spa.txt`), or `spa.txt` plain
            or gzipped. Default: downloaded into (or found in) the Keras cache;
            see `kzoo.datasets._download.fetch` for `KZOO_DATA_DIR`.

    Returns:
        A list of `(english, spanish)` tuples of str.

    Example:
        >>> pairs = load_pairs()
        >>> pairs[0]
        ('Go.', 'Ve.')
    """
    file_path = fetch(FNAME, ORIGIN, local_name=LOCAL_NAME, path=path)
    return parse_pairs(read_text(file_path, member=MEMBER), source=file_path)


def parse_pairs(text, source="<text>"):
    """Parses `English<TAB>Spanish[<TAB>attribution]` lines; blank lines skipped."""
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) not in (2, 3) or not fields[0] or not fields[1]:
            raise ValueError(
                f"{source}, line {number}: expected 'English<TAB>Spanish' with an "
                f"optional third column, got {len(fields)} field(s): {line[:80]!r}"
            )
        pairs.append((fields[0], fields[1]))
    return pairs
