"""kzoo: recurrent networks for Keras 3 on TensorFlow, JAX and PyTorch."""

# `training` registers its optimizer and schedules, so compiled `.keras` files that
# use them load once `kzoo` is imported.
from kzoo import callbacks, convert, datasets, export, layers, metrics, models, training

__version__ = "0.1.0"

__all__ = [
    "callbacks",
    "convert",
    "datasets",
    "export",
    "layers",
    "metrics",
    "models",
    "training",
]
