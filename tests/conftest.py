import os

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()


@pytest.fixture(autouse=True)
def _seed():
    # No keras.backend.clear_session() here: its garbage collection costs
    # 0.5-2 s per test, and kzoo tests do not depend on layer name counters.
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)


@pytest.fixture
def shared_data_dir():
    """The repo's sibling `shared/data` folder, or a skip naming what is missing."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.environ.get("KZOO_SHARED_DATA", os.path.join(here, "..", "..", "shared", "data"))
    if not os.path.isdir(path):
        pytest.skip(f"shared data folder not found at {path}")
    return os.path.abspath(path)


def pytest_terminal_summary(terminalreporter):
    from tests.harness import LARGEST_DIFFERENCE

    if LARGEST_DIFFERENCE["test"]:
        terminalreporter.write_line(
            f"[{BACKEND}] largest relative difference in assert_close: "
            f"{LARGEST_DIFFERENCE['value']:.3g} ({LARGEST_DIFFERENCE['test'].split(' ')[0]})"
        )
