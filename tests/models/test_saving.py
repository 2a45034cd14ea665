"""kzoo.models.saving: compact .keras files (no optimizer, optional float16)."""

import io
import zipfile

import keras
import numpy as np
import pytest

from kzoo.models import MaskedSequenceLoss, Seq2Seq
from kzoo.models.saving import save_compact

SOURCE = np.array([[4, 5, 6, 7], [9, 3, 0, 0]], "int32")
DECODER_IN = np.array([[1, 3, 4, 5], [1, 6, 0, 0]], "int32")


def _stored_arrays(path):
    import h5py

    arrays = {}
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as raw:
        with h5py.File(io.BytesIO(raw.read()), "r") as store:
            store.visititems(
                lambda name, item: (
                    arrays.__setitem__(name, item[()]) if hasattr(item, "dtype") else None
                )
            )
    return arrays


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = Seq2Seq(12, 10, embedding_dim=4, units=6, seed=0)
    model.build()
    model.compile("adam", loss=MaskedSequenceLoss())
    model.optimizer.build(model.trainable_variables)  # the Adam slots a fit would create
    return model


def _outputs(model):
    return keras.ops.convert_to_numpy(model((SOURCE, DECODER_IN)))


def test_float32_copy_is_exact_and_has_no_optimizer(trained, tmp_path):
    full, compact = str(tmp_path / "full.keras"), str(tmp_path / "compact.keras")
    trained.save(full)
    assert save_compact(trained, compact, "float32") == "float32"
    names = set(_stored_arrays(compact))
    assert not any("optimizer" in name for name in names)
    assert any("optimizer" in name for name in _stored_arrays(full))
    loaded = keras.saving.load_model(compact)
    np.testing.assert_array_equal(_outputs(loaded), _outputs(trained))


def test_auto_stores_float16_above_the_size_limit(trained, tmp_path):
    path = str(tmp_path / "half.keras")
    assert save_compact(trained, path, max_megabytes=1e-4) == "float16"
    floats = {a.dtype.name for a in _stored_arrays(path).values() if a.dtype.kind == "f"}
    assert floats == {"float16"}
    loaded = keras.saving.load_model(path)
    for original, restored in zip(trained.trainable_weights, loaded.trainable_weights):
        assert restored.dtype == "float32"
        expected = keras.ops.convert_to_numpy(original).astype("float16").astype("float32")
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored), expected)
    np.testing.assert_allclose(_outputs(loaded), _outputs(trained), atol=5e-3)
    assert save_compact(trained, str(tmp_path / "small.keras"), max_megabytes=100) == "float32"


def test_bad_dtype_is_rejected(trained, tmp_path):
    with pytest.raises(ValueError, match="weights_dtype"):
        save_compact(trained, str(tmp_path / "x.keras"), "int8")
