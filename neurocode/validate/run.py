"""Validate a trained NetworkSpec in Brian2 against the torch engine that trained it.

Two kinds of network are recognised from ``spec.metadata``:

* **exact TTFS** (``model`` one of :data:`neurocode.torch.ttfs_models.MODELS`: the ramp
  neuron of :mod:`neurocode.torch.ttfs` or the constant-slope one of
  :mod:`neurocode.torch.constant_slope`): inputs spike at ``t_input (1 - x)``; the torch
  reference is the closed-form layer. Silent ramp neurons get
  their window's end as spike time in torch, so the Brian2 network gets the same rule
  (:func:`~neurocode.validate.variants.window_end_rule`); the answer is the first output
  spike (ties: lowest index, as ``argmin``). By default (``timing="auto"``) spike times are
  interpolated within the time step and input times rounded to the nearest step
  (:mod:`neurocode.validate.timing`); ``timing="grid"`` keeps Brian2's step times.
* **spiking rank coding** (``task == "rank_coding"``, :class:`~neurocode.torch.classifiers.
  SpikingRCClassifier`): pixels spike once at ``step * dt`` (:mod:`neurocode.data.temporal`);
  the torch reference is :class:`~neurocode.torch.runner.NetworkRunner` on the same spec;
  the answer is the first output spike within ``steps`` steps, -1 if none.

The torch prediction always comes from the spec as trained; variants and ``dt`` change only
the Brian2 network, so agreement measures how well the answers survive the change.
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np

from neurocode.cards.stale import choose_cards
from neurocode.errors import NetworkSpecError
from neurocode.objectives.decision import first_spike_decision
from neurocode.validate import compare
from neurocode.validate.present import DEFAULT_CHUNK, TrialInputs, present, present_on_cluster
from neurocode.validate.timing import grid_times, interpolated_timing
from neurocode.validate.variants import apply_variants, window_end_rule

logger = logging.getLogger(__name__)

#: How Brian2 spike times are obtained (see module docstring).
TIMINGS = ("auto", "interpolated", "grid")


def _total_delay(spec):
    return float(sum(p.delays.max() for p in spec.projections if p.delays is not None and p.delays.size))


class TTFSTask:
    """Encoding, torch reference and decision of an exact TTFS network."""

    kind = "ttfs"

    def __init__(self, spec):
        meta = spec.metadata
        if spec.encoding is None or spec.encoding.kind != "latency":
            raise NetworkSpecError("a TTFS network needs a 'latency' input encoding (written by TTFSNetwork.to_spec)")
        for key in ("tau_s", "windows"):
            if key not in meta:
                raise NetworkSpecError(f"TTFS spec metadata lacks '{key}' (written by TTFSNetwork.to_spec)")
        self.tau_s, self.t_input = float(meta["tau_s"]), float(spec.encoding.t_input)
        self.windows = [float(w) for w in meta["windows"]]
        self.input = spec.encoding.population
        self.layers = list(spec.populations)
        self.output = spec.readout.population if spec.readout else self.layers[-1]
        self.n_in = spec.inputs[self.input].size

    def encode(self, x):
        """Input spike times (s), ``(n, n_in)``."""
        from neurocode.data.encoding import latency_encode
        return latency_encode(np.asarray(x, dtype=np.float64), self.t_input)

    def trials(self, x, spec):
        """Input spikes; on the time grid of ``spec`` when its spike times are interpolated."""
        t = self.encode(x)
        if spec.metadata.get("timing") == "interpolated":
            t = grid_times(t, spec.dt)
        return TrialInputs.from_times(self.input, t)

    def period(self, spec):
        return self.windows[-1] + 2 * spec.dt + _total_delay(spec)

    def brian_spec(self, spec, timing="auto"):
        """The Brian2 version: interpolated spike times unless ``timing="grid"``.

        The ``ttfs`` card fires silent neurons at their window's end (``t_end``); specs saved
        with an older card, without that rule, get it from :func:`window_end_rule`.

        ``"auto"`` interpolates where the cards allow it (no leak, conductance or delay
        variant) and keeps step times otherwise; ``"interpolated"`` raises where they do not.
        """
        if any("t_end" not in pop.card.defaults for pop in spec.populations.values()):
            spec = window_end_rule(spec)          # a spec saved before the card carried its window
        if timing == "grid":
            return spec
        try:
            return interpolated_timing(spec)
        except ValueError as exc:           # VariantError and NetworkSpecError
            if timing == "interpolated":
                raise
            logger.info("spike times on the time grid: %s", exc)
            return spec

    def torch_reference(self, spec, x, batch=1000):
        """Per layer, first spike times (s, ``inf`` if silent) and the answers."""
        import torch

        from neurocode.torch.ttfs_models import network_from_spec

        net = network_from_spec(spec).double()
        t_in = self.encode(x) / self.tau_s
        layers = [[] for _ in self.layers]
        with torch.no_grad():
            for s in range(0, len(t_in), batch):
                for k, t in enumerate(net(torch.from_numpy(t_in[s:s + batch]))):
                    layers[k].append(t.numpy())
        times = [np.concatenate(t) for t in layers]
        answer = first_spike_decision(times[-1])
        first = {name: np.where(t < w / self.tau_s, t * self.tau_s, np.inf)
                 for name, t, w in zip(self.layers, times, self.windows)}
        return first, answer

    def brian_reference(self, spikes, spec):
        """Per layer, first real spike times (forced window-end spikes -> ``inf``) and answers."""
        first, answer = {}, None
        for name, w in zip(self.layers, self.windows):
            t = spikes.first_spike_times(name)
            if name == self.output:
                answer = first_spike_decision(t)
            first[name] = np.where(t < w - 1e-3 * spec.dt, t, np.inf)
        return first, answer


class RCTask:
    """Encoding, torch reference and decision of a spiking rank-coding classifier."""

    kind = "rank_coding"

    def __init__(self, spec):
        enc = spec.encoding
        if enc is None or enc.kind != "spike_steps":
            raise NetworkSpecError(f"rank-coding spec: input encoding {enc and enc.kind!r} cannot be presented as "
                                   "spikes in Brian2; only 'spike_steps' is supported")
        if not enc.steps:
            raise NetworkSpecError("rank-coding spec: its encoding lacks 'steps' (pass steps= to to_spec)")
        self.steps, self.dt = int(enc.steps), float(spec.metadata.get("dt", spec.dt))
        self.input = enc.population
        self.output = spec.readout.population if spec.readout else list(spec.populations)[-1]
        self.layers = list(spec.populations)
        self.n_in = spec.inputs[self.input].size

    def encode(self, x):
        """Spike step per pixel (-1: none), ``(n, n_in)``."""
        from neurocode.data.temporal import spike_steps
        return spike_steps(x, self.steps)

    def trials(self, x, spec):
        steps = self.encode(x).astype(np.float64)
        return TrialInputs.from_times(self.input, np.where(steps >= 0, steps * self.dt, np.nan))

    def period(self, spec):
        return self.steps * self.dt + _total_delay(spec)

    def brian_spec(self, spec, timing="auto"):
        if timing == "interpolated":
            raise NetworkSpecError("timing='interpolated' applies to exact TTFS networks only; the spiking "
                                   "rank-coding network is validated on the time grid it was trained on")
        return spec

    def _window(self, t):
        return np.where(t < self.steps * self.dt - 1e-9, t, np.inf)

    def torch_reference(self, spec, x, batch=500):
        import torch

        from neurocode.torch.runner import NetworkRunner

        runner = NetworkRunner(spec, dtype=torch.float64)
        steps = self.encode(x)
        firsts = {name: [] for name in self.layers}
        with torch.no_grad():
            for s in range(0, len(steps), batch):
                st = torch.from_numpy(steps[s:s + batch].astype(np.int64))
                drive = (st.unsqueeze(0) == torch.arange(self.steps).view(-1, 1, 1)).double()   # (T, B, n)
                out = runner({self.input: drive}, steps=self.steps)
                for name in self.layers:
                    spk = out.spikes[name] > 0                                     # (T, B, n)
                    any_ = spk.any(0)
                    step = spk.double().argmax(0)                                  # first True
                    firsts[name].append(np.where(any_.numpy(), step.numpy() * self.dt, np.inf))
        first = {name: np.concatenate(v) for name, v in firsts.items()}
        return first, first_spike_decision(first[self.output])

    def brian_reference(self, spikes, spec):
        first = {name: self._window(spikes.first_spike_times(name)) for name in self.layers}
        return first, first_spike_decision(first[self.output])


def task_for(spec):
    """The task object for a spec, from its typed input encoding."""
    kind = spec.encoding.kind if spec.encoding is not None else None
    if kind == "latency":
        return TTFSTask(spec)
    if kind == "spike_steps":
        return RCTask(spec)
    raise NetworkSpecError(f"cannot tell how to present and decode this network: its input encoding is {kind!r}; "
                           "validation needs 'latency' (exact TTFS, TTFSNetwork.to_spec) or 'spike_steps' "
                           "(spiking rank coding, SpikingRCClassifier.to_spec)")


def validate_spec(spec, x, y, device="cpp_standalone", variants=(), dt=None, chunk=DEFAULT_CHUNK, threads=1,
                  directory=None, progress=False, seed=0, card_dir=None, compile_only=False, timing="auto",
                  card_source="stored", scheduler=None):
    """Run samples ``x`` (labels ``y``) through ``spec`` in Brian2 and compare with torch.

    Parameters
    ----------
    spec : NetworkSpec
        A trained network (TTFS or spiking rank coding, see module docstring).
    x : ndarray, shape (n, n_in)
        Pixel intensities in [0, 1].
    y : ndarray, shape (n,)
        Labels.
    device : {"cpp_standalone", "runtime", "cuda_standalone"}
    variants : sequence of str or (str, float)
        Detailed-dynamics variants (:mod:`neurocode.validate.variants`) for the Brian2 network.
    dt : float, optional
        Brian2 time step (s); default the spec's.
    chunk, threads, directory, progress
        See :func:`~neurocode.validate.present.present`.
    seed : int
        Seeds the random variants (delays, heterogeneity).
    card_dir : str or Path, optional
        Card library for the staleness check (default: the file each card was read from, else
        ``equations/``).
    compile_only : bool
        Only build the Brian2 project (``cuda_standalone`` without a GPU).
    timing : {"auto", "interpolated", "grid"}
        Spike times within the step or on the grid (TTFS; see module docstring).
    card_source : {"stored", "current"}
        Card text of a card whose file changed since training: the one stored in the spec, or
        the file as it is now (:func:`neurocode.cards.stale.choose_cards`; a warning says which).
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://HOST:PORT``): each chunk of samples is one task
        on its workers (:func:`~neurocode.validate.present.present_on_cluster`); not with
        ``compile_only``.

    Returns
    -------
    dict
        ``accuracy_brian2``, ``accuracy_torch``, ``agreement``, per layer ``spike_time`` errors
        (s and steps) and ``spikes_per_neuron`` of both engines, plus run facts and timings.
    """
    if timing not in TIMINGS:
        raise NetworkSpecError(f"timing must be one of {TIMINGS}, got {timing!r}")
    spec = choose_cards(spec, card_source, card_dir)
    task = task_for(spec)
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape[1] != task.n_in:
        raise NetworkSpecError(f"samples must be (n, {task.n_in}) for input '{task.input}', got {x.shape}")
    if y.shape != (x.shape[0],):
        raise NetworkSpecError(f"labels must be ({x.shape[0]},), got {y.shape}")
    n_out = spec.size(task.output)
    if y.size and not (np.issubdtype(y.dtype, np.integer) and 0 <= y.min() and y.max() < n_out):
        raise NetworkSpecError(f"labels must be integers in [0, {n_out}) for the {n_out} neurons of output "
                               f"'{task.output}', got {y.dtype} values in [{y.min()}, {y.max()}]")
    brian = copy.copy(spec)
    if dt is not None:
        if not 0 < dt < np.inf:
            raise NetworkSpecError(f"dt must be > 0 s and finite, got {dt}")
        if dt > spec.dt * (1 + 1e-9):
            logger.warning("validating at dt = %g ms, coarser than the %g ms the network was trained at: "
                           "spike times move to a coarser grid and agreement with torch can drop sharply",
                           dt * 1e3, spec.dt * 1e3)
        brian.dt = float(dt)
    brian = task.brian_spec(apply_variants(brian, variants, seed=seed), timing)
    t0 = time.perf_counter()
    ref_first, ref_answer = task.torch_reference(spec, x)
    t_torch = time.perf_counter() - t0
    if scheduler and not compile_only:
        from neurocode.cluster import client

        with client(scheduler) as c:
            spikes = present_on_cluster(c, brian, task.trials(x, brian), task.period(brian), device=device,
                                        chunk=chunk, threads=threads)
    else:
        spikes = present(brian, task.trials(x, brian), task.period(brian), device=device, chunk=chunk,
                         threads=threads, directory=directory, progress=progress, compile_only=compile_only)
    report = {"kind": task.kind, "device": device, "n_samples": int(len(y)), "dt": brian.dt,
              "timing": brian.metadata.get("timing", "grid"),
              "variants": brian.metadata.get("variants", []), "compiled_only": spikes is None}
    if spikes is None:
        return report
    first, answer = task.brian_reference(spikes, brian)
    report.update({
        "accuracy_brian2": compare.accuracy(answer, y), "accuracy_torch": compare.accuracy(ref_answer, y),
        "agreement": compare.agreement(answer, ref_answer), "no_answer_brian2": float(np.mean(answer < 0)),
        "layers": {}, "timings_s": dict(spikes.timings, torch=t_torch), "presentation": spikes.info})
    for name in task.layers:
        err = compare.spike_time_error(first[name], ref_first[name], brian.dt)
        report["layers"][name] = {
            "size": brian.size(name), "spike_time": err,
            "spikes_per_neuron_brian2": compare.spikes_per_neuron(np.isfinite(first[name])),
            "spikes_per_neuron_torch": compare.spikes_per_neuron(np.isfinite(ref_first[name])),
            "spikes_per_neuron_brian2_all": compare.spikes_per_neuron(spikes.counts(name))}
    report["_answers"] = {"brian2": answer, "torch": ref_answer, "labels": y}
    return report


def load_samples(name, samples=None, root=None):
    """Test images ``(x, y)`` of dataset ``name`` (:func:`neurocode.data.load_images`), the first ``samples``."""
    from neurocode.data.images import load_images

    x, y = load_images(name, "test", root=root)
    if samples is not None:
        if samples < 1:
            raise NetworkSpecError(f"samples must be >= 1, got {samples}")
        x, y = x[:samples], y[:samples]
    return x, y


def run_dataset(run_dir, spec):
    """Dataset name and root of a run: its ``config.toml`` ``[data]``, else the spec metadata."""
    import tomllib

    config = run_dir / "config.toml"
    if config.is_file():
        try:
            saved = tomllib.loads(config.read_text())
            task = saved.get("task")               # rank-coding runs name their task
            if task in ("mnist", "fashion_mnist"):
                return ("mnist5k" if task == "mnist" else "fashion_mnist"), None
            data = saved.get("data", {})
        except tomllib.TOMLDecodeError as exc:
            raise NetworkSpecError(f"{config}: not valid TOML: {exc}; pass the dataset with data=NAME (--data)") \
                from None
        if data.get("name"):
            return data["name"], data.get("root") or None
    meta = spec.metadata
    data = meta.get("data")
    name = meta.get("dataset") or (data.get("name") if isinstance(data, dict) else data)
    if not name:
        raise NetworkSpecError(f"{run_dir}: cannot tell the dataset (no config.toml [data] name and no "
                               "'dataset' in the spec metadata); pass data=NAME (--data)")
    return name, None


def report_name(device, variants=(), dt=None, timing="auto"):
    """File name of a validation report: ``validation-<device>[-<variants>][-dt<dt>][-<timing>].json``."""
    parts = [device] + [f"{n}{s:g}" for n, s in variants]
    if dt is not None:
        parts.append(f"dt{dt * 1e3:g}ms")
    if timing != "auto":
        parts.append(timing)
    return "validation-" + "-".join(parts) + ".json"


def validate_run(run_dir, device="cpp_standalone", variants=(), samples=None, dt=None, out=None, data=None,
                 root=None, chunk=DEFAULT_CHUNK, threads=1, progress=False, seed=0, compile_only=False,
                 timing="auto", card_source="stored", overwrite=False, scheduler=None):
    """Validate the network of a training run folder and write the report there (or into ``out``).

    ``run_dir`` holds ``network.npz`` (the trained NetworkSpec) and, for TTFS runs,
    ``config.toml`` naming the dataset; ``scheduler`` as in :func:`validate_spec`. Returns
    ``(report, path)``; the report is written atomically as JSON. An existing report of the
    same settings is refused before any work unless ``overwrite``.
    """
    from pathlib import Path

    from neurocode.io import check_output_dir, write_json
    from neurocode.spec import NetworkSpec
    from neurocode.validate.variants import parse_variant

    run_dir = Path(run_dir)
    spec_path = run_dir
    if run_dir.is_dir():
        spec_path = run_dir / "network.npz"
    if not spec_path.is_file():
        raise NetworkSpecError(f"no trained network at {spec_path} (a training run folder holds network.npz)")
    if root is not None and not data:
        raise NetworkSpecError("a dataset folder (root, --root) needs the dataset name (data, --data)")
    variants = [parse_variant(v) if isinstance(v, str) else tuple(v) for v in variants or ()]
    name_of_report = report_name(device, variants, dt, timing)
    path = check_output_dir(out or spec_path.parent, [name_of_report], overwrite) / name_of_report
    spec = NetworkSpec.load(spec_path)
    name, data_root = (data, root) if data else run_dataset(spec_path.parent, spec)
    x, y = load_samples(name, samples, data_root)
    report = validate_spec(spec, x, y, device=device, variants=variants, dt=dt, chunk=chunk, threads=threads,
                           progress=progress, seed=seed, compile_only=compile_only, timing=timing,
                           card_source=card_source, scheduler=scheduler)
    report.pop("_answers", None)
    report.update(run=str(spec_path), dataset=name)
    write_json(path, report)
    return report, path
