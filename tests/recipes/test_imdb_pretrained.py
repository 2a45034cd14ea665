"""recipes/imdb_pretrained.py: killed in the language-model stage and resumed, it ends as an
uninterrupted run, and its classifier learns.

The recipe runs on a small folder of real reviews cut from the shared archive (reading the
whole archive takes a minute), on this backend, with TensorFlow unimportable on JAX and PyTorch.
"""

import csv
import json
import os
import tarfile

import pytest

from tests.recipes.kill_resume import check_kill_and_resume

# Reviews per folder of the subset: (split, folder) -> count.
SUBSET = {("train", "neg"): 100, ("train", "pos"): 100, ("train", "unsup"): 160,
          ("test", "neg"): 30, ("test", "pos"): 30}  # fmt: skip
_FOLDER = {}


def imdb_subset(archive, folder):
    """A small `aclImdb/` folder of real reviews with `train/unsup`, for `data_path`.

    The archive stores the test reviews first: reading only those is fast. So
    every folder of the subset is cut from the archive's test reviews, without
    overlap (the unlabelled ones from both classes), with their file names.
    """
    wanted = dict(SUBSET)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or parts[1] != "test":
                continue
            label = parts[2]
            target = next(
                (key for key in (("train", label), ("train", "unsup"), ("test", label))
                 if wanted.get(key, 0) > 0),
                None,
            )  # fmt: skip
            if target is None:
                continue
            os.makedirs(os.path.join(folder, "aclImdb", *target), exist_ok=True)
            with open(os.path.join(folder, "aclImdb", *target, parts[3]), "wb") as f:
                f.write(tar.extractfile(member).read())
            wanted[target] -= 1
            if not any(wanted.values()):
                return folder
    raise AssertionError(f"the archive lacks test reviews: {wanted}")


@pytest.fixture
def small_imdb(shared_data_dir, tmp_path_factory, monkeypatch, tmp_path):
    monkeypatch.setenv("KZOO_DATA_DIR", shared_data_dir)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    if "path" not in _FOLDER:  # once per test session
        folder = str(tmp_path_factory.mktemp("imdb_unsup_subset"))
        _FOLDER["path"] = imdb_subset(os.path.join(shared_data_dir, "aclImdb_v1.tar.gz"), folder)
    return _FOLDER["path"]


TINY = [
    "--quick",
    "--set", "train_reviews=None",
    "--set", "unsup_reviews=None",
    "--set", "test_reviews=None",
    "--set", "vocab=1500",
    "--set", "embedding_dim=16",
    "--set", "num_layers=1",
    "--set", "lm_valid_reviews=20",
    "--set", "lm_batch_size=8",
    "--set", "bptt=20",
    "--set", "num_sampled=64",
    "--set", "lm_steps_per_epoch=5",
    "--set", "lm_epochs=2",
    "--set", "maxlen=64",
    "--set", "bucket_width=64",
    "--set", "clf_batch_size=16",
    "--set", "clf_epochs=3",
    "--set", "clf_learning_rate=0.01",
]  # fmt: skip


def test_imdb_pretrained_resumes_after_a_kill_and_learns(small_imdb, tmp_path):
    argv = [*TINY, "--set", f"data_path={small_imdb}"]
    # Language model: 2 epochs of 5 steps; the kill falls in its 2nd epoch.
    metrics, output = check_kill_and_resume(
        "imdb_pretrained.py", argv, tmp_path, kill_after_batches=7
    )
    assert "Smoke run (--quick)" in output
    assert "tokens/s" in output
    assert metrics["train_reviews"] + metrics["val_reviews"] == 200
    assert metrics["test_reviews"] == 60
    assert metrics["lm_val_perplexity"] < 1500  # below the uniform model's vocabulary size
    with open(tmp_path / "full" / "classifier" / "log.csv", newline="") as f:
        epochs = list(csv.DictReader(f))
    # The classifier learns: its training loss falls and it fits its reviews above chance.
    assert float(epochs[-1]["loss"]) < float(epochs[0]["loss"])
    assert float(epochs[-1]["accuracy"]) > 0.6
    for name in ("imdb_lm.keras", "imdb_ulmfit.keras", "model_card.md", "timings.json"):
        assert (tmp_path / "full" / name).exists()
    # The resumed run's stage times cover the epochs of both processes.
    with open(tmp_path / "resumed" / "timings.json") as f:
        timings = json.load(f)
    assert timings["language_model"]["epochs_trained"] == 2
    assert timings["classifier"]["epochs_trained"] == 3
    assert timings["language_model"]["seconds"] > 0
