import collections
import io
import os
import re
import shutil
import tarfile

import numpy as np
import pytest

from kzoo.datasets import imdb

# A tiny archive in the official layout. Ids 0, 2, 10 check numeric ordering.
REVIEWS = {
    "aclImdb/train/neg/1_2.txt": "bad film",
    "aclImdb/train/neg/0_1.txt": "Bad, bad, BAD.<br/>Awful.",
    "aclImdb/train/pos/10_7.txt": "Café scenes, great.",
    "aclImdb/train/pos/0_9.txt": "A great film.<br /><br />Loved it!",
    "aclImdb/train/pos/2_8.txt": "great great acting",
    "aclImdb/train/unsup/0_0.txt": "unlabelled text",
    "aclImdb/train/unsup/1_0.txt": "more unlabelled<br />text",
    "aclImdb/test/neg/0_3.txt": "awful acting zzz",
    "aclImdb/test/pos/0_10.txt": "great film, great acting, great everything",
}
TRAIN_TEXTS = [  # neg/0_1, neg/1_2, pos/0_9, pos/2_8, pos/10_7
    "Bad, bad, BAD. Awful.",
    "bad film",
    "A great film.  Loved it!",
    "great great acting",
    "Café scenes, great.",
]
TRAIN_LABELS = [0, 0, 1, 1, 1]
TEST_TEXTS = ["awful acting zzz", "great film, great acting, great everything"]


def make_archive(path, reviews=REVIEWS):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, text in sorted(reviews.items()):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


@pytest.fixture
def seeded(data_dir):
    return make_archive(data_dir / "aclImdb_v1.tar.gz")


def reference_vocabulary(texts, max_tokens=None):
    """Lower-case, drop punctuation, split; most frequent first, ties in
    reverse byte order (the documented TextVectorization rule)."""
    counts = collections.Counter(w for t in texts for w in _words(t))
    words = sorted(counts, key=lambda w: (counts[w], w.encode()), reverse=True)
    vocab = ["", "[UNK]"] + words
    return vocab if max_tokens is None else vocab[:max_tokens]


def _words(text):
    return re.sub(r"[^\w\s]", "", text.lower()).split()


def reference_pad(seq, maxlen, padding, truncating):
    seq = list(seq)
    if len(seq) > maxlen:
        seq = seq[:maxlen] if truncating == "post" else seq[-maxlen:]
    pad = [0] * (maxlen - len(seq))
    return pad + seq if padding == "pre" else seq + pad


def test_clean_review():
    assert imdb.clean_review("a<br /><br />b<BR/>c<br>d") == "a  b c d"


def test_load_texts_from_seeded_archive(offline, seeded):
    texts, labels = imdb.load_texts("train")
    assert texts == TRAIN_TEXTS
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, TRAIN_LABELS)
    texts, labels = imdb.load_texts("test")
    assert texts == TEST_TEXTS
    np.testing.assert_array_equal(labels, [0, 1])
    assert offline.attempts == []
    extracted = offline.datasets / "aclImdb_v1_extracted" / "aclImdb"
    assert sorted(os.listdir(extracted / "train")) == ["neg", "pos", "unsup"]


def test_load_texts_unsup_and_shuffle(seeded):
    texts, labels = imdb.load_texts("train", include_unsup=True)
    assert texts == TRAIN_TEXTS + ["unlabelled text", "more unlabelled text"]
    np.testing.assert_array_equal(labels, TRAIN_LABELS + [-1, -1])

    shuffled, shuffled_labels = imdb.load_texts("train", include_unsup=True, shuffle_seed=7)
    order = np.random.default_rng(7).permutation(len(texts))
    assert shuffled == [texts[i] for i in order]
    np.testing.assert_array_equal(shuffled_labels, labels[order])
    again, _ = imdb.load_texts("train", include_unsup=True, shuffle_seed=7)
    assert again == shuffled


def test_load_texts_from_local_paths(offline, tmp_path):
    archive = make_archive(tmp_path / "mine" / "reviews.tar.gz")
    assert imdb.load_texts("train", path=archive)[0] == TRAIN_TEXTS
    folder = tmp_path / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    assert imdb.load_texts("test", path=folder)[0] == TEST_TEXTS
    assert imdb.load_texts("test", path=folder / "aclImdb")[0] == TEST_TEXTS
    assert offline.attempts == []


def test_load_data_matches_reference(seeded):
    (x_train, y_train), (x_test, y_test), vocab = imdb.load_data(
        num_words=None, maxlen=5, shuffle_seed=None
    )
    assert vocab == reference_vocabulary(TRAIN_TEXTS)
    assert "br" not in vocab  # line breaks removed before tokenising
    index = {w: i for i, w in enumerate(vocab)}
    for texts, x, y, labels in (
        (TRAIN_TEXTS, x_train, y_train, TRAIN_LABELS),
        (TEST_TEXTS, x_test, y_test, [0, 1]),
    ):
        expected = [
            reference_pad([index.get(w, 1) for w in _words(t)], 5, "post", "post") for t in texts
        ]
        assert x.dtype == np.int32 and x.shape == (len(texts), 5)
        np.testing.assert_array_equal(x, expected)
        np.testing.assert_array_equal(y, labels)
    # "zzz" and "everything" appear only in test: out of vocabulary.
    assert x_test[0].tolist() == [index["awful"], index["acting"], 1, 0, 0]


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_load_data_padding_truncating_and_cap(seeded, padding, truncating):
    (x_train, _), (x_test, _), vocab = imdb.load_data(
        num_words=5,
        maxlen=3,
        padding=padding,
        truncating=truncating,
        shuffle_seed=None,
    )
    assert vocab == reference_vocabulary(TRAIN_TEXTS, max_tokens=5)
    index = {w: i for i, w in enumerate(vocab)}
    for texts, x in ((TRAIN_TEXTS, x_train), (TEST_TEXTS, x_test)):
        expected = [
            reference_pad([index.get(w, 1) for w in _words(t)], 3, padding, truncating)
            for t in texts
        ]
        np.testing.assert_array_equal(x, expected)
    assert x_train.max() < 5


def test_load_data_shuffles_both_splits_with_the_seed(seeded):
    (x_sorted, y_sorted), (t_sorted, _), _ = imdb.load_data(maxlen=6, shuffle_seed=None)
    (x, y), (t, _), _ = imdb.load_data(maxlen=6, shuffle_seed=3)
    order = np.random.default_rng(3).permutation(len(x_sorted))
    np.testing.assert_array_equal(x, x_sorted[order])
    np.testing.assert_array_equal(y, y_sorted[order])
    np.testing.assert_array_equal(t, t_sorted[np.random.default_rng(3).permutation(2)])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_words": 2}, "num_words"),
        ({"num_words": 100.0}, "num_words"),
        ({"maxlen": 0}, "maxlen"),
        ({"padding": "middle"}, "padding"),
        ({"truncating": "both"}, "truncating"),
    ],
)
def test_load_data_rejects_bad_arguments(offline, kwargs, message):
    with pytest.raises(ValueError, match=message):
        imdb.load_data(**kwargs)
    assert offline.attempts == []  # validated before looking for data


def test_load_texts_rejects_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        imdb.load_texts("valid")
    with pytest.raises(ValueError, match="include_unsup"):
        imdb.load_texts("test", include_unsup=True)


def test_corrupt_archive(data_dir):
    (data_dir / "aclImdb_v1.tar.gz").write_bytes(b"\x1f\x8b" + b"garbage" * 50)
    with pytest.raises(ValueError, match="aclImdb_v1.tar.gz"):
        imdb.load_texts("train")


def test_folder_without_imdb_layout(tmp_path):
    (tmp_path / "aclImdb" / "train" / "pos").mkdir(parents=True)
    with pytest.raises(ValueError, match="neg"):
        imdb.load_texts("train", path=tmp_path)
    with pytest.raises(ValueError, match="No IMDB data"):
        imdb.load_texts("train", path=tmp_path / "aclImdb" / "train")


def test_non_utf8_review(tmp_path):
    for folder in ("neg", "pos"):
        (tmp_path / "train" / folder).mkdir(parents=True)
    (tmp_path / "train" / "pos" / "0_9.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="0_9.txt"):
        imdb.load_texts("train", path=tmp_path)


@pytest.fixture(scope="module")
def shared_imdb_home(tmp_path_factory):
    """One Keras cache for both tests below, so the shared archive (100,000
    files, about 400 MB) is extracted once; removed afterwards."""
    home = tmp_path_factory.mktemp("imdb_keras_home")
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def shared_imdb(offline, shared_env, shared_imdb_home, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(shared_imdb_home))
    return shared_imdb_home


# Extracting the shared archive took 30 s on an idle 2-core machine and several
# minutes on a busy one, hence `large`.
@pytest.mark.large
def test_shared_copy_counts(offline, shared_imdb):
    texts, labels = imdb.load_texts("train", include_unsup=True)
    assert len(texts) == 75000
    assert np.bincount(labels + 1).tolist() == [50000, 12500, 12500]
    # neg/0_3.txt of the official train set, first review in sorted order.
    assert texts[0].startswith("Story of a man who has unnatural feelings for a pig.")
    assert "<br" not in "".join(texts[:2000])
    texts, labels = imdb.load_texts("test")
    assert len(texts) == 25000
    assert np.bincount(labels).tolist() == [12500, 12500]
    assert offline.attempts == []


@pytest.mark.large
def test_shared_copy_load_data(offline, shared_imdb):
    (x_train, y_train), (x_test, y_test), vocab = imdb.load_data()
    assert x_train.shape == x_test.shape == (25000, 400)
    assert y_train.shape == y_test.shape == (25000,)
    assert np.bincount(y_train).tolist() == [12500, 12500]
    assert len(vocab) == 20000
    assert vocab[:4] == ["", "[UNK]", "the", "and"]
    assert 0 <= x_train.min() and x_train.max() == 19999
    assert offline.attempts == []


@pytest.mark.large
def test_shared_copy_with_a_missing_review_is_extracted_again(offline, shared_imdb, capsys):
    imdb.load_texts("test")  # extracts (or reuses) the shared archive
    extracted = shared_imdb / "datasets" / "aclImdb_v1_extracted" / "aclImdb"
    os.remove(extracted / "test" / "pos" / "0_10.txt")
    texts, labels = imdb.load_texts("test")
    assert "extracting it again" in capsys.readouterr().out
    assert len(texts) == 25000 and (extracted / "test" / "pos" / "0_10.txt").is_file()
    assert offline.attempts == []
