"""split_words / detokenize / learn_casing (kzoo.preprocessing.text)."""

import pytest

from kzoo.preprocessing.text import detokenize, learn_casing, split_words


def test_split_words_lowercases_unicode_and_splits_punctuation():
    assert split_words("¿Dónde está Tom?") == ["¿", "dónde", "está", "tom", "?"]
    assert split_words("ÉL NO LO SABÍA.", lowercase=False) == ["ÉL", "NO", "LO", "SABÍA", "."]
    assert split_words("I don't know.") == ["i", "don", "'", "t", "know", "."]
    assert split_words("   ") == []


@pytest.mark.parametrize(
    "tokens, casing, expected",
    [
        ("tom is in the kitchen .", {"tom": "Tom"}, "Tom is in the kitchen."),
        ("i don ' t know where she lives .", {"i": "I"}, "I don't know where she lives."),
        ("can you help me tomorrow ?", None, "Can you help me tomorrow?"),
        ("¿ dónde está la estación ?", None, "¿Dónde está la estación?"),
        ("hola , ¡ qué bien !", None, "Hola, ¡qué bien!"),
        ("it ' s 6 : 30 . we leave at 7 .", None, "It's 6:30. We leave at 7."),
        ('he said " stop " and left .', None, 'He said "stop" and left.'),
        ("send me an e - mail ( please ) .", None, "Send me an e-mail (please)."),
        ("it costs 3 . 5 dollars , not 4 .", None, "It costs 3.5 dollars, not 4."),
        ("", None, ""),
    ],
)
def test_detokenize(tokens, casing, expected):
    assert detokenize(tokens.split(), casing) == expected


def test_detokenize_inverts_split_words_on_plain_sentences():
    for sentence in [
        "Where is the station?",
        "I'm sure it's Tom's.",
        "¿Qué hora es? Son las 6:30.",
    ]:
        tokens = split_words(sentence, lowercase=False)
        assert detokenize(tokens) == sentence


def test_learn_casing_skips_sentence_starts():
    texts = ["I saw Tom.", "Tom and I left.", "Where is Mary? Mary is out.", "Apples are red."]
    casing = learn_casing(texts, ["i", "tom", "saw", "mary", "apples", "red"])
    # "Apples" is only seen at the start of a sentence: no casing learned.
    assert casing == {"tom": "Tom", "i": "I", "mary": "Mary"}
