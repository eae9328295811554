"""The network map on a flat state vector, for Jacobians and Lyapunov spectra.

:func:`flat_map` turns a :class:`PopulationDynamics` or a :class:`NetworkRunner` into
``f(x) -> x_next`` on a ``(batch, n_state)`` tensor (state variables concatenated in a fixed
order). Spikes go through the spike function: with a Heaviside spike function the forward
values are exact and derivatives (``torch.func.jvp``, ``torch.autograd``) use the surrogate
derivative, so the Jacobian is a *smooth approximation* of the true (discontinuous) map;
with ``surrogate.sigmoid`` the map itself is smooth. ``lastspike``, refractoriness and
inputs are held fixed (no input, ``lastspike`` from the template state).

>>> import torch
>>> from neurocode.torch.dynamics import PopulationDynamics
>>> dyn = PopulationDynamics("lif", n=4, dt=1e-4, dtype=torch.float64)
>>> fmap = flat_map(dyn)
>>> x = fmap.pack(dyn.initial_state(2))
>>> tuple(x.shape), fmap.layout
((2, 8), [('I_syn', 4), ('v', 4)])
>>> y, dy = torch.func.jvp(fmap, (x,), (torch.ones_like(x),))
>>> tuple(dy.shape)
(2, 8)
"""

from __future__ import annotations

import torch

from neurocode.torch.dynamics import PopulationDynamics


class FlatMap:
    """``f(x) -> x_next`` over a flat state; :meth:`pack` / :meth:`unpack` convert."""

    def __init__(self, target, template, t):
        self.target, self.template, self.t = target, template, float(t)
        if isinstance(target, PopulationDynamics):
            self._parts = [(None, name, target.n) for name in target.state_names]
        else:
            for proj in target.projections:
                if proj.max_delay > 0:
                    raise ValueError(f"flat_map needs zero-delay projections; '{proj.name}' has delays "
                                     f"up to {proj.max_delay} steps (the ring buffer is not part of the flat state)")
            self._parts = [(pop, name, dyn.n) for pop, dyn in target.populations.items()
                           for name in dyn.state_names]

    @property
    def layout(self):
        """``[(name, size)]`` in packing order (``pop.var`` for a runner)."""
        return [((f"{pop}.{name}" if pop else name), n) for pop, name, n in self._parts]

    def pack(self, state):
        """Flat (batch, n_state) tensor from a state dict."""
        return torch.cat([(state[pop][name] if pop else state[name]) for pop, name, _ in self._parts], dim=-1)

    def unpack(self, x):
        """State dict from a flat tensor (``lastspike`` etc. from the template)."""
        chunks = torch.split(x, [n for _, _, n in self._parts], dim=-1)
        if isinstance(self.target, PopulationDynamics):
            state = dict(self._template(x.shape[0]))
            state.update({name: c for (_, name, _), c in zip(self._parts, chunks)})
            return state
        state = {pop: dict(s) for pop, s in self._template(x.shape[0]).items()}
        for (pop, name, _), c in zip(self._parts, chunks):
            state[pop][name] = c
        return state

    def _template(self, batch):
        if self.template is None:
            self.template = self.target.initial_state(batch)
        return self.template

    def __call__(self, x):
        state = self.unpack(x)
        if isinstance(self.target, PopulationDynamics):
            _, new = self.target.step(state, self.t)
            return self.pack(new)
        steps = torch.zeros(1, x.shape[0], 1, dtype=x.dtype, device=x.device)
        inputs = {name: steps.expand(1, x.shape[0], inp.size) for name, inp in self.target.spec.inputs.items()}
        out = self.target(inputs=inputs, steps=1, batch=x.shape[0], state=state, t0=self.t)
        return self.pack(out.final_state)


def flat_map(target, state=None, t=0.0):
    """The one-step map of a population or a runner on a flat state vector.

    Parameters
    ----------
    target : PopulationDynamics or NetworkRunner
    state : dict, optional
        Template for variables outside the flat state (``lastspike``); default: initial state.
    t : float
        Time of the step (s).

    Returns
    -------
    FlatMap
        Callable ``f(x)`` with ``pack``, ``unpack`` and ``layout``.
    """
    return FlatMap(target, state, t)
