"""The two toy sequence problems of the rank-coding paper, as seeded generators.

* :func:`sequence_spotting` — 25 random bits; positive iff the sequence holds a run of five
  equal digits; the ideal decision step is the step where the first such run completes
  (for a negative: the first step after which no run of five can complete any more).
* :func:`noise_vs_signal` — 40 steps of a constant ±0.05 plus Gaussian noise whose standard
  deviation is drawn per sequence in [0.05, 0.25]; the class is the sign (1 for +).

Both return a :class:`ToyData` with ``x`` of shape ``[n, steps, 1]`` (float32).
:class:`FreshBatches` draws a new batch at every training step from a generator seeded by
``(seed, step)``, so a resumed run continues the same stream, and a held-out test set from a
stream of its own.

>>> d = sequence_spotting(4, seed=0)
>>> d.x.shape, d.y.dtype.name, d.ideal_step.shape
((4, 25, 1), 'int64', (4,))
>>> noise_vs_signal(3, seed=0).x.shape
(3, 40, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ToyData:
    """Inputs ``x`` [n, steps, 1] float32, labels ``y`` [n] int64, and ``ideal_step`` [n]
    int64: the earliest step (0-based) at which the label is decidable from the inputs
    (``steps - 1`` where only the whole sequence decides; for noise-vs-signal, where evidence
    accumulates without a single decisive step, the last step)."""

    x: np.ndarray
    y: np.ndarray
    ideal_step: np.ndarray

    def tensors(self):
        """``(x, y)`` as torch tensors."""
        import torch
        return torch.from_numpy(self.x), torch.from_numpy(self.y)


def _check_n(n):
    if int(n) != n or n < 1:
        raise ValueError(f"number of sequences must be a positive integer, got {n}")
    return int(n)


def first_run_end(bits, run=5):
    """Step at which the first run of ``run`` equal digits completes, per row (-1 if none).

    >>> first_run_end(np.array([[0, 1, 1, 1, 1, 1, 0], [0, 1, 0, 1, 0, 1, 0]]))
    array([ 5, -1])
    """
    bits = np.asarray(bits)
    n, steps = bits.shape
    length = np.ones(n, dtype=np.int64)
    end = np.full(n, -1, dtype=np.int64)
    if run <= 1:
        end[:] = 0
        return end
    for t in range(1, steps):
        length = np.where(bits[:, t] == bits[:, t - 1], length + 1, 1)
        end = np.where((end < 0) & (length >= run), t, end)
    return end


def no_run_step(bits, run=5):
    """First step after which no run of ``run`` equal digits can complete any more, per row.

    At step ``t`` the current run has length ``L_t`` and ``steps - 1 - t`` digits remain; a
    run can still complete iff ``L_t + steps - 1 - t >= run``. For a row without a run this
    is the earliest step at which its label (negative) is decidable; always ``<= steps - 1``.

    >>> no_run_step(np.array([[0, 1, 0, 1, 1, 0], [0, 1, 0, 1, 0, 0]]), run=3)
    array([5, 4])
    """
    bits = np.asarray(bits)
    n, steps = bits.shape
    length = np.ones(n, dtype=np.int64)
    out = np.full(n, -1, dtype=np.int64)
    for t in range(steps):
        if t:
            length = np.where(bits[:, t] == bits[:, t - 1], length + 1, 1)
        out = np.where((out < 0) & (length + steps - 1 - t < run), t, out)
    return np.where(out < 0, steps - 1, out)


def sequence_spotting(n, steps=25, run=5, seed=None, balanced=True):
    """Toy task A: is there a run of ``run`` equal bits in ``steps`` random bits?

    Parameters
    ----------
    n : int
        Number of sequences.
    steps, run : int
        Sequence length (25) and run length (5).
    seed : int or numpy.random.Generator, optional
    balanced : bool
        Draw equal numbers of positives and negatives (rejection sampling); otherwise bits
        are i.i.d. fair coins (about 56 % positives for 25 bits and runs of 5).
    """
    n = _check_n(n)
    if run < 1 or run > steps:
        raise ValueError(f"run length must lie in [1, steps={steps}], got {run}")
    rng = np.random.default_rng(seed)
    if not balanced:
        bits = rng.integers(0, 2, size=(n, steps))
        end = first_run_end(bits, run)
    else:
        n_pos = n // 2 + rng.integers(0, 2) * (n % 2)
        pos, neg = [], []
        have_pos = have_neg = 0
        while have_pos < n_pos or have_neg < n - n_pos:
            bits = rng.integers(0, 2, size=(max(2 * n, 64), steps))
            e = first_run_end(bits, run)
            pos.append(bits[e >= 0])
            neg.append(bits[e < 0])
            have_pos += pos[-1].shape[0]
            have_neg += neg[-1].shape[0]
        bits = np.concatenate([np.concatenate(pos)[:n_pos], np.concatenate(neg)[:n - n_pos]])
        bits = bits[rng.permutation(n)]
        end = first_run_end(bits, run)
    y = (end >= 0).astype(np.int64)
    ideal = np.where(end >= 0, end, no_run_step(bits, run)).astype(np.int64)
    return ToyData(bits[:, :, None].astype(np.float32), y, ideal)


def noise_vs_signal(n, steps=40, amplitude=0.05, noise=(0.05, 0.25), seed=None):
    """Toy task B: the sign of a constant ±``amplitude`` signal buried in Gaussian noise.

    The noise standard deviation of each sequence is uniform in ``noise``; labels are
    balanced in expectation (1 for a positive signal).
    """
    n = _check_n(n)
    lo, hi = noise
    if not 0 <= lo <= hi:
        raise ValueError(f"noise range must satisfy 0 <= low <= high, got {noise}")
    if amplitude <= 0:
        raise ValueError(f"signal amplitude must be > 0, got {amplitude}")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n).astype(np.int64)
    sigma = rng.uniform(lo, hi, size=n)
    x = (2 * y - 1)[:, None] * amplitude + sigma[:, None] * rng.standard_normal((n, steps))
    return ToyData(x[:, :, None].astype(np.float32), y, np.full(n, steps - 1, dtype=np.int64))


TASKS = {"spotting": sequence_spotting, "noise": noise_vs_signal}


class FreshBatches:
    """A stream of freshly drawn toy batches for training, and a held-out test draw.

    Training batch ``k`` (counted over the whole run) is drawn by ``TASKS[task]`` from
    ``numpy.random.default_rng([seed, 0, k])``: the stream depends only on ``(seed, k)``, so a
    run resumed at step ``k`` continues it exactly. The test set comes from
    ``default_rng([seed, 1])``, a stream no training batch uses (a test sequence may still
    coincide with a training one by chance: 2**25 spotting sequences exist).

    Parameters
    ----------
    task : {"spotting", "noise"}
    batch_size : int
        Sequences per batch.
    steps_per_epoch : int
        Batches between evaluations (an "epoch" of ``batch_size * steps_per_epoch`` sequences).
    seed : int

    >>> s = FreshBatches("spotting", batch_size=4, steps_per_epoch=10, seed=0)
    >>> x, y = s.draw(0, 3)
    >>> tuple(x.shape), bool((s.draw(0, 3)[0] == x).all()), bool((s.draw(1, 3)[0] == x).all())
    ((4, 25, 1), True, False)
    """

    def __init__(self, task, batch_size, steps_per_epoch, seed=0):
        if task not in TASKS:
            raise ValueError(f"unknown toy task {task!r}; choose from {sorted(TASKS)}")
        for name, value in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self.task, self.batch_size = task, int(batch_size)
        self.steps_per_epoch, self.seed = int(steps_per_epoch), int(seed)

    def __len__(self):
        """Sequences per epoch."""
        return self.batch_size * self.steps_per_epoch

    def data(self, k):
        """Training batch ``k`` (0-based over the run) as :class:`ToyData`."""
        if int(k) != k or k < 0:
            raise ValueError(f"batch index must be a non-negative integer, got {k}")
        return TASKS[self.task](self.batch_size, seed=np.random.default_rng([self.seed, 0, int(k)]))

    def draw(self, epoch, step):
        """``(x, y)`` torch tensors of batch ``epoch * steps_per_epoch + step``."""
        return self.data(epoch * self.steps_per_epoch + step).tensors()

    def test(self, n):
        """The held-out test draw of ``n`` sequences (:class:`ToyData`)."""
        return TASKS[self.task](n, seed=np.random.default_rng([self.seed, 1]))
