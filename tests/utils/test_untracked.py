"""kzoo.utils.untracked: caches that Keras tracking, saving and torch never see."""

import copy
import io
import os
import zipfile

import keras
import numpy as np
import pytest

from kzoo.utils.untracked import UntrackedCache, untracked_cache


def weight_paths(path):
    import h5py

    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as raw:
        with h5py.File(io.BytesIO(raw.read()), "r") as store:
            found = []
            store.visititems(
                lambda name, item: found.append(name) if isinstance(item, h5py.Dataset) else None
            )
    return sorted(found)


def torch_parameter_count(model):
    """Parameters torch sees through module registration (None on other backends)."""
    if keras.backend.backend() != "torch":
        return None
    return len(list(model.parameters()))


def small_model():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.Dense(4)(inputs)))


def twin_of(model):
    """A second model sharing the first one's layers, plus its own new weights."""
    extra = keras.layers.Dense(5, name="extra")
    return keras.Model(model.input, extra(model.output))


def test_a_cached_model_stays_out_of_tracking_saving_and_torch(tmp_path):
    model = small_model()
    path = os.path.join(tmp_path, "plain.keras")
    model.save(path)
    expected = (len(model.layers), model.count_params(), len(model.weights), weight_paths(path))
    torch_parameters = torch_parameter_count(model)

    twin = untracked_cache(model, "twins").get("any", lambda: twin_of(model))
    assert twin.count_params() > model.count_params()  # it does have weights of its own
    path = os.path.join(tmp_path, "cached.keras")
    model.save(path)
    got = (len(model.layers), model.count_params(), len(model.weights), weight_paths(path))
    assert got == expected
    assert torch_parameter_count(model) == torch_parameters
    loaded = keras.saving.load_model(path)
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_plain_attribute_would_be_tracked():
    # The failure the helper exists for: the same twin stored as an ordinary
    # attribute joins the model's weights.
    model = small_model()
    before = len(model.weights)
    model.cached_twins = {"any": twin_of(model)}
    assert len(model.weights) > before


def test_get_creates_once_and_only_with_a_factory():
    owner = small_model()
    cache = untracked_cache(owner, "things")
    calls = []
    assert cache.get("a") is None and "a" not in cache
    value = cache.get("a", lambda: calls.append(1) or object())
    assert cache.get("a", lambda: calls.append(1) or object()) is value
    assert calls == [1] and len(cache) == 1
    assert untracked_cache(owner, "things") is cache
    assert untracked_cache(owner, "other") is not cache
    assert cache.pop("a") is value and len(cache) == 0
    cache.put("b", 2)
    cache.clear()
    assert cache.keys() == []


def test_max_size_drops_the_least_recently_used():
    cache = UntrackedCache(max_size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")  # "b" is now the oldest
    cache.put("c", 3)
    assert cache.keys() == ["a", "c"]
    cache.resize(1)
    assert cache.keys() == ["c"]
    owner = small_model()
    untracked_cache(owner, "loops").put("x", 1)
    untracked_cache(owner, "loops").put("y", 2)
    assert untracked_cache(owner, "loops", max_size=1).keys() == ["y"]


def test_copies_start_empty():
    cache = UntrackedCache(max_size=3)
    cache.put("loop", object())
    for duplicate in (copy.deepcopy(cache), copy.copy(cache)):
        assert len(duplicate) == 0 and duplicate.max_size == 3


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: untracked_cache(small_model(), "not a name"), ValueError, "identifier"),
        (lambda: untracked_cache(small_model(), 3), ValueError, "identifier"),
        (lambda: untracked_cache(3, "cache"), TypeError, "__dict__"),
        (lambda: UntrackedCache(max_size=0), ValueError, "max_size"),
        (lambda: UntrackedCache(max_size=True), ValueError, "max_size"),
    ],
)
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
