"""Fixtures of the dataset tests: a throw-away Keras cache and no network.

Every test gets `KERAS_HOME` pointing into its own tmp folder (so nothing is
written to the real `~/.keras`), `KZOO_DATA_DIR` unset, and downloads refused:
an attempt is recorded in `offline.attempts` and fails like a lost connection.
"""

import gzip
import os
import types
import urllib.error
import urllib.request

import pytest
from keras.src.utils import file_utils

from kzoo.datasets import _download


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.delenv("KZOO_DATA_DIR", raising=False)
    attempts = []

    def refuse(url, *args, **kwargs):
        attempts.append(url)
        raise urllib.error.URLError("downloads are disabled in the kzoo tests")

    monkeypatch.setattr(file_utils, "urlretrieve", refuse)
    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return types.SimpleNamespace(home=home, datasets=home / "datasets", attempts=attempts)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty `KZOO_DATA_DIR` folder; write files into it to seed the cache.

    The tests write small fake files under the real names, so the known sizes
    and hashes of the real files and the published split sizes are switched
    off (tests of those checks put back the entries they need).
    """
    path = tmp_path / "kzoo_data"
    path.mkdir()
    monkeypatch.setenv("KZOO_DATA_DIR", str(path))
    monkeypatch.setattr(_download, "KNOWN_FILES", {})
    monkeypatch.setattr(_download, "SPLIT_SIZES", {})
    return path


@pytest.fixture
def shared_env(shared_data_dir, monkeypatch):
    """`KZOO_DATA_DIR` set to the project's shared data (skips where absent)."""
    monkeypatch.setenv("KZOO_DATA_DIR", shared_data_dir)
    return shared_data_dir


def write_gz(path, text):
    """Writes `text` as gzipped UTF-8 (parent folders created)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    return path


@pytest.fixture(name="write_gz")
def write_gz_fixture():
    return write_gz
