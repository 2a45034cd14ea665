"""Keras's own recurrent-layer tests, run against kzoo's layers.

`test_keras_spec.py` loads the test modules that ship inside the installed
keras package (`keras/src/layers/rnn/*_test.py`) and swaps the recurrent
layer classes for kzoo's; the helper cells the files define stay Keras's and
every expected number stays as Keras wrote it. Nothing of Keras's test code
is copied into this repository.

The expected numbers belong to one Keras release, so the installed version
must be the one pinned in pyproject.toml (`KERAS_VERSION` in
test_keras_spec.py); another version stops collection with a message that
says what to do.

`EXCLUDED` names the tests that do not describe the behaviour of a layer
but inspect Keras-private attributes; each is skipped with its reason.
"""

import pytest

# "<module stem>::<TestCase>::<test name>" -> why it is not part of the spec.
EXCLUDED = {
    "bidirectional_test::SimpleRNNTest::test_fused_lstm_eligibility": (
        "calls keras.layers.Bidirectional's private `_can_attempt_fused_lstm`; kzoo decides "
        "the fused path in its backend (kzoo.backend.fused_bidirectional_rnn), and the "
        "numeric twin test_fused_lstm_matches_unfused runs"
    ),
    "bidirectional_test::SimpleRNNTest::test_fused_gru_eligibility": (
        "calls keras.layers.Bidirectional's private `_can_attempt_fused_gru`; as above, "
        "test_fused_gru_matches_unfused runs"
    ),
}


def pytest_configure(config):
    # Marks that Keras's own conftest registers; kzoo runs on trainable
    # backends only, so the marks need no skipping logic here.
    config.addinivalue_line("markers", "requires_trainable_backend: Keras test mark")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "keras_spec" not in str(item.path):
            continue
        key = _key(item)
        if key in EXCLUDED:
            item.add_marker(
                pytest.mark.skip(reason=f"excluded from the Keras spec: {EXCLUDED[key]}")
            )


def _key(item):
    # item.nodeid: tests/keras_spec/test_keras_spec.py::lstm_test__LSTMTest::test_x
    _, case, name = item.nodeid.split("::")
    module, _, case = case.partition("__")
    return f"{module}::{case}::{name.split('[')[0]}"
