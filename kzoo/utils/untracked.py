"""Caches and helper objects kept on a model where Keras does not look.

A model often keeps things derived from itself: compiled decoding loops,
models that share its layers (a stateful twin, a Viterbi decoder for one
length), lookup tables built from its vocabulary. Stored as ordinary
attributes they go wrong in three ways:

- Keras's attribute tracker adopts any `Layer`, `Variable` or list/dict of
  them as part of the model, so `summary()`, `count_params()` and the
  optimizer see their weights (twice, when they share the model's layers);
- `.keras` saving walks every attribute that is a `KerasSaveable`, a list,
  a tuple or a dict, and writes what it finds (extra weight groups that a
  fresh model then cannot load);
- on the PyTorch backend every layer is a `torch.nn.Module`, and assigning
  one registers it as a submodule (`model.parameters()` grows).

`UntrackedCache` is an opaque mapping that none of the three recognises, and
`untracked_cache(owner, name)` is the one way kzoo attaches such a cache to
a layer or model: created on first use, stored in the instance `__dict__`
(bypassing `Layer.__setattr__` and `torch.nn.Module.__setattr__`), so it also
works from methods of a model loaded from a file, without any `__init__`
support. The cache holds derived state only: it is dropped, not copied, by
`copy.deepcopy` and pickling (a copy rebuilds what it needs).

Example:

>>> decoders = untracked_cache(tagger, "decoders")
>>> decoder = decoders.get(length, lambda: tagger.build_decoder(length))
"""

import collections

_PREFIX = "_kzoo_untracked_"
_MISSING = object()


class UntrackedCache:
    """A mapping of derived objects that Keras never tracks, saves or counts.

    Keys are any hashable values (an int length, a tuple of options, a
    sampler object: an object key is held by the cache, so its id cannot be
    reused by another object while the entry lives). Values are anything,
    including Keras models that share the owner's layers.

    Args:
        max_size: optional int >= 1. When set, adding an entry to a full
            cache drops the least recently used one (e.g. one compiled loop
            per `max_length` asked for).

    Example:

    >>> cache = UntrackedCache(max_size=8)
    >>> twin = cache.get(batch_size, lambda: make_stateful_twin(batch_size))
    """

    def __init__(self, max_size=None):
        self.max_size = _check_max_size(max_size)
        self._items = collections.OrderedDict()

    def get(self, key, factory=None):
        """The value stored under `key`, made with `factory()` if missing.

        Args:
            key: hashable.
            factory: optional zero-argument callable. When `key` is missing,
                its result is stored and returned; without it `None` is
                returned and nothing is stored.

        Returns:
            The cached (or new) value, or `None`.
        """
        value = self._items.get(key, _MISSING)
        if value is not _MISSING:
            self._items.move_to_end(key)
            return value
        if factory is None:
            return None
        value = factory()
        self.put(key, value)
        return value

    def put(self, key, value):
        """Stores `value` under `key` (replacing any previous one)."""
        self._items[key] = value
        self._items.move_to_end(key)
        self._evict()

    def resize(self, max_size):
        """Sets `max_size`, dropping the least recently used entries beyond it."""
        self.max_size = _check_max_size(max_size)
        self._evict()

    def _evict(self):
        while self.max_size is not None and len(self._items) > self.max_size:
            self._items.popitem(last=False)

    def pop(self, key, default=None):
        """Removes `key` and returns its value (`default` if absent)."""
        return self._items.pop(key, default)

    def clear(self):
        """Drops every entry."""
        self._items.clear()

    def keys(self):
        return list(self._items)

    def __contains__(self, key):
        return key in self._items

    def __len__(self):
        return len(self._items)

    def __repr__(self):
        return f"UntrackedCache({len(self._items)} entries, max_size={self.max_size})"

    # Derived state is rebuilt, never copied: a deep copy of a model must not
    # share (or duplicate) loops compiled for the original's variables.
    def __deepcopy__(self, memo):
        return UntrackedCache(self.max_size)

    def __copy__(self):
        return UntrackedCache(self.max_size)

    def __reduce__(self):
        return (UntrackedCache, (self.max_size,))


def _check_max_size(max_size):
    if max_size is None:
        return None
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        raise ValueError(f"`max_size` must be an int >= 1 or None. Received: max_size={max_size!r}")
    return max_size


def untracked_cache(owner, name, max_size=None):
    """The cache `name` of `owner`, created empty on its first use.

    Args:
        owner: the layer or model (any object with a `__dict__`).
        name: str, a Python identifier naming the cache; different names give
            different caches on the same owner.
        max_size: optional int >= 1, see `UntrackedCache`; applied when the
            cache is created and updated when given again.

    Returns:
        The owner's `UntrackedCache` of that name.

    Raises:
        ValueError: `name` is not an identifier.
        TypeError: `owner` cannot hold attributes.

    Example:

    >>> loops = untracked_cache(model, "generation_loops")
    >>> loop = loops.get(key, lambda: GenerationLoop(model, sampler))
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"`name` must be a Python identifier. Received: name={name!r}")
    try:
        attributes = vars(owner)
    except TypeError as e:
        raise TypeError(
            f"`owner` must be an object with a `__dict__` (a layer or model). "
            f"Received: {type(owner).__name__}"
        ) from e
    key = _PREFIX + name
    cache = attributes.get(key)
    if cache is None:
        cache = UntrackedCache(max_size)
        # Written straight into the instance dict: `Layer.__setattr__` (the
        # tracker) and `torch.nn.Module.__setattr__` never see it.
        attributes[key] = cache
    elif max_size is not None:
        cache.resize(max_size)
    return cache


__all__ = ["UntrackedCache", "untracked_cache"]
