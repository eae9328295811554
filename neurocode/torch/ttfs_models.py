"""The exact TTFS network classes, by the model name a NetworkSpec's metadata records.

>>> network_class("ConstantSlopeNetwork").neuron
'constant_slope'
"""

from __future__ import annotations

from neurocode.errors import NetworkSpecError
from neurocode.torch.constant_slope import MODEL as CONSTANT_SLOPE
from neurocode.torch.constant_slope import ConstantSlopeNetwork
from neurocode.torch.ttfs import TTFSNetwork

#: ``metadata["model"]`` of a spec -> the class that wrote it.
MODELS = {"TTFSNetwork": TTFSNetwork, CONSTANT_SLOPE: ConstantSlopeNetwork}


def network_class(model):
    """The exact TTFS network class of a model name."""
    if model not in MODELS:
        raise NetworkSpecError(f"unknown TTFS network model {model!r}; known: {sorted(MODELS)}")
    return MODELS[model]


def network_from_spec(spec):
    """Rebuild the exact TTFS network a spec was written from (its ``metadata["model"]``)."""
    return network_class(spec.metadata.get("model")).from_spec(spec)
