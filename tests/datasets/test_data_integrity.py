"""Dataset cache integrity: never returned short, never deleting what kzoo did not make.

Small fake files stand in for the real ones; each test puts into
`_download.KNOWN_FILES` / `SPLIT_SIZES` (emptied by the `data_dir` fixture) the
entries its fake files need. The real entries are checked against the shared
data at the end.
"""

import gzip
import hashlib
import io
import os
import tarfile
import urllib.request

import pytest
from keras.src.utils import file_utils

from kzoo.datasets import _download, conll2003, imdb, ptb, text_corpora, timeseries
from kzoo.datasets._download import fetch

ORIGIN = "https://example.invalid/data/thing.txt"
REAL_URLOPEN = urllib.request.urlopen
REAL_URLRETRIEVE = urllib.request.urlretrieve


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def know(monkeypatch, key, *contents):
    """Registers `contents` (bytes) as the accepted versions of cache file `key`."""
    monkeypatch.setitem(_download.KNOWN_FILES, key, tuple((len(c), sha256(c)) for c in contents))


def cache_leftovers(folder):
    found = []
    for _, dirs, files in os.walk(folder):
        found += [n for n in dirs + files if ".tmp-" in n or ".old-" in n]
    return found


def tar_gz(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in sorted(files.items()):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def local_downloads(monkeypatch):
    """Lets `get_file` "download" file:// URLs (and nothing else)."""

    def local_only(url, *args, **kwargs):
        assert str(getattr(url, "full_url", url)).startswith("file://"), url
        return REAL_URLOPEN(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
    monkeypatch.setattr(file_utils, "urlretrieve", REAL_URLRETRIEVE)


def test_truncated_or_empty_cached_copy_is_seeded_again(offline, data_dir, monkeypatch, capsys):
    content = b"every line of the real file\n" * 100
    (data_dir / "sub").mkdir()
    (data_dir / "sub" / "thing.txt.gz").write_bytes(content)
    know(monkeypatch, "sub/thing.txt.gz", content)
    path = fetch("thing.txt", ORIGIN, local_name="sub/thing.txt.gz")
    for damage in (content[:1000], b""):  # a killed copy, a full disk
        with open(path, "wb") as f:
            f.write(damage)
        assert fetch("thing.txt", ORIGIN, local_name="sub/thing.txt.gz") == path
        with open(path, "rb") as f:
            assert f.read() == content
        assert "incomplete or damaged" in capsys.readouterr().out
    assert offline.attempts == []
    assert cache_leftovers(offline.home) == []


def test_empty_cached_copy_of_an_unknown_file_is_fetched_again(offline, data_dir):
    (data_dir / "thing.txt.gz").write_bytes(b"data")
    path = fetch("thing.txt", ORIGIN, local_name="thing.txt.gz")
    open(path, "wb").close()
    fetch("thing.txt", ORIGIN, local_name="thing.txt.gz")
    with open(path, "rb") as f:
        assert f.read() == b"data"


def test_damaged_seed_is_an_error_naming_it(offline, data_dir, monkeypatch):
    content = b"the real file\n" * 50
    know(monkeypatch, "thing.txt.gz", content)
    (data_dir / "thing.txt.gz").write_bytes(content[:300])
    with pytest.raises(ValueError, match=r"thing\.txt\.gz.*truncated, damaged") as info:
        fetch("thing.txt", ORIGIN, local_name="thing.txt.gz")
    assert "path=" in str(info.value)
    assert not (offline.datasets / "thing.txt.gz").exists()


def test_damaged_cached_copy_without_seed_is_downloaded_again(
    offline, tmp_path, monkeypatch, local_downloads
):
    content = b"downloaded content\n" * 40
    remote = tmp_path / "remote" / "thing.txt"
    remote.parent.mkdir()
    remote.write_bytes(content)
    know(monkeypatch, "thing.txt", content)
    cached = offline.datasets / "thing.txt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(content[:100])  # left by a download killed half-way

    assert fetch("thing.txt", remote.as_uri()) == str(cached)
    assert cached.read_bytes() == content
    assert cache_leftovers(offline.home) == []


def test_download_of_another_file_is_refused_and_not_cached(
    offline, tmp_path, monkeypatch, local_downloads
):
    remote = tmp_path / "remote" / "thing.txt"
    remote.parent.mkdir()
    remote.write_bytes(b"a shorter, different file")
    know(monkeypatch, "thing.txt", b"the expected file\n" * 10)
    with pytest.raises(ValueError, match="incomplete or unexpected file"):
        fetch("thing.txt", remote.as_uri())
    assert not (offline.datasets / "thing.txt").exists()
    assert cache_leftovers(offline.home) == []


def test_interrupted_download_leaves_nothing(offline, tmp_path, monkeypatch):
    def half_then_fail(url, filename, reporthook=None, data=None):
        with open(filename, "wb") as f:
            f.write(b"half of it")
        raise ConnectionResetError("connection lost")

    monkeypatch.setattr(file_utils, "urlretrieve", half_then_fail)
    with pytest.raises(OSError, match="connection lost"):
        fetch("thing.txt", ORIGIN)
    assert not (offline.datasets / "thing.txt").exists()
    assert cache_leftovers(offline.home) == []


def test_extraction_with_missing_files_is_made_again(offline, data_dir, capsys):
    (data_dir / "pack.tar.gz").write_bytes(tar_gz({"d/a.txt": "A", "d/b.txt": "B"}))
    out = fetch("pack.tar.gz", ORIGIN, local_name="pack.tar.gz", extract=True)
    os.remove(os.path.join(out, "d", "b.txt"))  # e.g. a cleaning tool, a failed disk

    assert fetch("pack.tar.gz", ORIGIN, local_name="pack.tar.gz", extract=True) == out
    assert sorted(os.listdir(os.path.join(out, "d"))) == ["a.txt", "b.txt"]
    assert "extracting it again" in capsys.readouterr().out
    assert cache_leftovers(offline.home) == []


def test_failed_extraction_leaves_no_folder(offline, data_dir):
    data = tar_gz({f"d/{i}.txt": os.urandom(2000).hex() for i in range(6)})
    (data_dir / "pack.tar.gz").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ValueError, match="corrupt or incomplete"):
        fetch("pack.tar.gz", ORIGIN, local_name="pack.tar.gz", extract=True)
    assert not (offline.datasets / "pack_extracted").exists()
    assert cache_leftovers(offline.home) == []


def test_imdb_refuses_to_touch_a_folder_it_did_not_make(offline, data_dir):
    (data_dir / "aclImdb_v1.tar.gz").write_bytes(tar_gz({"aclImdb/train/pos/0_9.txt": "ok"}))
    users = offline.datasets / "aclImdb_v1_extracted" / "aclImdb" / "train" / "pos"
    users.mkdir(parents=True)
    (users / "0_9.txt").write_text("the user's own review")

    with pytest.raises(FileExistsError, match="aclImdb_v1_extracted"):
        imdb.load_texts("train")
    assert (users / "0_9.txt").read_text() == "the user's own review"


REVIEWS = {
    "aclImdb/train/neg/0_1.txt": "bad",
    "aclImdb/train/neg/1_2.txt": "awful",
    "aclImdb/train/pos/0_9.txt": "good",
    "aclImdb/test/neg/0_1.txt": "dull",
    "aclImdb/test/pos/0_8.txt": "fine",
}


def test_imdb_with_missing_reviews_is_never_returned_short(offline, data_dir, monkeypatch):
    (data_dir / "aclImdb_v1.tar.gz").write_bytes(tar_gz(REVIEWS))
    sizes = {"train/neg": 2, "train/pos": 1, "test/neg": 1, "test/pos": 1}
    for folder, count in sizes.items():
        monkeypatch.setitem(_download.SPLIT_SIZES, ("imdb", folder), count)
    assert imdb.load_texts("train")[0] == ["bad", "awful", "good"]

    # The published sizes, which the archive (a stand-in for a short one) misses.
    monkeypatch.setitem(_download.SPLIT_SIZES, ("imdb", "train/neg"), 12_500)
    with pytest.raises(ValueError, match=r"train/neg.*holds 2 reviews.*has 12,500"):
        imdb.load_texts("train")
    # A user's own copy (a subset, say) is used as it is.
    archive = data_dir / "aclImdb_v1.tar.gz"
    assert imdb.load_texts("train", path=archive)[0] == ["bad", "awful", "good"]


@pytest.mark.parametrize(
    ("load", "local_name", "text", "key"),
    [
        (lambda: ptb.load_tokens("valid"), "ptb/ptb.valid.txt.gz", " a b\n c\n", ("ptb", "valid")),
        (
            lambda: conll2003.load_split("test"),
            "conll2003/test.txt.gz",
            "EU NNP B-NP B-ORG\n\nPeter NNP B-NP B-PER\n",
            ("conll2003", "test"),
        ),
        (
            lambda: text_corpora.load_text("nietzsche"),
            "nietzsche.txt.gz",
            "PREFACE",
            ("text_corpora", "nietzsche"),
        ),
        (
            lambda: timeseries.load_series("monthly-sunspots"),
            "timeseries/monthly-sunspots.csv",
            '"Month","Sunspots"\n"1749-01",58.0\n',
            ("timeseries", "monthly-sunspots"),
        ),
    ],
    ids=["ptb", "conll2003", "text_corpora", "timeseries"],
)
def test_short_split_is_reported(offline, data_dir, monkeypatch, load, local_name, text, key):
    seed = data_dir / local_name
    seed.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    seed.write_bytes(gzip.compress(data) if local_name.endswith(".gz") else data)
    load()  # no published size registered: not checked
    monkeypatch.setitem(_download.SPLIT_SIZES, key, 10_000)
    with pytest.raises(ValueError, match=rf"{key[0]} '{key[1]}' split.*10,000"):
        load()


def test_known_files_are_the_shared_copies(shared_data_dir):
    """Every shared-data file kzoo seeds from is listed with its size and sha256."""
    listed = 0
    for key, versions in _download.KNOWN_FILES.items():
        path = os.path.join(shared_data_dir, key)
        if not os.path.isfile(path):
            continue  # a download name; its content is not in shared/data
        with open(path, "rb") as f:
            data = f.read()
        assert (len(data), sha256(data)) in versions, key
        listed += 1
    assert listed == 13  # the 14 data files of shared/data but `spa-eng_about.txt`


def test_pinned_download_hashes_are_the_shared_contents(shared_data_dir):
    """A file downloaded from a loader's origin is pinned to the shared copy's content."""
    for download, shared in [
        (f"ptb.{split}.txt", f"ptb/ptb.{split}.txt.gz") for split in ptb.SPLITS
    ] + [("tinyshakespeare.txt", "tinyshakespeare.txt.gz")]:
        with gzip.open(os.path.join(shared_data_dir, shared), "rb") as f:
            data = f.read()
        assert (len(data), sha256(data)) in _download.KNOWN_FILES[download], download


def test_split_sizes_hold_on_the_shared_copies(offline, shared_env):
    """The loaders pass their own size checks on the real data (IMDB: `large`)."""
    for split in ptb.SPLITS:
        ptb.load_tokens(split)
    for split in conll2003.SPLITS:
        conll2003.load_split(split)
    for name in text_corpora.CORPORA:
        text_corpora.load_text(name)
    for name in timeseries.SERIES:
        timeseries.load_series(name)
    assert offline.attempts == []
