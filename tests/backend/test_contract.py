"""The contract between layers and `kzoo.backend`, and the cuDNN dispatch rule.

The backend receives `CellSpec`s and tensors: it imports no layer, and
behaviour changes through context managers on one stack (`reference_only`,
`lowering`), never by reassigning functions. Which kernel runs on which
device is a pure function, tested here for every device type without a GPU.
"""

import ast
import dataclasses
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kzoo
from kzoo import backend
from kzoo.backend import spec as spec_module
from kzoo.backend.spec import CellSpec, kernel_choice

ROOT = pathlib.Path(__file__).resolve().parents[2]
BACKEND_DIR = ROOT / "kzoo" / "backend"
BACKEND = keras.backend.backend()


def _imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_backend_sources_import_no_kzoo_module_outside_the_backend():
    files = sorted(BACKEND_DIR.glob("*.py"))
    assert len(files) >= 5
    for path in files:
        for name in _imported_modules(path):
            if name == "kzoo" or name.startswith("kzoo."):
                assert name.startswith("kzoo.backend"), f"{path.name} imports {name}"


def test_importing_the_backend_loads_no_layer_module():
    """At run time too: `kzoo.backend` alone (without `kzoo/__init__`, which
    imports everything) leaves `kzoo.layers` unloaded."""
    script = textwrap.dedent(
        f"""
        import sys, types
        package = types.ModuleType("kzoo")
        package.__path__ = [{str(ROOT / "kzoo")!r}]
        sys.modules["kzoo"] = package
        import kzoo.backend
        for name in ("rnn", "fused_rnn", "fused_bidirectional_rnn", "lowering"):
            getattr(kzoo.backend, name)
        loaded = sorted(m for m in sys.modules if m.startswith("kzoo.") and
                        not m.startswith("kzoo.backend"))
        print("LOADED", loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**_env(), "KERAS_BACKEND": BACKEND},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "LOADED []" in result.stdout, result.stdout


def _env():
    import os

    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


# -- the context stack --------------------------------------------------------


def test_lowering_replaces_functions_within_its_context_only():
    calls = []

    def fake_rnn(step_fn, inputs, initial_states, initial_output, mask=None, **kwargs):
        calls.append(kwargs.get("key"))
        raise NotImplementedError  # hands the call to the reference

    x = np.ones((2, 3, 4), "float32")
    layer = kzoo.layers.RNN(_UserCell(5))
    expected = keras.ops.convert_to_numpy(layer(x))
    functions = backend.rnn, backend.fused_rnn
    with backend.lowering(rnn=fake_rnn):
        inside = keras.ops.convert_to_numpy(layer(x))
        with backend.reference_only():  # the topmost entry wins
            layer(x)
    assert (backend.rnn, backend.fused_rnn) == functions  # nothing reassigned
    assert calls == [id(layer)]  # the layer identified itself by its key
    np.testing.assert_allclose(inside, expected, atol=1e-6)
    layer(x)
    assert calls == [id(layer)]


def test_contexts_unwind_on_errors_and_refuse_unknown_names():
    depth = len(backend._stack)
    with pytest.raises(RuntimeError):
        with backend.lowering(fused_rnn=None):
            raise RuntimeError("boom")
    assert len(backend._stack) == depth
    with pytest.raises(TypeError, match="unknown function names"):
        backend.lowering(fused_lstm=print)


class _UserCell(keras.layers.Layer):
    """A cell with no spec: the generic loop runs it."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units))

    def call(self, inputs, states):
        h = keras.ops.tanh(keras.ops.matmul(inputs, self.kernel) + states[0])
        return h, [h]


# -- the spec -----------------------------------------------------------------


def _spec(kind="lstm", units=3, features=2, bias=True, **changes):
    gates = spec_module.GATES.get(kind, 4)
    bias_shape = (2, gates * units) if kind == "gru" else (gates * units,)
    values = dict(
        kind=kind,
        units=units,
        kernel=keras.ops.zeros((features, gates * units)),
        recurrent_kernel=keras.ops.zeros((units, gates * units)),
        bias=keras.ops.zeros(bias_shape) if bias else None,
    )
    values.update(changes)
    return CellSpec(**values)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"kind": "peephole"}, "`kind` must be one of"),
        ({"activation": "relu"}, "takes activation in"),
        ({"use_cudnn": "yes"}, "`use_cudnn` must be"),
        ({"units": 0}, "`units` must be a positive int"),
    ],
)
def test_spec_refuses_bad_fields(changes, message):
    with pytest.raises(ValueError, match=message):
        _spec(**changes)


def test_kzoo_cells_describe_themselves():
    x = np.ones((2, 3, 4), "float32")
    for layer, kind in (
        (kzoo.layers.LSTM(5), "lstm"),
        (kzoo.layers.GRU(5), "gru"),
        (kzoo.layers.GRU(5, reset_after=False), "gru_v1"),
        (kzoo.layers.SimpleRNN(5, activation="relu"), "simple"),
    ):
        layer.build(x.shape)
        spec = layer.cell.fused_spec(use_cudnn=False)
        assert (spec.kind, spec.units, spec.use_cudnn) == (kind, 5, False)
        assert not isinstance(spec.kernel, keras.Variable)  # tensors, not variables
        assert spec.input_mask is None


@pytest.mark.parametrize("use_cudnn", ["auto", True, False])
@pytest.mark.parametrize("device", ["cpu", "gpu", "tpu"])
@pytest.mark.parametrize("compatible", [True, False])
def test_kernel_choice_by_device_type(use_cudnn, device, compatible):
    """Keras's meaning of `use_cudnn`: "auto" takes cuDNN where it can, True
    insists (ValueError otherwise), False never takes it."""
    can = device == "gpu" and compatible
    if use_cudnn is True and not can:
        with pytest.raises(ValueError, match="use_cudnn=True was specified"):
            kernel_choice(use_cudnn, device, compatible)
        return
    expected = "cudnn" if can and use_cudnn is not False else "fused"
    assert kernel_choice(use_cudnn, device, compatible) == expected


def test_cudnn_compatibility_follows_keras():
    assert spec_module.cudnn_compatible(_spec("lstm"))
    assert spec_module.cudnn_compatible(_spec("gru"))
    assert not spec_module.cudnn_compatible(_spec("gru_v1"))  # reset_after=False
    assert not spec_module.cudnn_compatible(_spec("lstm", bias=False))
    assert spec_module.cudnn_compatible(_spec("lstm", bias=False), allow_no_bias=True)
    assert not spec_module.cudnn_compatible(_spec("simple"))
    assert not spec_module.cudnn_compatible(_spec("lstm", state_mask=keras.ops.ones((1, 3))))


def test_use_cudnn_true_without_a_gpu_raises_like_keras():
    if getattr(backend._native, "fused_rnn", None) is None:
        pytest.skip(f"the {BACKEND} backend has no native fused_rnn")
    spec = _spec("lstm", units=3, features=2, use_cudnn=True)
    x = keras.ops.ones((1, 4, 2))
    states = [keras.ops.zeros((1, 3))] * 2
    with pytest.raises(ValueError, match="use_cudnn=True was specified"):
        backend.fused_rnn(spec, x, states)
    with backend.reference_only():  # the reference never runs cuDNN: it declines
        with pytest.raises(NotImplementedError):
            backend.fused_rnn(spec, x, states)
    # "auto" and False run the CPU kernels.
    for choice in ("auto", False):
        last, outputs, finals = backend.fused_rnn(
            dataclasses.replace(spec, use_cudnn=choice), x, states
        )
        assert tuple(outputs.shape) == (1, 4, 3)


def test_tensorflow_device_type_reads_the_placement():
    if BACKEND != "tensorflow":
        pytest.skip("TensorFlow's placement strings")
    from kzoo.backend import tensorflow as tf_backend

    class Placed:
        def __init__(self, device):
            self.device = device

    assert tf_backend.device_type(Placed("/job:localhost/replica:0/task:0/device:GPU:0")) == "gpu"
    assert tf_backend.device_type(Placed("/job:localhost/replica:0/task:0/device:CPU:0")) == "cpu"
    assert tf_backend.device_type(keras.ops.ones((1,))) == "cpu"  # this machine has no GPU


def test_tensorflow_xla_graphs_take_no_cudnn():
    """cuDNN's op does not compile with XLA (`jit_compile=True`): there the
    backend counts cuDNN as incompatible and runs its own loops."""
    if BACKEND != "tensorflow":
        pytest.skip("TensorFlow's XLA contexts")
    import tensorflow as tf

    from kzoo.backend import tensorflow as tf_backend

    seen = {}

    def probe(x, name):
        seen[name] = tf_backend._in_xla_context()
        return x

    tf.function(lambda x: probe(x, "xla"), jit_compile=True)(tf.ones(1))
    tf.function(lambda x: probe(x, "graph"))(tf.ones(1))
    assert seen == {"xla": True, "graph": False}
    assert not tf_backend._in_xla_context()


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_tensorflow_cudnn_params_have_keras_layout(kind):
    """The flat CudnnRNNV3 parameters are those Keras's TF backend builds."""
    if BACKEND != "tensorflow":
        pytest.skip("TensorFlow's cuDNN op")
    import importlib

    import tensorflow as tf

    from kzoo.backend import tensorflow as tf_backend

    keras_tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")

    rng = np.random.default_rng(0)
    layer = kzoo.layers.LSTM(3) if kind == "lstm" else kzoo.layers.GRU(3)
    layer.build((2, 5, 4))
    for w in layer.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32"))
    spec = layer.cell.fused_spec()
    gates = spec.gates
    weights = tf.split(spec.kernel, gates, axis=1) + tf.split(spec.recurrent_kernel, gates, axis=1)
    if kind == "lstm":
        biases = tf.split(tf.concat([tf.zeros_like(spec.bias), spec.bias], 0), 8)
    else:
        biases = tf.split(tf.reshape(spec.bias, [-1]), 6)
        if tf.sysconfig.get_build_info()["is_cuda_build"]:
            weights[0], weights[1] = weights[1], weights[0]
            weights[3], weights[4] = weights[4], weights[3]
            biases[0], biases[1] = biases[1], biases[0]
            biases[3], biases[4] = biases[4], biases[3]
    expected = keras_tf_rnn._standardize_cudnn_weights(
        weights, biases, tf.constant([-1]), transpose_weights=True
    )
    np.testing.assert_array_equal(tf_backend.cudnn_params(spec).numpy(), expected.numpy())


def _emulated_cudnn_rnn(input, input_h, input_c, params, rnn_mode, sequence_lengths, **kwargs):
    """`CudnnRNNV3` (batch-major, one layer) in TensorFlow ops on the CPU, from
    cuDNN's documented parameter layout: per-gate input matrices `(h, d)`,
    recurrent matrices `(h, h)`, then input and recurrent biases; LSTM gates
    i, f, g, o; GRU gates r, z, n with the reset gate after the recurrent
    product. Outputs past a row's length are zeros; the final states are
    those at its last valid step."""
    import tensorflow as tf

    gates = 4 if rnn_mode == "lstm" else 3
    batch, steps, features = input.shape
    units = input_h.shape[-1]
    sizes = [units * features] * gates + [units * units] * gates + [units] * (2 * gates)
    pieces = tf.split(params, sizes)
    w = [tf.reshape(p, (units, features)) for p in pieces[:gates]]
    r = [tf.reshape(p, (units, units)) for p in pieces[gates : 2 * gates]]
    bw, br = pieces[2 * gates : 3 * gates], pieces[3 * gates :]
    h, c = input_h[:, 0], (input_c[:, 0] if rnn_mode == "lstm" else None)
    outputs = []
    for t in range(steps):
        x = input[:, t]
        xs = [tf.matmul(x, w[k], transpose_b=True) + bw[k] for k in range(gates)]
        hs = [tf.matmul(h, r[k], transpose_b=True) + br[k] for k in range(gates)]
        if rnn_mode == "lstm":
            i, f, g, o = (xs[k] + hs[k] for k in range(4))
            c_new = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h_new = tf.sigmoid(o) * tf.tanh(c_new)
        else:
            reset = tf.sigmoid(xs[0] + hs[0])
            update = tf.sigmoid(xs[1] + hs[1])
            n = tf.tanh(xs[2] + reset * hs[2])
            h_new, c_new = (1 - update) * n + update * h, None
        valid = (t < sequence_lengths)[:, None]
        h = tf.where(valid, h_new, h)
        c = tf.where(valid, c_new, c) if c is not None else None
        outputs.append(tf.where(valid, h_new, tf.zeros_like(h_new)))
    c_out = c[:, None] if c is not None else tf.zeros_like(input_h)
    return tf.stack(outputs, 1), h[:, None], c_out, None, None


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("mask_name", ["none", "right"])
def test_tensorflow_cudnn_path_matches_the_loops(kind, go_backwards, mask_name):
    """The cuDNN path's weight packing and its Keras masking semantics (the
    last valid output repeated, zeros first going backwards, empty rows),
    with the op emulated on the CPU, give the fused loops' numbers."""
    if BACKEND != "tensorflow":
        pytest.skip("TensorFlow's cuDNN op")
    import tensorflow as tf

    from kzoo.backend import tensorflow as tf_backend

    if kind == "gru" and not tf.sysconfig.get_build_info()["is_cuda_build"]:
        pytest.skip("GRU gate order of a CUDA build")
    rng = np.random.default_rng(2)
    layer = kzoo.layers.LSTM(3) if kind == "lstm" else kzoo.layers.GRU(3)
    layer.build((4, 6, 2))
    for w in layer.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32"))
    spec = layer.cell.fused_spec()
    x = tf.constant(rng.standard_normal((4, 6, 2)).astype("float32"))
    states = [
        tf.constant(rng.standard_normal((4, 3)).astype("float32")) for _ in range(spec.num_states)
    ]
    mask = None
    if mask_name == "right":
        mask = tf.constant(np.arange(6)[None, :] < np.array([[6], [3], [1], [0]]))
    cudnn = tf_backend._run_cudnn(spec, x, states, mask, go_backwards, op=_emulated_cudnn_rnn)
    loops = tf_backend._run_plain(spec, x, states, mask, go_backwards, training=False)
    for a, b in zip(keras.tree.flatten(cudnn), keras.tree.flatten(loops)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_jax_cudnn_lstm_weights_match_the_scan(go_backwards):
    """The cuDNN LSTM path, run here with JAX's CPU reference of the cuDNN
    kernel (`jax.experimental.rnn.lstm_ref`), gives the fused scan's numbers."""
    if BACKEND != "jax":
        pytest.skip("JAX's cuDNN LSTM")
    import jax.numpy as jnp
    from jax.experimental import rnn as jax_rnn

    from kzoo.backend import jax as jax_backend

    def cpu_lstm(x, h0, c0, weights, seq_lengths, input_size, hidden_size, **kwargs):
        w_ih, w_hh, b_ih, b_hh = jax_rnn.unpack_lstm_weights(
            weights, input_size, hidden_size, 1, False
        )
        return jax_rnn.lstm_ref(
            x, h0, c0, w_ih, w_hh, b_ih, b_hh, seq_lengths, input_size, hidden_size, **kwargs
        )

    rng = np.random.default_rng(1)
    layer = kzoo.layers.LSTM(3)
    layer.build((2, 5, 4))
    for w in layer.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32"))
    spec = layer.cell.fused_spec()
    x = jnp.asarray(rng.standard_normal((2, 5, 4)).astype("float32"))
    states = [jnp.asarray(rng.standard_normal((2, 3)).astype("float32")) for _ in range(2)]
    cudnn = jax_backend.run_cudnn_lstm(spec, x, states, go_backwards, lstm=cpu_lstm)
    scan = jax_backend._run_plain(spec, x, states, None, go_backwards)
    for a, b in zip(keras.tree.flatten(cudnn), keras.tree.flatten(scan)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_torch_runs_aten_without_cudnn_toggle_on_cpu():
    if BACKEND != "torch":
        pytest.skip("torch's cuDNN switch")
    import contextlib

    import torch

    from kzoo.backend import torch as torch_backend

    x = torch.ones(1, 2, 2)
    assert isinstance(torch_backend._cudnn_context("fused", x), contextlib.nullcontext)

    class OnCuda:  # what the context sees of a CUDA tensor
        is_cuda = True

    assert torch_backend.device_type(OnCuda()) == "gpu"
    assert isinstance(torch_backend._cudnn_context("cudnn", OnCuda()), contextlib.nullcontext)
    enabled = torch.backends.cudnn.enabled
    with torch_backend._cudnn_context("fused", OnCuda()):  # use_cudnn=False on a GPU
        assert torch.backends.cudnn.enabled is False
    assert torch.backends.cudnn.enabled == enabled
    assert torch_backend._choose(_spec("lstm", features=2), x, mask_fits=True) == "fused"
    with pytest.raises(NotImplementedError):  # ATen's GRU resets after the product
        torch_backend._choose(_spec("gru_v1", features=2), x, mask_fits=True)


# -- export ---------------------------------------------------------------------


def test_export_lowering_patches_nothing():
    """`kzoo.export` lowers through a `kzoo.backend.lowering` context: no
    backend function is reassigned and no layer gets an instance `call`."""
    if BACKEND != "tensorflow":
        pytest.skip("the export graphs are built in a TensorFlow process")
    import tensorflow as tf

    from kzoo.export import _tf_graph

    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, 4)(ids)
    x = kzoo.layers.LSTM(3, return_sequences=True)(x)
    model = keras.Model(ids, kzoo.layers.GRU(2)(x))
    layers = _tf_graph.recurrent_layers(model)
    functions = {n: getattr(backend, n) for n in ("rnn", "fused_rnn", "fused_bidirectional_rnn")}
    seen = {}

    def serve(ids):
        with _tf_graph.lowered(model, "fused"):
            seen["functions"] = {n: getattr(backend, n) for n in functions}
            seen["calls"] = [layer for layer in layers if "call" in vars(layer)]
            return model(ids)

    graph = tf.function(serve).get_concrete_function(tf.TensorSpec((2, 5), tf.int32)).graph
    assert seen["functions"] == functions and seen["calls"] == []
    # The LSTM became the fusable function, the GRU a loop.
    names = [str(name) for name in graph._functions]
    assert any("standard_lstm" in name for name in names), names
    assert len(backend._stack) == 1
