import gzip
import io
import os
import tarfile
import urllib.request
import zipfile

import keras
import pytest
from keras.src.utils import file_utils

from kzoo.datasets import _download
from kzoo.datasets._download import cache_root, fetch, read_text

# The real functions, saved before the `offline` fixture replaces them.
REAL_URLOPEN = urllib.request.urlopen
REAL_URLRETRIEVE = urllib.request.urlretrieve
ORIGIN = "https://example.invalid/data/thing.txt"


def _make_tar_gz(path, files):
    """A .tar.gz holding `files` ({member name: text})."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, text in sorted(files.items()):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_cache_root_follows_keras_home_and_cache_dir(offline, tmp_path):
    assert cache_root() == str(offline.home)
    assert cache_root(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")


def test_seeds_cache_from_data_dir_without_downloading(offline, data_dir):
    (data_dir / "sub").mkdir()
    (data_dir / "sub" / "thing.txt.gz").write_bytes(b"seeded bytes")

    path = fetch("thing.txt", ORIGIN, local_name="sub/thing.txt.gz")

    # The seeded copy keeps its own name, in the sub-folder of the local name.
    assert path == str(offline.datasets / "sub" / "thing.txt.gz")
    with open(path, "rb") as f:
        assert f.read() == b"seeded bytes"
    assert offline.attempts == []
    # Cached now: found again even with the data folder gone.
    os.remove(data_dir / "sub" / "thing.txt.gz")
    assert fetch("thing.txt", ORIGIN, local_name="sub/thing.txt.gz") == path
    assert offline.attempts == []


def test_missing_everywhere_tries_download_and_names_the_way_out(offline, data_dir):
    with pytest.raises(OSError, match="KZOO_DATA_DIR") as info:
        fetch("thing.txt", ORIGIN, local_name="sub/thing.txt.gz")
    assert "sub/thing.txt.gz" in str(info.value)
    assert ORIGIN in str(info.value)
    assert offline.attempts == [ORIGIN]  # it went through keras.utils.get_file
    assert not (offline.datasets / "sub" / "thing.txt").exists()


def test_downloads_through_keras_get_file(offline, tmp_path, monkeypatch):
    # Allow only local file:// "downloads", which urlretrieve copies.
    source = tmp_path / "remote" / "thing.txt"
    source.parent.mkdir()
    source.write_text("downloaded\n")

    def local_only(url, *args, **kwargs):
        assert str(getattr(url, "full_url", url)).startswith("file://"), url
        return REAL_URLOPEN(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
    monkeypatch.setattr(file_utils, "urlretrieve", REAL_URLRETRIEVE)
    path = fetch("thing.txt", source.as_uri(), local_name="sub/thing.txt.gz")
    assert path == str(offline.datasets / "sub" / "thing.txt")
    assert read_text(path) == "downloaded\n"


def test_explicit_path_is_used_as_is(offline, tmp_path):
    local = tmp_path / "mine.txt"
    local.write_text("x")
    assert fetch("thing.txt", ORIGIN, path=local) == str(local)
    assert fetch("thing.txt", ORIGIN, path=tmp_path, extract=True) == str(tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        fetch("thing.txt", ORIGIN, path=tmp_path / "nope.txt")
    assert offline.attempts == []
    assert not offline.datasets.exists()


def test_rejects_fname_with_folder(offline):
    with pytest.raises(ValueError, match="fname"):
        fetch("a/b.txt", ORIGIN)


def test_extracts_seeded_archive_once(offline, data_dir, monkeypatch):
    _make_tar_gz(str(data_dir / "pack_v1.tar.gz"), {"top/a.txt": "A", "top/b.txt": "B"})

    out = fetch("pack_v1.tar.gz", ORIGIN, local_name="pack_v1.tar.gz", extract=True)

    # Keras 3 names the extraction folder `<name up to the first dot>_extracted`.
    assert out == str(offline.datasets / "pack_v1_extracted")
    assert sorted(os.listdir(os.path.join(out, "top"))) == ["a.txt", "b.txt"]
    assert read_text(os.path.join(out, "top", "b.txt")) == "B"
    assert offline.attempts == []

    def fail(*args, **kwargs):
        raise AssertionError("get_file called although extraction was complete")

    monkeypatch.setattr(keras.utils, "get_file", fail)
    assert fetch("pack_v1.tar.gz", ORIGIN, local_name="pack_v1.tar.gz", extract=True) == out


def test_leaves_a_folder_it_did_not_make_alone(offline, data_dir):
    _make_tar_gz(str(data_dir / "pack.tar.gz"), {"a.txt": "A"})
    users = offline.datasets / "pack_extracted"
    users.mkdir(parents=True)
    (users / "my_notes.txt").write_text("mine")  # no kzoo marker: not kzoo's folder

    with pytest.raises(FileExistsError, match="pack_extracted.*kzoo did not make it"):
        fetch("pack.tar.gz", ORIGIN, local_name="pack.tar.gz", extract=True)
    assert sorted(os.listdir(users)) == ["my_notes.txt"]
    assert (users / "my_notes.txt").read_text() == "mine"


def test_extracts_user_archive_into_cache_under_unique_name(offline, tmp_path):
    archive = _make_tar_gz(str(tmp_path / "mine" / "pack.tar.gz"), {"a.txt": "A"})

    out = fetch("pack.tar.gz", ORIGIN, path=archive, extract=True)

    assert os.path.dirname(out) == str(offline.datasets)
    name = os.path.basename(out)
    assert name.startswith("pack-") and name.endswith("_extracted")
    assert read_text(os.path.join(out, "a.txt")) == "A"
    assert os.listdir(tmp_path / "mine") == ["pack.tar.gz"]  # nothing written there
    assert offline.attempts == []


def test_corrupt_archive_is_a_value_error_naming_the_file(offline, data_dir):
    (data_dir / "pack.tar.gz").write_bytes(b"this is not an archive" * 10)
    with pytest.raises(ValueError, match="pack.tar.gz") as info:
        fetch("pack.tar.gz", ORIGIN, local_name="pack.tar.gz", extract=True)
    assert "not a readable tar or zip archive" in str(info.value)


def test_truncated_archive_is_a_value_error_and_leaves_no_folder(offline, data_dir):
    # Incompressible content, so cutting the gzip stream cuts inside a member.
    payload = {f"d/{i}.txt": os.urandom(3000).hex() for i in range(8)}
    full = _make_tar_gz(str(data_dir / "full.tar.gz"), payload)
    with open(full, "rb") as f:
        data = f.read()
    (data_dir / "pack.tar.gz").write_bytes(data[: len(data) // 2])

    with pytest.raises(ValueError, match="pack.tar.gz") as info:
        fetch("pack.tar.gz", ORIGIN, local_name="pack.tar.gz", extract=True)
    assert "corrupt or incomplete" in str(info.value)
    assert not (offline.datasets / "pack_extracted").exists()


def test_read_text_plain_gzip_and_zip(tmp_path):
    text = "héllo\nwörld\r\n"
    plain = tmp_path / "a.txt"
    plain.write_bytes(text.encode("utf-8"))
    gz = tmp_path / "a.bin"  # the format comes from the bytes, not the name
    gz.write_bytes(gzip.compress(text.encode("utf-8")))
    zipped = tmp_path / "a.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("_about.txt", "about")
        zf.writestr("folder/spa.txt", text)

    assert read_text(plain) == text
    assert read_text(gz) == text
    assert read_text(zipped, member="spa.txt") == text
    with pytest.raises(ValueError, match="other.txt"):
        read_text(zipped, member="other.txt")


def test_read_text_bad_files(tmp_path):
    bad_gz = tmp_path / "bad.txt.gz"
    bad_gz.write_bytes(gzip.compress(os.urandom(4000))[:2000])
    with pytest.raises(ValueError, match="bad.txt.gz"):
        read_text(bad_gz)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt.*UTF-8"):
        read_text(latin1)
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "missing.txt")


def test_data_dir_env_name():
    assert _download.DATA_DIR_ENV == "KZOO_DATA_DIR"
