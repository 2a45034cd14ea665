"""Convert recurrent layers between torch.nn, keras.layers and kzoo.

- `from_torch(module_or_state_dict)`: torch.nn.RNN/LSTM/GRU (any number of
  layers, either direction, `batch_first` either way; `proj_size > 0`
  refused), nn.Linear and nn.Embedding -> built Keras/kzoo layers.
- `to_torch(layer)`: kzoo (or keras.layers) recurrent layer -> torch module.
- `from_keras(layer)` / `to_keras(layer)`: keras.layers.LSTM/GRU/SimpleRNN
  and Bidirectional <-> kzoo layers.

Every conversion gives equal outputs; the weight mapping is described in
`kzoo/convert/_weights.py` and in the kzoo README.
"""

from kzoo.convert._keras import from_keras, to_keras
from kzoo.convert._torch import from_torch, parse_state_dict, to_torch

__all__ = ["from_keras", "from_torch", "parse_state_dict", "to_keras", "to_torch"]
