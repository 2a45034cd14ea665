import pytest

from kzoo.datasets import conll2003

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

New NNP B-NP B-LOC
York NNP I-NP I-LOC
. . O O"""  # no newline at the end


def test_tags_order():
    assert conll2003.TAGS == [
        "O",
        "B-PER",
        "I-PER",
        "B-ORG",
        "I-ORG",
        "B-LOC",
        "I-LOC",
        "B-MISC",
        "I-MISC",
    ]
    assert conll2003.TAG_TO_ID["B-LOC"] == 5


def _check(sentences):
    assert len(sentences) == 3
    first = sentences[0]
    assert first.tokens == ["EU", "rejects", "German", "call"]
    assert first.tags == ["B-ORG", "O", "B-MISC", "O"]
    assert first.pos == ["NNP", "VBZ", "JJ", "NN"]
    assert first.chunk == ["B-NP", "B-VP", "B-NP", "I-NP"]
    tokens, tags, _, _ = sentences[1]
    assert (tokens, tags) == (["Peter", "Blackburn"], ["B-PER", "I-PER"])
    assert sentences[2].tokens == ["New", "York", "."]
    assert sentences[2].tags == ["B-LOC", "I-LOC", "O"]


def test_seeded_gzip_and_plain_file(offline, data_dir, write_gz, tmp_path):
    write_gz(str(data_dir / "conll2003" / "valid.txt.gz"), CONLL)
    _check(conll2003.load_split("valid"))
    assert (offline.datasets / "conll2003" / "valid.txt.gz").exists()

    plain = tmp_path / "eng.testa"
    plain.write_text(CONLL.replace("\n", "\r\n") + "\r\n\r\n", encoding="ascii")
    _check(conll2003.load_split("valid", path=plain))
    assert offline.attempts == []


def test_bad_lines_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("EU NNP B-NP B-ORG\nrejects VBZ O\n", encoding="ascii")
    with pytest.raises(ValueError, match=r"bad.txt, line 2: expected 4 columns"):
        conll2003.load_split(path=bad)
    bad.write_text("EU NNP B-NP B-ORGANISATION\n", encoding="ascii")
    with pytest.raises(ValueError, match="line 1: unknown NER tag 'B-ORGANISATION'"):
        conll2003.load_split(path=bad)


def test_unknown_split():
    with pytest.raises(ValueError, match="split"):
        conll2003.load_split("dev")


def _entities(sentences, kind):
    return sum(tag == f"B-{kind}" for s in sentences for tag in s.tags)


@pytest.mark.parametrize(
    "split, sentences, tokens, per, org, loc, misc",
    [
        ("train", 14041, 203621, 6600, 6321, 7140, 3438),
        ("valid", 3250, 51362, 1842, 1341, 1837, 922),
        ("test", 3453, 46435, 1617, 1661, 1668, 702),
    ],
)
def test_shared_copy(offline, shared_env, split, sentences, tokens, per, org, loc, misc):
    data = conll2003.load_split(split)
    assert len(data) == sentences
    assert sum(len(s.tokens) for s in data) == tokens
    assert all(len(s.tokens) == len(s.tags) == len(s.pos) == len(s.chunk) for s in data)
    counts = [_entities(data, kind) for kind in ("PER", "ORG", "LOC", "MISC")]
    assert counts == [per, org, loc, misc]
    assert offline.attempts == []
