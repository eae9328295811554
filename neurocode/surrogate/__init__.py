"""Torch side: dynamics generated from Brian2's state updater for the same model cards.

>>> from neurocode.surrogate import PopulationDynamics, NetworkRunner, surrogate
>>> surrogate.superspike(slope=25)
surrogate.superspike(slope=25)
"""

from neurocode.surrogate import surrogate
from neurocode.surrogate.codegen import TorchNodeRenderer, TranslationError
from neurocode.surrogate.dynamics import PopulationDynamics
from neurocode.surrogate.flat import FlatMap, flat_map
from neurocode.surrogate.runner import NetworkRunner, RunOutput, input_tensor, synaptic_effects

__all__ = ["PopulationDynamics", "NetworkRunner", "RunOutput", "surrogate", "flat_map", "FlatMap",
           "TorchNodeRenderer", "TranslationError", "input_tensor", "synaptic_effects"]
