"""Fixtures of the recipe tests: offline data, and small IMDB folders cut from the archive."""

import os
import tarfile

import keras
import pytest

_IMDB_SUBSETS = {}


@pytest.fixture(autouse=True)
def _torch_threads():
    """A recipe's `main` run in the test process limits PyTorch's threads; the next test gets
    them back (`kzoo.recipes.limit_threads`)."""
    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def offline_data(shared_data_dir, monkeypatch, tmp_path):
    """Recipes read the shared data folder (nothing is downloaded) and a fresh Keras cache."""
    monkeypatch.setenv("KZOO_DATA_DIR", shared_data_dir)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return shared_data_dir


@pytest.fixture
def imdb_subset(offline_data, tmp_path_factory):
    """A function `counts -> folder` of a small `aclImdb/` of real reviews, for `data_path`.

    `counts` maps `(split, folder)` (e.g. `("train", "neg")`, `("train",
    "unsup")`) to a number of reviews. Each folder is made once per test
    session.
    """

    def make(counts):
        key = tuple(counts.items())
        if key not in _IMDB_SUBSETS:
            folder = str(tmp_path_factory.mktemp("imdb_subset"))
            archive = os.path.join(offline_data, "aclImdb_v1.tar.gz")
            _IMDB_SUBSETS[key] = cut_imdb_subset(archive, folder, counts)
        return _IMDB_SUBSETS[key]

    return make


def cut_imdb_subset(archive, folder, counts):
    """Writes `counts` reviews per `(split, folder)` into `<folder>/aclImdb/`; returns `folder`.

    The archive stores the test reviews first: reading only those (an eighth
    of the archive) is fast. So every folder of the subset is cut from the
    archive's test reviews, without overlap, with their file names (the
    recipes' validation splits rely on the review ids): a review of class
    `label` goes to the first folder of `counts`, in order, that is `label`
    or `unsup` and still wants reviews.
    """
    wanted = dict(counts)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or parts[1] != "test":
                continue
            label = parts[2]
            target = next((k for k in wanted if k[1] in (label, "unsup") and wanted[k] > 0), None)
            if target is None:
                continue
            os.makedirs(os.path.join(folder, "aclImdb", *target), exist_ok=True)
            with open(os.path.join(folder, "aclImdb", *target, parts[3]), "wb") as f:
                f.write(tar.extractfile(member).read())
            wanted[target] -= 1
            if not any(wanted.values()):
                return folder
    raise AssertionError(f"the archive lacks test reviews: {wanted}")
