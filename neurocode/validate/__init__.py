"""Validation of trained networks in Brian2, under the trained and under detailed dynamics.

* :mod:`~neurocode.validate.present` -- many trials per compiled Brian2 run (state reset at
  each trial start, chunks re-run through ``run_args``);
* :mod:`~neurocode.validate.variants` -- leak, conductance synapses, delays, noise,
  heterogeneity, weight quantisation and time step, as spec/card transformations;
* :mod:`~neurocode.validate.compare` -- accuracy, agreement, spike-time error;
* :mod:`~neurocode.validate.run` -- :func:`validate_spec` (a spec and samples) and
  :func:`validate_run` (a training run folder).

>>> sorted(VARIANTS)
['conductance', 'delays', 'dt', 'heterogeneity', 'leak', 'noise', 'quantize']

See ``docs/validate.md``.
"""

from neurocode.validate.present import TrialInputs, TrialSpikes, present, present_on_cluster
from neurocode.validate.run import load_samples, task_for, validate_run, validate_spec
from neurocode.validate.variants import VARIANTS, VariantError, apply_variants, parse_variant

__all__ = ["present", "present_on_cluster", "TrialInputs", "TrialSpikes", "validate_spec", "validate_run",
           "task_for", "load_samples", "apply_variants", "parse_variant", "VARIANTS", "VariantError"]
