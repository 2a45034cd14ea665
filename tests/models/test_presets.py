"""Presets: the registry, where files resolve from, hash checks, and every preset's raw output.

`test_preset_gives_recorded_outputs` loads each preset by name on the current
backend and runs its task on raw inputs; the results are compared with
`preset_outputs.json`, one file for all backends (so TensorFlow, JAX and
PyTorch runs all compare to the same numbers and strings). Record it with

    KERAS_BACKEND=jax python tests/models/test_presets.py --record [NAME ...]
"""

import json
import os
import shutil
import sys

import keras
import numpy as np
import pytest

import kzoo.models
from kzoo.models import presets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == "__main__":
    sys.path.insert(0, ROOT)
EXPECTED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "preset_outputs.json")
SMALL = "forecast_temperatures"  # the smallest preset file (70 kB)


@pytest.fixture(autouse=True)
def no_base_url(monkeypatch):
    monkeypatch.delenv(presets.BASE_URL_VARIABLE, raising=False)


# --- the registry ---------------------------------------------------------------------


def test_every_preset_is_complete_and_resolves_offline_with_its_hash(tmp_path):
    names = kzoo.models.list_presets()
    assert names == sorted(presets.PRESETS) and len(names) == 12
    for name in names:
        preset = kzoo.models.get_preset(name)
        task_class = getattr(kzoo.models, preset.task_class)
        assert isinstance(task_class, type) and preset.metrics, name
        assert os.path.isfile(os.path.join(presets.SAVED_MODELS, preset.card)), name
        # No cache, no URL: the repository's copy, whose hash matches.
        path = presets.preset_path(name, cache_dir=tmp_path)
        assert path == os.path.join(presets.SAVED_MODELS, preset.file)
        assert presets.file_sha256(path) == preset.sha256, (
            f"{name}: stale sha256; run `python tools/update_presets.py`"
        )
    assert os.listdir(tmp_path) == []  # nothing cached or downloaded
    assert kzoo.models.list_presets(kzoo.models.Forecaster) == [
        "forecast_airline", "forecast_sine", "forecast_temperatures"
    ]  # fmt: skip


def test_unknown_names_list_the_known_ones():
    with pytest.raises(
        ValueError, match=r"Unknown preset 'imdb_bigrus'. Known presets: .*imdb_bigru, "
    ):
        kzoo.models.load("imdb_bigrus")
    with pytest.raises(ValueError, match="forecast_sine"):
        kzoo.models.from_preset("sine")
    with pytest.raises(FileNotFoundError, match="No saved model"):
        kzoo.models.load("no/such/model.keras")  # a path, not a preset name


def test_a_wrong_hash_is_refused(tmp_path):
    preset = kzoo.models.get_preset(SMALL)
    local = tmp_path / "saved_models"
    local.mkdir()
    data = bytearray(open(os.path.join(presets.SAVED_MODELS, preset.file), "rb").read())
    data[-100] ^= 1  # one bit
    (local / preset.file).write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"fails its sha256 check.*tools/update_presets.py"):
        presets.preset_path(SMALL, cache_dir=tmp_path / "cache", local_dir=local)


def test_cache_then_download_from_the_base_url(tmp_path, monkeypatch):
    preset = kzoo.models.get_preset(SMALL)
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(os.path.join(presets.SAVED_MODELS, preset.file), served)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=presets.BASE_URL_VARIABLE):
        presets.preset_path(SMALL, cache_dir=cache, local_dir=None)
    monkeypatch.setenv(presets.BASE_URL_VARIABLE, served.as_uri())
    path = presets.preset_path(SMALL, cache_dir=cache, local_dir=None)
    assert path == str(cache / presets.CACHE_SUBDIR / preset.file)
    assert presets.file_sha256(path) == preset.sha256
    (served / preset.file).unlink()  # now only the cache has it
    assert presets.preset_path(SMALL, cache_dir=cache, local_dir=None) == path
    model = kzoo.models.load(SMALL, cache_dir=cache, compile=False)
    assert isinstance(model, kzoo.models.Forecaster)
    # A served file with another hash is refused and not left in the cache.
    os.remove(path)
    (served / preset.file).write_bytes(b"not the model")
    with pytest.raises(ValueError, match="download of preset .* fails its sha256 check"):
        presets.preset_path(SMALL, cache_dir=cache, local_dir=None)
    assert not os.path.exists(path)


def test_task_from_preset_checks_the_class():
    model = kzoo.models.Forecaster.from_preset(SMALL)
    assert model.task == "forecast" and model.compiled  # compiled with the task's defaults
    with pytest.raises(TypeError, match=r"'forecast_sine' is a Forecaster, not a SequenceTagger"):
        kzoo.models.SequenceTagger.from_preset("forecast_sine")


def test_update_presets_finds_stale_hashes(tmp_path):
    sys.path.insert(0, ROOT)
    try:
        from tools import update_presets
    finally:
        sys.path.remove(ROOT)
    with open(update_presets.REGISTRY, encoding="utf-8") as f:
        source = f.read()
    assert update_presets.refreshed(source, presets.SAVED_MODELS) == (source, [])
    stale = source.replace(kzoo.models.get_preset(SMALL).sha256, "0" * 64)
    registry = tmp_path / "presets.py"
    registry.write_text(stale, encoding="utf-8")
    assert update_presets.main(["--check", "--registry", str(registry)]) == 1
    assert registry.read_text(encoding="utf-8") == stale
    assert update_presets.main(["--registry", str(registry)]) == 0
    assert registry.read_text(encoding="utf-8") == source
    assert [n for n in os.listdir(tmp_path) if n != "presets.py"] == []  # atomic: no leftovers


# --- raw outputs of every preset ---------------------------------------------------------

TEXTS = ["A wonderful, moving film.", "Dull and far too long."]
SENTENCES = ["EU rejects German call to boycott British lamb .", "Peter Blackburn lives in Paris"]
SOURCES = ["Tom está en la cocina.", "¿Dónde está la estación?"]
PROMPTS = {
    "char_lm_tinyshakespeare": ("ROMEO:", 60),
    "word_lm_ptb_small": ("the company said", 12),
    "word_lm_ptb_awd_small": ("the company said", 12),
    "imdb_lm": ("this movie was", 12),
}


def _series(name):
    """Deterministic raw inputs of each forecaster (values and, where used, dates)."""
    if name == "forecast_airline":
        t = np.arange(36)
        values = 300 + 3 * t + 60 * np.sin(2 * np.pi * t / 12)
        return values, np.arange("1957-01", "1960-01", dtype="datetime64[M]").astype(str)
    if name == "forecast_temperatures":
        t = np.arange(60)
        values = 11 + 4 * np.sin(2 * np.pi * t / 365) + np.cos(t)
        return values, np.arange("1990-06-01", "1990-07-31", dtype="datetime64[D]").astype(str)
    return np.sin(2 * np.pi * np.arange(60) / 50), None


def raw_outputs(name):
    """What the preset's task API returns for fixed raw inputs (JSON-ready)."""
    # Through the registry's task class: `from_preset` checks the loaded class.
    task_class = getattr(kzoo.models, kzoo.models.get_preset(name).task_class)
    model = task_class.from_preset(name, compile=False)
    if model.task == "classify":
        return {"probabilities": np.asarray(model.predict(TEXTS)).tolist()}
    if model.task == "tag":
        return {"tags": [[tag for _, tag in pairs] for pairs in model.tag(SENTENCES)]}
    if model.task == "translate":
        return {"greedy": model.translate(SOURCES)}
    if model.task == "generate":
        prompt, length = PROMPTS[name]
        return {"greedy": model.generate(prompt, max_length=length, sampler="greedy")}
    values, dates = _series(name)
    return {"forecast": np.asarray(model.forecast(values, dates=dates)).tolist()}


def _recorded():
    if not os.path.exists(EXPECTED):
        return {}
    with open(EXPECTED, encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_preset_gives_recorded_outputs(name):
    recorded = _recorded()
    assert name in recorded, (
        f"tests/models/preset_outputs.json has no recorded outputs for {name!r}; record them "
        f"with: KERAS_BACKEND=jax python tests/models/test_presets.py --record {name}"
    )
    expected = recorded[name]
    got = raw_outputs(name)
    assert set(got) == set(expected)
    for key, value in expected.items():
        if key in ("probabilities", "forecast"):
            # (n,) or (n, 1) for a binary classifier: the numbers are compared
            np.testing.assert_allclose(
                np.ravel(got[key]), np.ravel(value), rtol=1e-4, atol=1e-5, err_msg=name
            )
        else:
            assert got[key] == value, name


if __name__ == "__main__" and sys.argv[1:2] == ["--record"]:
    record = _recorded()
    for name in sys.argv[2:] or sorted(presets.PRESETS):
        record[name] = raw_outputs(name)
        print(name, json.dumps(record[name], ensure_ascii=False)[:200], flush=True)
    record["backend"] = keras.backend.backend()
    from kzoo.utils import write_text

    write_text(EXPECTED, json.dumps(record, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
