"""The Brian2 side: build a network from a NetworkSpec and run it on a device.

>>> from neurocode.brian import simulate, SimResult, StandaloneSession
>>> sorted(DEVICES)
['cpp_standalone', 'cuda_standalone', 'runtime']

See ``docs/simulate.md`` for devices, standalone re-runs, CUDA without a GPU and projects
built here and run elsewhere (:mod:`neurocode.brian.project`).
"""

from neurocode.brian.builder import BuiltNetwork, build_network
from neurocode.brian.core import simulate
from neurocode.brian.devices import DEVICES, device_context, gpu_present
from neurocode.brian.project import build_project, collect_project, set_run_data
from neurocode.brian.result import SimResult
from neurocode.brian.standalone import StandaloneSession

__all__ = ["simulate", "SimResult", "StandaloneSession", "build_network", "BuiltNetwork", "DEVICES",
           "device_context", "gpu_present", "build_project", "collect_project", "set_run_data"]
