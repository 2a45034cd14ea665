"""Small helpers shared across kzoo."""

from kzoo.utils.arguments import float_range, int_range
from kzoo.utils.atomic_write import (
    atomic_path,
    check_writable_folder,
    save_model,
    write_bytes,
    write_json,
    write_text,
)
from kzoo.utils.random_seed import set_random_seed

__all__ = [
    "atomic_path",
    "check_writable_folder",
    "float_range",
    "int_range",
    "save_model",
    "set_random_seed",
    "write_bytes",
    "write_json",
    "write_text",
]
