"""kzoo: recurrent networks for Keras 3 on TensorFlow, JAX and PyTorch."""

from kzoo import callbacks, convert, datasets, export, layers, metrics, models

__version__ = "0.1.0"

__all__ = ["callbacks", "convert", "datasets", "export", "layers", "metrics", "models"]
