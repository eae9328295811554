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
