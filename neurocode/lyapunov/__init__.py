"""Lyapunov spectra of neurocode dynamics, and Lyapunov Noise Pruning (LNP).

* :mod:`~neurocode.lyapunov.spectrum` -- Benettin / QR engine on any torch map (1/s).
* :mod:`~neurocode.lyapunov.spiking` -- treatment of spikes: smooth surrogate, or exact
  spike-time (saltation) correction at threshold crossings.
* :mod:`~neurocode.lyapunov.hrsnn` -- HRSNN / CHRSNN construction from cards.
* :mod:`~neurocode.lyapunov.prune` -- LNP and the random / activity baselines.
"""

from neurocode.lyapunov.spectrum import (Convergence, LyapunovError, LyapunovResult, jvp_propagator,
                                         orthonormal_tangents, spectrum)

__all__ = ["Convergence", "LyapunovError", "LyapunovResult", "jvp_propagator", "orthonormal_tangents", "spectrum"]
