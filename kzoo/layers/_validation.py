"""Argument checks shared by kzoo layers; each error names the argument."""


def check_units(units, name="units"):
    if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={units!r}")
    return units


def check_rate(rate, name):
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={rate!r}")
    return float(rate)


def check_choice(value, choices, name):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {sorted(choices, key=str)}. Received: {name}={value!r}"
        )
    return value


def check_mask_dtype(mask, layer_name):
    """Refuses a mask that is neither boolean nor numeric, naming its dtype.

    Runs before `Layer.__call__` converts the mask, whose own error for, say,
    an array of strings does not say which argument was wrong.
    """
    dtype = getattr(mask, "dtype", None)
    if mask is None or dtype is None:
        return
    name = getattr(dtype, "name", None) or str(dtype)
    name = name.replace("tf.", "").replace("torch.", "")
    if name == "bool" or name.startswith(("int", "uint", "float", "bfloat")):
        return
    raise ValueError(
        f"{layer_name}: `mask` must be a boolean (batch, time) tensor (True for valid "
        f"steps). Received a mask of dtype {name}."
    )
