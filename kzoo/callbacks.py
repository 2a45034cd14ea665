"""Training callbacks shared by the recipes."""

import time

import keras


class TrainingBudget(keras.callbacks.Callback):
    """Stops training cleanly after a wall-clock budget or a number of steps.

    The clock starts when the callback is created, and the step count runs
    across every `fit` call the callback is passed to, so one budget can
    cover a recipe that calls `fit` in chunks (e.g. truncated BPTT windows).
    Training stops at the end of the batch during which the budget ran out;
    Keras then finishes the epoch's bookkeeping (validation, other
    callbacks) as usual.

    Args:
        seconds: float or None, the wall-clock budget from creation.
        max_steps: int or None, the number of training batches allowed.

    Attributes:
        steps: training batches seen so far.
        stopped: whether the budget ended training.
        reason: why (`"time budget reached"`, `"N steps done"`), or `""`.

    Example:

    >>> budget = TrainingBudget(seconds=25 * 60)
    >>> model.fit(x, y, epochs=100, callbacks=[budget])
    >>> budget.stopped
    """

    def __init__(self, seconds=None, max_steps=None):
        super().__init__()
        if seconds is not None and not seconds > 0:
            raise ValueError(f"`seconds` must be positive or None. Received: seconds={seconds}")
        if max_steps is not None and (isinstance(max_steps, bool) or int(max_steps) < 1):
            raise ValueError(
                f"`max_steps` must be a positive integer or None. Received: max_steps={max_steps}"
            )
        self.seconds = seconds
        self.max_steps = None if max_steps is None else int(max_steps)
        self.started = time.monotonic()
        self.steps = 0
        self.stopped = False
        self.reason = ""

    def elapsed(self):
        """Seconds since the callback was created."""
        return time.monotonic() - self.started

    def expired(self):
        """Whether the time or step budget is used up (for hand-written loops)."""
        if self.stopped:
            return True
        if self.seconds is not None and self.elapsed() >= self.seconds:
            self.stopped, self.reason = True, "time budget reached"
        elif self.max_steps is not None and self.steps >= self.max_steps:
            self.stopped, self.reason = True, f"{self.max_steps} steps done"
        return self.stopped

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.expired():
            self.model.stop_training = True
