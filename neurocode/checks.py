"""Value checks where numbers enter: finite, and above a bound, naming the first bad index.

>>> check_values([1e-3, 0.0, 2e-3], "population 'exc', parameter 'tau_m'", low=0, unit="s")
Traceback (most recent call last):
...
neurocode.errors.NetworkSpecError: population 'exc', parameter 'tau_m': must be > 0 s, got 0.0 at index 1
>>> check_values([0.5, float("nan")], "weights")
Traceback (most recent call last):
...
neurocode.errors.NetworkSpecError: weights: must be finite, got nan at index 1
"""

from __future__ import annotations

import os

import numpy as np

from neurocode.errors import NetworkSpecError


def check_values(values, what, low=None, inclusive=False, unit="", error=NetworkSpecError):
    """Raise ``error`` unless every value is finite and above ``low`` (``>= low`` if ``inclusive``).

    Parameters
    ----------
    values : array_like
        Numbers (SI units).
    what : str
        Where they come from (file, field), the start of the message.
    low : float, optional
        Lower bound; ``None`` checks finiteness only.
    inclusive : bool
        Whether ``low`` itself is allowed.
    unit : str
        Unit shown in the message (``"s"``).
    error : type
        Exception class raised (a :class:`~neurocode.errors.NeurocodeError`).

    Returns
    -------
    numpy.ndarray
        The values as float64.
    """
    values = np.asarray(values, dtype=np.float64)
    flat = values.ravel()
    bad = ~np.isfinite(flat)
    if bad.any():
        k = int(np.argmax(bad))
        raise error(f"{what}: must be finite, got {float(flat[k])!r} at index {_index(values, k)}")
    if low is not None:
        bad = flat < low if inclusive else flat <= low
        if bad.any():
            k = int(np.argmax(bad))
            bound = f"{'>=' if inclusive else '>'} {low:g}{' ' + unit if unit else ''}"
            raise error(f"{what}: must be {bound}, got {float(flat[k])!r} at index {_index(values, k)}")
    return values


def _index(values, k):
    if values.ndim <= 1:
        return k
    return tuple(int(i) for i in np.unravel_index(k, values.shape))


def on_grid(delays, dt, what, rounding=False, error=NetworkSpecError):
    """Delays (s) as whole multiples of ``dt``: checked, or rounded when ``rounding`` is asked for.

    Engines propagate spikes with integer-step delays, so a delay off the grid would be
    rounded silently; here it is an error naming the first such synapse unless ``rounding``.

    >>> on_grid([0.0, 2e-4], 1e-4, "delays")
    array([0.   , 0.0002])
    >>> on_grid([1.5e-4], 1e-4, "projection 'a_to_b', delays")
    Traceback (most recent call last):
    ...
    neurocode.errors.NetworkSpecError: projection 'a_to_b', delays: 0.00015 s at index 0 is not a whole number \
of time steps (dt = 0.0001 s); round the delays to the grid, or ask for rounding (round_delays=True)
    """
    delays = check_values(delays, what, low=0.0, inclusive=True, unit="s", error=error)
    steps = delays / dt
    rounded = np.round(steps)
    if rounding:
        return rounded * dt
    off = np.abs(steps - rounded) > 1e-6 * np.maximum(1.0, rounded)
    if off.any():
        k = int(np.argmax(off))
        raise error(f"{what}: {delays[k]:g} s at index {k} is not a whole number of time steps (dt = {dt:g} s); "
                    "round the delays to the grid, or ask for rounding (round_delays=True)")
    return delays


def available_memory():
    """Bytes of memory available to a new allocation (``MemAvailable`` on Linux)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(nbytes, what, error=NetworkSpecError):
    """Raise ``error`` before allocating ``nbytes`` when they exceed the available memory.

    >>> check_memory(300_000 ** 2 * 9, "a dense 300000 x 300000 connection mask")
    Traceback (most recent call last):
    ...
    neurocode.errors.NetworkSpecError: a dense 300000 x 300000 connection mask needs about 754 GiB of memory, ...
    """
    available = available_memory()
    if nbytes > available:
        raise error(f"{what} needs about {nbytes / 2**30:.3g} GiB of memory, more than the "
                    f"{available / 2**30:.3g} GiB available here; use fewer neurons")


def check_size(size, what, error=NetworkSpecError):
    """Raise ``error`` unless ``size`` is an integer >= 1 (a number of neurons)."""
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) or size < 1:
        raise error(f"{what}: size must be an integer >= 1, got {size!r}")


def check_indices(values, what, error=NetworkSpecError):
    """Neuron indices as int64; values that are not whole numbers raise instead of being truncated."""
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "b":
        raise error(f"{what}: indices must be integers, got booleans")
    values = check_values(values, what, error=error)
    bad = (values != np.round(values)) | (np.abs(values) >= 2.0 ** 62)
    if bad.any():
        k = int(np.argmax(bad.ravel()))
        raise error(f"{what}: indices must be integers, got {float(values.ravel()[k])!r} at index {k}")
    return values.astype(np.int64)
