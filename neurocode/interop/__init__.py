"""Exchange with the rest of the SNN world: NIR graphs in and out (needs the ``nir`` extra).

>>> from neurocode.interop import from_nir, to_nir
"""

from neurocode.interop.nir import from_nir, neuron_values, to_nir, write_nir

__all__ = ["from_nir", "neuron_values", "to_nir", "write_nir"]
