"""Progress bars with an ETA for the long steps of a recipe that are not `fit`."""

import keras


def progress(items, total=None, label=None, unit="items", verbose=1):
    """Yields `items` while a Keras progress bar shows how far along they are.

    For data loading, tokenizing and test-set prediction: the same bar (and
    ETA) as `fit`'s, so a long step never runs in silence.

    Args:
        items: an iterable.
        total: the number of items (default: `len(items)`; without either,
            the bar counts without an ETA).
        label: optional line printed before the bar.
        unit: what an item is, shown per second (e.g. `"reviews"`).
        verbose: 1 for a bar, 0 for silence (e.g. in tests).

    Example:

    >>> for review in progress(reviews, label="Tokenizing", unit="reviews"):
    ...     ids.append(tokenizer.encode(review))
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    if verbose and label:
        print(label, flush=True)
    bar = keras.utils.Progbar(total, unit_name=unit, verbose=verbose)
    done = 0
    for item in items:
        yield item
        done += 1
        # Redrawing costs time: about 100 updates over the whole run.
        if total is None or done == total or done % max(1, total // 100) == 0:
            bar.update(done)
    if total is None or done != total:
        bar.update(done, finalize=True)
