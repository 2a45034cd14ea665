"""What a layer hands to the backend's whole-sequence kernels: `CellSpec`.

The layer decides and describes; the backend receives plain data. A cell
whose equations a fused kernel reproduces (kzoo's own `LSTMCell`, `GRUCell`
and `SimpleRNNCell` with their default activations and no layer norm)
describes itself as a `CellSpec`: its kind, weights as tensors, activation,
the dropout mask drawn for this sequence and the layer's `use_cudnn` choice.
Nothing in `kzoo.backend` imports a layer or reads a layer's attribute.

This module also holds the checks every fused function runs before a kernel
(`check_call`: a wrong state shape raises `ValueError` instead of reaching a
kernel that would read out of bounds) and the backend-independent cuDNN
dispatch rule (`kernel_choice`).
"""

import dataclasses

from keras.backend import standardize_dtype

KINDS = ("lstm", "gru", "gru_v1", "simple")
ACTIVATIONS = {"lstm": ("tanh",), "gru": ("tanh",), "gru_v1": ("tanh",), "simple": ("tanh", "relu")}
USE_CUDNN = ("auto", True, False)
GATES = {"lstm": 4, "gru": 3, "gru_v1": 3, "simple": 1}
NUM_STATES = {"lstm": 2, "gru": 1, "gru_v1": 1, "simple": 1}

# Dtypes the CPU kernels run; half precision (mixed precision policies) only
# on a cuDNN kernel, elsewhere the generic loop runs in the compute dtype.
CPU_DTYPES = ("float32", "float64")
CUDNN_DTYPES = ("float16", "bfloat16", "float32", "float64")


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """A plain recurrent cell, described for a fused kernel.

    Attributes:
        kind: `"lstm"` (gates i, f, c, o; bias `(4h,)`), `"gru"` (gates z, r,
            h, reset after the recurrent product, bias `(2, 3h)`: input and
            recurrent rows), `"gru_v1"` (reset before it, bias `(3h,)`) or
            `"simple"` (`h = activation(x W + h U + b)`). The gate nonlinearity
            is the sigmoid.
        units: state size `h`.
        kernel: `(input_dim, gates * h)` tensor, Keras gate order.
        recurrent_kernel: `(h, gates * h)` tensor.
        bias: tensor of the kind's bias shape, or None (no bias).
        activation: `"tanh"`, or for `"simple"` also `"relu"`.
        input_mask: `(batch, input_dim)` input dropout mask applied at every
            step of this sequence, or None.
        state_mask: `(batch, h)` recurrent dropout mask, or None. No fused
            kernel applies one: a spec with it runs the generic loop.
        use_cudnn: the layer's `use_cudnn` (`"auto"`, True or False, with
            Keras's meaning; see `kernel_choice`).
    """

    kind: str
    units: int
    kernel: object
    recurrent_kernel: object
    bias: object = None
    activation: str = "tanh"
    input_mask: object = None
    state_mask: object = None
    use_cudnn: object = "auto"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={self.kind!r}")
        if self.activation not in ACTIVATIONS[self.kind]:
            raise ValueError(
                f"A {self.kind!r} cell spec takes activation in {ACTIVATIONS[self.kind]}. "
                f"Received: activation={self.activation!r}"
            )
        if not any(self.use_cudnn is choice or self.use_cudnn == choice for choice in USE_CUDNN):
            raise ValueError(
                f"`use_cudnn` must be 'auto', True or False. Received: use_cudnn={self.use_cudnn!r}"
            )
        if isinstance(self.units, bool) or not isinstance(self.units, int) or self.units < 1:
            raise ValueError(f"`units` must be a positive int. Received: units={self.units!r}")

    @property
    def gates(self):
        return GATES[self.kind]

    @property
    def num_states(self):
        return NUM_STATES[self.kind]

    @property
    def dtype(self):
        return standardize_dtype(self.kernel.dtype)


def same_config(a, b):
    """Whether two specs can share one bidirectional kernel call."""
    return (
        a.kind == b.kind
        and a.units == b.units
        and a.activation == b.activation
        and (a.bias is None) == (b.bias is None)
        and tuple(a.kernel.shape) == tuple(b.kernel.shape)
    )


def static_dim(d):
    """`d` as an int, or `None` for an unknown size."""
    try:
        return int(d)
    except Exception:  # None, a TF Dimension(None), a JAX symbolic dimension
        return None


def static_shape(tensor):
    """The shape of `tensor` as a tuple of ints, `None` where a size is unknown."""
    return tuple(static_dim(d) for d in tensor.shape)


def _mismatch(a, b):
    return a is not None and b is not None and a != b


def check_call(spec, sequences, states, mask=None, what="initial state"):
    """Checks shapes before a kernel runs; raises `ValueError` on a mismatch.

    ATen's kernels, called without `torch.nn`'s checks, read out of bounds
    when a state's batch differs from the inputs' (heap corruption); XLA and
    TensorFlow fail deep inside their loops. Every fused function calls this
    first. Dimensions unknown while tracing are not checked.

    Args:
        spec: the `CellSpec`.
        sequences: `(batch, time, features)` tensor.
        states: list of `(batch, units)` tensors.
        mask: optional `(batch, time)` tensor.
        what: how the messages name the states.
    """
    shape = static_shape(sequences)
    if len(shape) != 3:
        raise ValueError(
            f"A recurrent kernel expects sequences of rank 3 (batch, time, features). "
            f"Received shape {shape}."
        )
    batch, steps, features = shape
    width = spec.gates * spec.units
    for name, tensor, expected in (
        ("kernel", spec.kernel, (features, width)),
        ("recurrent_kernel", spec.recurrent_kernel, (spec.units, width)),
    ):
        got = static_shape(tensor)
        if len(got) != 2 or any(_mismatch(g, e) for g, e in zip(got, expected)):
            raise ValueError(
                f"The {spec.kind} cell's `{name}` must have shape {expected} for inputs with "
                f"{features} features and {spec.units} units. Received shape {got}."
            )
    if spec.bias is not None:
        expected = (2, width) if spec.kind == "gru" else (width,)
        if static_shape(spec.bias) != expected:
            raise ValueError(
                f"The {spec.kind} cell's `bias` must have shape {expected}. "
                f"Received shape {static_shape(spec.bias)}."
            )
    dtypes = {standardize_dtype(t.dtype) for t in (spec.kernel, spec.recurrent_kernel)}
    if spec.bias is not None:
        dtypes.add(standardize_dtype(spec.bias.dtype))
    if len(dtypes) != 1:
        raise ValueError(f"The cell's weights must share one dtype. Received dtypes {dtypes}.")
    states = list(states)
    if len(states) != spec.num_states:
        raise ValueError(
            f"A {spec.kind} cell has {spec.num_states} state(s) of shape (batch, {spec.units}); "
            f"received {len(states)} {what} tensor(s)."
        )
    for i, state in enumerate(states):
        got = static_shape(state)
        if len(got) != 2 or _mismatch(got[0], batch) or _mismatch(got[1], spec.units):
            raise ValueError(
                f"{what.capitalize()} {i} must have shape (batch, units) = "
                f"({batch}, {spec.units}), matching the inputs of shape {shape}. "
                f"Received shape {got}."
            )
    if spec.input_mask is not None:
        got = static_shape(spec.input_mask)
        if len(got) != 2 or _mismatch(got[0], batch) or _mismatch(got[1], features):
            raise ValueError(
                f"The input dropout mask must have shape (batch, features) = ({batch}, "
                f"{features}). Received shape {got}."
            )
    if mask is not None:
        got = static_shape(mask)
        if len(got) != 2 or _mismatch(got[0], batch) or _mismatch(got[1], steps):
            raise ValueError(
                f"`mask` must have shape (batch, time) = ({batch}, {steps}), matching the "
                f"inputs. Received shape {got}."
            )


def cudnn_compatible(spec, allow_no_bias=False, allow_simple=False):
    """Whether a cuDNN RNN computes `spec` (Keras's conditions: LSTM, or GRU
    with `reset_after`, tanh/sigmoid, with bias; no dropout mask inside)."""
    if spec.state_mask is not None:
        return False
    if spec.bias is None and not allow_no_bias:
        return False
    if spec.kind == "simple":
        return allow_simple
    return spec.kind in ("lstm", "gru")


def kernel_choice(use_cudnn, device_type, compatible):
    """Which kernel runs a spec: `"cudnn"` or `"fused"` (kzoo's own loops or
    ATen's kernel with cuDNN disabled).

    Pure, so that it is tested for every device type without a GPU.

    Args:
        use_cudnn: the layer's `use_cudnn`: `"auto"` runs cuDNN where it can
            (a GPU and a compatible configuration), True insists on it
            (`ValueError` otherwise, as Keras), False never uses it.
        device_type: `"gpu"` or `"cpu"` (any other device counts as no GPU).
        compatible: whether cuDNN can compute this call (`cudnn_compatible`
            and whatever the backend adds, e.g. the mask's form).
    """
    if use_cudnn is False:
        return "fused"
    if device_type == "gpu" and compatible:
        return "cudnn"
    if use_cudnn is True:
        where = "on a GPU" if device_type == "gpu" else f"on {device_type!r} (no GPU)"
        raise ValueError(
            "use_cudnn=True was specified, but cuDNN is not supported for this layer "
            f"configuration with this backend {where}. Pass use_cudnn='auto' to fall back to "
            "a non-cuDNN implementation."
        )
    return "fused"


def check_dtype(spec, sequences, choice):
    """`NotImplementedError` where the chosen kernel does not take the dtype:
    sequences and weights must share it, and off cuDNN it must be float32 or
    float64 (half precision then runs the generic loop)."""
    dtype = standardize_dtype(sequences.dtype)
    if dtype != spec.dtype:
        raise NotImplementedError("sequences and weights differ in dtype")
    if dtype not in (CUDNN_DTYPES if choice == "cudnn" else CPU_DTYPES):
        raise NotImplementedError(f"{dtype} has no {choice} kernel here")
