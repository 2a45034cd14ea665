import numpy as np
import pytest

from kzoo.datasets import ptb

TRAIN = " the cat sat on the mat \n the dog <unk> \n"
VALID = " the bird sat \n"
TEST = " a dog \n\n"  # a blank line still ends a sentence


def test_load_tokens_appends_eos(tmp_path):
    path = tmp_path / "ptb.train.txt"
    path.write_text(TRAIN)
    assert ptb.load_tokens("train", path=path) == (
        "the cat sat on the mat <eos> the dog <unk> <eos>".split()
    )
    path.write_text(TEST)
    assert ptb.load_tokens("test", path=path) == ["a", "dog", "<eos>", "<eos>"]


def test_build_vocab_by_count_then_alphabet():
    tokens = "b a c a <eos> b a <eos> z".split()
    assert ptb.build_vocab(tokens) == ["a", "<eos>", "b", "c", "z"]


def test_to_ids():
    vocab = ["the", "<unk>", "<eos>"]
    ids = ptb.to_ids(["the", "zebra", "<eos>"], vocab)
    assert ids.dtype == np.int32
    assert ids.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="'zebra'.*token 1"):
        ptb.to_ids(["the", "zebra"], ["the", "<eos>"])


def test_load_data_from_seeded_cache(offline, data_dir, write_gz):
    for split, text in (("train", TRAIN), ("valid", VALID), ("test", TEST)):
        write_gz(str(data_dir / "ptb" / f"ptb.{split}.txt.gz"), text)
    train, valid, test, vocab = ptb.load_data()
    # counts: the 3, <eos> 2, then single words alphabetically
    assert vocab == ["the", "<eos>", "<unk>", "cat", "dog", "mat", "on", "sat"]
    index = {w: i for i, w in enumerate(vocab)}
    expected = [index[w] for w in ptb.load_tokens("train")]
    assert train.dtype == np.int32 and train.tolist() == expected
    # "bird" and "a" are not in the train vocabulary: mapped to <unk>.
    assert [vocab[i] for i in valid] == ["the", "<unk>", "sat", "<eos>"]
    assert [vocab[i] for i in test] == ["<unk>", "dog", "<eos>", "<eos>"]
    assert offline.attempts == []


def test_load_data_from_folder(offline, tmp_path, write_gz):
    (tmp_path / "ptb.train.txt").write_text(TRAIN)
    (tmp_path / "ptb.valid.txt").write_text(VALID)
    write_gz(str(tmp_path / "ptb.test.txt.gz"), TEST)
    train, valid, test, vocab = ptb.load_data(data_dir=tmp_path)
    assert (len(train), len(valid), len(test), len(vocab)) == (11, 4, 4, 8)
    (tmp_path / "ptb.valid.txt").unlink()
    with pytest.raises(FileNotFoundError, match="ptb.valid.txt"):
        ptb.load_data(data_dir=tmp_path)


def test_unknown_split():
    with pytest.raises(ValueError, match="split"):
        ptb.load_tokens("dev")


def test_shared_copy(offline, shared_env):
    train, valid, test, vocab = ptb.load_data()
    assert (len(train), len(valid), len(test)) == (929589, 73760, 82430)
    assert len(vocab) == 10000
    assert vocab[:3] == ["the", "<unk>", "<eos>"]
    assert train.min() == 0 and train.max() == 9999
    assert int(np.sum(train == vocab.index("<eos>"))) == 42068
    assert len(set(valid.tolist())) == 6022  # 6,021 words + <eos>
    first_line = " ".join(vocab[i] for i in valid[:15])
    assert first_line.startswith("consumers may want to move their telephones")
    assert offline.attempts == []
