"""neurocode: spiking networks written once as Brian2 equations.

The same model card drives a Brian2 simulation (runtime, C++ standalone, CUDA
standalone) and PyTorch dynamics for training. See ``docs/`` for the workflows.
"""

__version__ = "0.1.0"

import warnings  # noqa: E402

# Brian2's import touches a private setuptools helper; the warning says nothing to users.
warnings.filterwarnings("ignore", message="_get_vc_env is private", category=UserWarning)

from neurocode.errors import ModelCardError, NetworkSpecError, DeviceError  # noqa: E402
from neurocode.cards import ModelCard, load_card, list_cards  # noqa: E402
from neurocode.spec import NetworkSpec, Population, Projection, InputPopulation  # noqa: E402

__all__ = [
    "__version__",
    "ModelCard",
    "load_card",
    "list_cards",
    "NetworkSpec",
    "Population",
    "Projection",
    "InputPopulation",
    "ModelCardError",
    "NetworkSpecError",
    "DeviceError",
]
