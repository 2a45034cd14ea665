"""torch.nn.RNN/LSTM/GRU <-> kzoo layers: equal outputs, exact round trips, clear refusals."""

import keras
import numpy as np
import pytest

import kzoo
import kzoo.convert
from tests.harness import assert_close

torch = pytest.importorskip("torch", reason="torch is not installed")

BATCH, TIME, FEATURES, HIDDEN = 3, 7, 5, 6
MODULES = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}
CONFIGS = [
    # num_layers, bidirectional, batch_first, bias
    (1, False, True, True),
    (1, True, False, True),
    (2, True, True, True),
    (3, False, False, False),
]


def make_module(kind, num_layers, bidirectional, batch_first, bias, seed=0, **kwargs):
    torch.manual_seed(seed)
    module = MODULES[kind](
        FEATURES,
        HIDDEN,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        bias=bias,
        **kwargs,
    )
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.6, 0.6)
    return module.eval()


def torch_output(module, x):
    """float64 torch output for batch-major `x`, as a batch-major array."""
    module = module.double()
    batch_first = module.batch_first
    inputs = torch.from_numpy(np.asarray(x, np.float64))
    with torch.no_grad():
        output = module(inputs if batch_first else inputs.transpose(0, 1))[0]
    output = output if batch_first else output.transpose(0, 1)
    module.float()
    return output.numpy()


def inputs(seed=1):
    return np.random.default_rng(seed).normal(size=(BATCH, TIME, FEATURES)).astype("float32")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "L{}-bi{}-bf{}-bias{}".format(*c))
@pytest.mark.parametrize("kind", sorted(MODULES))
def test_from_torch_module_matches_torch(kind, config):
    module = make_module(kind, *config)
    layer = kzoo.convert.from_torch(module)
    num_layers, bidirectional = config[:2]
    expected_type = (
        kzoo.layers.StackedRNN
        if num_layers > 1
        else kzoo.layers.Bidirectional
        if bidirectional
        else {"lstm": kzoo.layers.LSTM, "gru": kzoo.layers.GRU, "rnn": kzoo.layers.SimpleRNN}[kind]
    )
    assert type(layer) is expected_type
    x = inputs()
    assert_close(layer(x), torch_output(module, x))


def test_relu_rnn_and_state_dict_with_prefix():
    module = make_module("rnn", 2, True, True, True, nonlinearity="relu")
    state = {f"encoder.rnn.{k}": v for k, v in module.state_dict().items()}
    state["encoder.embedding.weight"] = torch.zeros(4, 4)  # another module's key: ignored
    layer = kzoo.convert.from_torch(state, prefix="encoder.rnn.", nonlinearity="relu")
    x = inputs(2)
    assert_close(layer(x), torch_output(module, x))
    assert_close(kzoo.convert.from_torch(module)(x), torch_output(module, x))


def test_state_dict_of_numpy_arrays():
    module = make_module("gru", 1, False, True, True)
    state = {k: v.numpy() for k, v in module.state_dict().items()}
    x = inputs(3)
    assert_close(kzoo.convert.from_torch(state)(x), torch_output(module, x))


@pytest.mark.parametrize("kind", sorted(MODULES))
@pytest.mark.parametrize("config", [(1, False, True, True), (2, True, False, True)])
def test_round_trips(kind, config):
    module = make_module(kind, *config)
    layer = kzoo.convert.from_torch(module)
    back = kzoo.convert.to_torch(layer, batch_first=module.batch_first)
    assert type(back) is type(module)
    for attribute in (
        "input_size",
        "hidden_size",
        "num_layers",
        "bidirectional",
        "batch_first",
        "bias",
    ):
        assert getattr(back, attribute) == getattr(module, attribute)
    original, returned = module.state_dict(), back.state_dict()
    assert sorted(original) == sorted(returned)
    for key in original:
        if key.startswith("weight") or kind == "gru":
            # Weights, and both GRU bias rows, come back bit for bit.
            assert torch.equal(original[key], returned[key]), key
    if kind != "gru" and module.bias:
        # LSTM/RNN keep one bias, bias_ih + bias_hh, returned as bias_ih (bias_hh = 0).
        for key in (k for k in original if k.startswith("bias_ih")):
            other = key.replace("bias_ih", "bias_hh")
            total = (original[key].double() + original[other].double()).float()
            assert torch.equal(returned[key], total) and not returned[other].any()
    x = inputs(4)
    assert_close(torch_output(back, x), torch_output(module, x), tol=1e-6)
    # kzoo -> torch -> kzoo is exact: every weight comes back bit for bit.
    again = kzoo.convert.from_torch(back)
    for a, b in zip(layer.weights, again.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_linear_and_embedding():
    torch.manual_seed(5)
    linear, embedding = torch.nn.Linear(6, 3), torch.nn.Embedding(20, 4, padding_idx=0)
    dense = kzoo.convert.from_torch(linear)
    x = np.random.default_rng(5).normal(size=(4, 6)).astype("float32")
    with torch.no_grad():
        assert_close(dense(x), linear.double()(torch.from_numpy(x.astype(np.float64))).numpy())
    table = kzoo.convert.from_torch(embedding, mask_zero=True)
    ids = np.array([[1, 5, 0]], np.int32)
    assert_close(table(ids), embedding.weight.detach().numpy()[ids])
    assert table.mask_zero


def test_projection_is_refused():
    module = torch.nn.LSTM(FEATURES, HIDDEN, proj_size=3)
    with pytest.raises(ValueError, match="proj_size"):
        kzoo.convert.from_torch(module)
    with pytest.raises(ValueError, match="weight_hr"):
        kzoo.convert.from_torch(module.state_dict())


def _state(kind="lstm", **kwargs):
    return dict(make_module(kind, 1, False, True, True, **kwargs).state_dict())


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda s: s.update(weight_xx_l0=s["weight_ih_l0"]), "Unknown keys"),
        (lambda s: s.update(bias_ih_l0=s["bias_ih_l0"][:-1]), r"bias_ih_l0 has shape \(23,\)"),
        (lambda s: s.update(weight_ih_l0=s["weight_ih_l0"].T), "weight_ih_l0 has shape"),
        (lambda s: s.pop("weight_hh_l0"), "weight_hh_l0 is missing"),
        (lambda s: s.pop("bias_hh_l0"), "lacks bias_hh_l0"),
        (lambda s: s.update(weight_hh_l1=s["weight_hh_l0"]), "lacks weight_ih_l1"),
        (lambda s: s.update(weight_hh_l0=torch.zeros(12, 6)), "2 gate blocks"),
        (lambda s: s.clear(), "No recurrent parameters"),
    ],
)
def test_bad_state_dicts(edit, message):
    state = _state()
    edit(state)
    with pytest.raises(ValueError, match=message):
        kzoo.convert.from_torch(state)


def test_unsupported_inputs_are_refused():
    with pytest.raises(ValueError, match="nn.RNN/LSTM/GRU, nn.Linear and nn.Embedding"):
        kzoo.convert.from_torch(torch.nn.Conv1d(2, 2, 3))
    with pytest.raises(ValueError, match="state_dict mapping"):
        kzoo.convert.from_torch([1, 2, 3])
    with pytest.raises(ValueError, match="nonlinearity"):
        kzoo.convert.from_torch(_state("rnn"), nonlinearity="gelu")


@pytest.mark.parametrize(
    "factory,message",
    [
        (lambda: kzoo.layers.LSTM(4, layer_norm=True), "layer_norm"),
        (lambda: kzoo.layers.GRU(4, reset_after=False), "reset_after=False"),
        (lambda: kzoo.layers.LSTM(4, go_backwards=True), "go_backwards=True"),
        (lambda: kzoo.layers.SimpleRNN(4, activation="sigmoid"), "nonlinearity"),
        (lambda: kzoo.layers.LSTM(4, activation="relu"), "tanh/sigmoid"),
        (lambda: kzoo.layers.Bidirectional(kzoo.layers.GRU(4), merge_mode="sum"), "concat"),
        (lambda: keras.layers.Dense(4), "to_torch converts"),
    ],
)
def test_to_torch_refuses_what_torch_cannot_compute(factory, message):
    layer = factory()
    layer.build((None, None, 3))
    with pytest.raises(ValueError, match=message):
        kzoo.convert.to_torch(layer)


def test_to_torch_refuses_unbuilt_layers():
    with pytest.raises(ValueError, match="not built"):
        kzoo.convert.to_torch(kzoo.layers.LSTM(4))


def test_keras_builtin_layer_to_torch():
    layer = keras.layers.Bidirectional(keras.layers.LSTM(HIDDEN, return_sequences=True))
    x = inputs(6)
    expected = keras.ops.convert_to_numpy(layer(x))
    module = kzoo.convert.to_torch(layer)
    assert module.bidirectional and module.hidden_size == HIDDEN
    assert_close(torch_output(module, x), expected)
