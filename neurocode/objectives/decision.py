"""The one decision rule of spiking classifiers: the first output spike names the class.

Every engine decides through :func:`first_spike_decision`: the torch TTFS trainer's accuracy,
the Brian2 validator (TTFS and rank-coding networks) and the read-out recorded in a
NetworkSpec (:class:`~neurocode.spec.Readout`, ``rule = "first_spike"``).

>>> import numpy as np
>>> first_spike_decision(np.array([[3.0, 1.0, 1.0], [np.inf, np.inf, np.inf]]))
array([ 1, -1])
"""

from __future__ import annotations

import numpy as np

#: Decision rules a spec's read-out may name.
RULES = ("first_spike",)


def first_spike_decision(first_times):
    """The class of each trial: the output neuron that spiked first.

    Ties go to the lowest index (neurons spiking in the same step are indistinguishable to a
    downstream reader on the time grid); a trial in which no output neuron spiked has no
    answer, ``-1``, which counts as wrong.

    Parameters
    ----------
    first_times : array_like, shape (n_trials, n_out)
        First spike time of each output neuron (any unit, or steps); ``inf`` where it did
        not spike.
    """
    first_times = np.asarray(first_times, dtype=np.float64)
    answer = np.argmin(first_times, axis=1)
    return np.where(np.isfinite(first_times.min(axis=1)), answer, -1)
