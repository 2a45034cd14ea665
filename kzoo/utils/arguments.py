"""`argparse` types that check a number's range where the flag is parsed.

A bad value then stops the script in its first second with argparse's usual
message, e.g. `argument --epochs: must be an int >= 1. Received: -3`, instead
of failing deep inside training (or being replaced in silence).

Example:

>>> parser.add_argument("--epochs", type=int_range(1))
>>> parser.add_argument("--dropout", type=float_range(0, 1, max_inclusive=False))
"""

import argparse
import math


def _bounds(minimum, maximum, min_inclusive=True, max_inclusive=True):
    parts = []
    if minimum is not None:
        parts.append(f"{'>=' if min_inclusive else '>'} {minimum:g}")
    if maximum is not None:
        parts.append(f"{'<=' if max_inclusive else '<'} {maximum:g}")
    return " and ".join(parts)


def int_range(minimum=None, maximum=None):
    """An argparse `type` accepting ints in `[minimum, maximum]` (None: no bound)."""
    expected = "an int" + (
        f" {_bounds(minimum, maximum)}" if (minimum, maximum) != (None, None) else ""
    )

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}. Received: {text!r}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {expected}. Received: {text}")
        return value

    parse.__name__ = "int"
    return parse


def float_range(minimum=None, maximum=None, min_inclusive=True, max_inclusive=True):
    """An argparse `type` accepting finite floats within the given bounds."""
    bounds = _bounds(minimum, maximum, min_inclusive, max_inclusive)
    expected = "a finite number" + (f" {bounds}" if bounds else "")

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}. Received: {text!r}") from None
        too_low = minimum is not None and (value < minimum if min_inclusive else value <= minimum)
        too_high = maximum is not None and (value > maximum if max_inclusive else value >= maximum)
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be {expected}. Received: {text}")
        return value

    parse.__name__ = "float"
    return parse
