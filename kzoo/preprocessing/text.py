"""Sentences <-> tokens: splitting into words and punctuation, and writing tokens back.

`split_words` is the tokenization of kzoo's translation models (words and
single punctuation marks, optionally lowercased); `detokenize` writes such
tokens as a readable sentence (punctuation spacing, `¿ ¡`, contractions,
numbers, capitals) and `learn_casing` learns from cased text how each word is
usually written ("tom" -> "Tom", "i" -> "I"), so lowercased output can be
cased again. Plain Python: no TensorFlow.
"""

import collections
import re

# A word (letters, digits, underscore) or one other non-space character: "¿Dónde
# está Tom?" -> ["¿", "dónde", "está", "tom", "?"] once lowercased.
_TOKEN = re.compile(r"\w+|[^\w\s]")

# Detokenization: tokens glued to the token before them, to the token after
# them, or (between two words) to both: "don ' t" -> "don't", "e - mail".
_NO_SPACE_BEFORE = frozenset(".,!?;:%)]}…")
_NO_SPACE_AFTER = frozenset("¿¡([{$#")
_INSIDE_WORD = frozenset("'’-/")
# Inside a number: "6 : 30" -> "6:30", "3 . 5" -> "3.5", "1 , 000" -> "1,000".
_INSIDE_NUMBER = frozenset(":.,")
_SENTENCE_END = frozenset(".!?")
# After these, the next word is written as at the start of a sentence.
_SENTENCE_START = frozenset('.!?¿¡"')


def split_words(text, lowercase=True):
    """Splits a sentence into words and single punctuation marks.

    Args:
        text: str.
        lowercase: lowercase first (`str.lower`, all of Unicode).

    Returns:
        A list of str.

    Example:

    >>> split_words("¿Dónde está Tom?")
    ['¿', 'dónde', 'está', 'tom', '?']
    """
    return _TOKEN.findall(text.lower() if lowercase else text)


def _is_word(token):
    return bool(token) and (token[0].isalnum() or token[0] == "_")


def _inside_number(tokens, i):
    """Whether `tokens[i]` is the `:`, `.` or `,` of a number such as 6:30."""
    return (
        tokens[i] in _INSIDE_NUMBER
        and 0 < i < len(tokens) - 1
        and tokens[i - 1].isdigit()
        and tokens[i + 1].isdigit()
    )


def _glued(tokens, i, quotes_open):
    """Whether `tokens[i]` (i > 0) is written without a space before it."""
    token, previous = tokens[i], tokens[i - 1]
    before = tokens[i - 2] if i >= 2 else None
    following = tokens[i + 1] if i + 1 < len(tokens) else None
    if _inside_number(tokens, i) or (i >= 2 and _inside_number(tokens, i - 1)):
        return True
    if token in _NO_SPACE_BEFORE or previous in _NO_SPACE_AFTER:
        return True
    if token == '"' or previous == '"':
        # A closing quote closes up to the word before it, an opening one to
        # the word after it.
        return quotes_open
    if token in _INSIDE_WORD and _is_word(previous) and _is_word(following):
        return True
    return previous in _INSIDE_WORD and _is_word(before) and _is_word(token)


def detokenize(tokens, casing=None):
    """Writes tokens as a sentence: spacing of punctuation, casing, capitals.

    Punctuation closes up to the word before it (`tom is here .` -> `tom is
    here.`), `¿ ¡ ( [` to the word after it, an apostrophe or hyphen between two
    words joins them (`don ' t` -> `don't`), and `: . ,` between digits stay
    inside the number (`6 : 30` -> `6:30`). `casing` maps a lowercase token to
    its usual written form (`{"tom": "Tom", "i": "I"}`); the first word of each
    sentence starts with a capital (also after an opening `¿`/`¡`; an
    exclamation inside a sentence, "hola, ¡qué bien!", stays lowercase).

    Args:
        tokens: list of str, as `split_words` makes them.
        casing: optional dict from token to written form.

    Returns:
        A str.

    Example:

    >>> detokenize(["¿", "dónde", "vive", "tom", "?"], {"tom": "Tom"})
    '¿Dónde vive Tom?'
    """
    casing = casing or {}
    text, quotes_open, capitalize = [], False, True
    for i, token in enumerate(tokens):
        word = casing.get(token, token)
        if capitalize and _is_word(word):
            word = word[0].upper() + word[1:]
            capitalize = False
        if i and not _glued(tokens, i, quotes_open):
            text.append(" ")
        text.append(word)
        if token == '"':
            quotes_open = not quotes_open
        if token in _SENTENCE_END and not _inside_number(tokens, i):
            capitalize = True
    return "".join(text)


def learn_casing(texts, vocabulary):
    """How each token is usually written, learned from cased sentences.

    Words at the start of a sentence (or after `¿ ¡ "`) are skipped: their
    capital comes from the position, not from the word.

    Args:
        texts: iterable of cased sentences (str).
        vocabulary: the lowercase tokens to learn (others are skipped).

    Returns:
        A dict from token to its most frequent written form, for the tokens
        whose usual form is not the token itself (`{"tom": "Tom", "i": "I"}`).

    Example:

    >>> learn_casing(["I saw Tom.", "Tom and I left."], ["i", "tom", "saw"])
    {'tom': 'Tom', 'i': 'I'}
    """
    known = set(vocabulary)
    forms = collections.defaultdict(collections.Counter)
    for text in texts:
        previous = None
        for written in split_words(text, lowercase=False):
            if previous is not None and previous not in _SENTENCE_START and _is_word(written):
                token = written.lower()
                if token in known:
                    forms[token][written] += 1
            previous = written
    casing = {}
    for token, counts in forms.items():
        written, _ = counts.most_common(1)[0]
        if written != token:
            casing[token] = written
    return casing


__all__ = ["detokenize", "learn_casing", "split_words"]
