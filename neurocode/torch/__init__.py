"""Torch side: dynamics generated from Brian2's state updater for the same model cards.

>>> from neurocode.torch import PopulationDynamics, NetworkRunner, surrogate
>>> surrogate.superspike(slope=25)
surrogate.superspike(slope=25)
"""

from neurocode.torch import surrogate
from neurocode.torch.codegen import TorchNodeRenderer, TranslationError
from neurocode.torch.dynamics import PopulationDynamics
from neurocode.torch.flat import FlatMap, flat_map
from neurocode.torch.runner import NetworkRunner, RunOutput, input_tensor, synaptic_effects

__all__ = ["PopulationDynamics", "NetworkRunner", "RunOutput", "surrogate", "flat_map", "FlatMap",
           "TorchNodeRenderer", "TranslationError", "input_tensor", "synaptic_effects"]
