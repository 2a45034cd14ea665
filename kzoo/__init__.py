"""kzoo: recurrent networks for Keras 3 on TensorFlow, JAX and PyTorch."""

from kzoo import datasets, layers, metrics, models

__version__ = "0.1.0"

__all__ = ["datasets", "layers", "metrics", "models"]
