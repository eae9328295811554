"""The demo report's words: a headline, a short narrative and a table per stage.

``report_sections(results, settings)`` turns the four stage results of ``run.py`` (the
dicts stored in each ``stage.json``) into the title, introduction and
:class:`~neurocode.figures.report.Section` list of ``report.html``.
"""

from __future__ import annotations

import pandas as pd

from neurocode.figures.report import Section


def _pct(x):
    return f"{100 * x:.1f} %"


def network_section(r, s):
    table = pd.DataFrame([
        {"": "neurons (excitatory / inhibitory)", "value": f"{r['n_neurons']} ({r['n_exc']} / "
                                                           f"{r['n_neurons'] - r['n_exc']})"},
        {"": "recurrent synapses", "value": f"{r['n_synapses']:,}"},
        {"": "τ_m mean, CV, range", "value": f"{r['tau_m_ms']['mean']:.1f} ms, {r['tau_m_ms']['cv']:.2f}, "
                                             f"{r['tau_m_ms']['min']:.1f}-{r['tau_m_ms']['max']:.1f} ms"},
        {"": "rate: all / E / I", "value": f"{r['rate_hz']['all']:.1f} / {r['rate_hz']['excitatory']:.1f} / "
                                           f"{r['rate_hz']['inhibitory']:.1f} Hz"},
        {"": "mean CV of ISI", "value": f"{r['mean_cv_isi']:.2f}"},
        {"": "correlation of rate with τ_m", "value": f"{r['corr_rate_tau_m']:+.2f}"},
        {"": "Brian2 compile / run", "value": f"{r['timings_s'].get('compile', 0):.1f} s / "
                                              f"{r['timings_s'].get('run', 0):.2f} s"},
    ])
    text = (f"A network is written once, as Brian2 equations in a model card (here `{s['card']}`: leaky "
            f"integrate-and-fire with current synapses). Its membrane time constants are drawn per neuron from "
            f"the card's heterogeneity rule (gamma distribution), 80 % of the neurons excite and the rest inhibit, "
            f"and 100 Poisson sources drive it. Brian2 generates a C++ program from the spec (cpp_standalone), "
            f"compiles and runs it for {s['duration_s']:g} s.\n\n"
            "Left raster: excitatory (red) above inhibitory (blue) neurons; right: the same spikes coloured by "
            "each neuron's τ_m. Within each group rows are sorted by τ_m, so the gradient of firing along the "
            "rows shows how the time constant shapes activity.")
    return Section("1 · A heterogeneous network from a card, in Brian2 C++ standalone", text,
                   headline=f"{r['n_neurons']} neurons, τ_m CV {r['tau_m_ms']['cv']:.2f}: E "
                            f"{r['rate_hz']['excitatory']:.1f} Hz, I {r['rate_hz']['inhibitory']:.1f} Hz",
                   tables=[table],
                   figures=[(r["figures"]["raster"], "Raster coloured by neuron type and by membrane time constant"),
                            (r["figures"]["rates"], "Firing rates of excitatory and inhibitory neurons, and "
                                                    "against τ_m")])


def training_section(r, s):
    nets = r["networks"]
    base = nets["no SSR"]["spikes_per_hidden_neuron"]
    table = pd.DataFrame([{"network": name, "regulariser": n["regulariser"], "γ": f"{n['gamma']:g}",
                           "test accuracy": _pct(n["accuracy"]),
                           "spikes per hidden neuron": f"{n['spikes_per_hidden_neuron']:.3f}",
                           "vs no SSR": f"{n['spikes_per_hidden_neuron'] / base:.2f} ×"}
                          for name, n in nets.items()])
    a, b = nets["no SSR"], nets["M-SSR"]
    text = (f"The same kind of card, read by torch, becomes a time-to-first-spike (TTFS) network "
            f"784-{s['hidden']}-10: each pixel spikes once, earlier when brighter, and the first output neuron to "
            f"fire names the class. Exact spike-time gradients train it on {s['train_subset']:,} Fashion-MNIST "
            f"images for {s['epochs']} epochs; accuracy is measured on {s['test_subset']:,} test images.\n\n"
            f"Trained twice: without a firing penalty, and with M-SSR (γ = {b['gamma']:g}), which penalises the "
            f"membrane potential's excursion above threshold and so makes hidden neurons fire less. The dots "
            f"trace each run epoch by epoch; the large markers are the final networks with ± 1 standard error "
            f"of the accuracy. M-SSR changes the test accuracy by {100 * (b['accuracy'] - a['accuracy']):+.1f} "
            f"percentage points and fires {r['spike_ratio']:.2f} × the hidden spikes.")
    return Section("2 · A TTFS network trained in torch, with and without M-SSR", text,
                   headline=f"{_pct(a['accuracy'])} without SSR; {_pct(b['accuracy'])} with M-SSR at "
                            f"{r['spike_ratio']:.2f} × the hidden spikes",
                   tables=[table],
                   figures=[(r["figures"]["tradeoff"], "Test accuracy against hidden spikes per neuron, per epoch")])


def brian2_section(r):
    table = pd.DataFrame([{"network": row["network"], "torch": _pct(row["accuracy_torch"]),
                           "Brian2": _pct(row["accuracy_brian2"]), "same answer": _pct(row["agreement"]),
                           "hidden spikes torch / Brian2": f"{row['hidden_spikes_torch']:.3f} / "
                                                           f"{row['hidden_spikes_brian2']:.3f}",
                           "spike times within one dt": _pct(row["spike_time_within_dt"]),
                           "compile / run (s)": f"{row['compile_s']:.0f} / {row['run_s']:.1f}"}
                          for row in r["networks"]])
    worst = min(r["networks"], key=lambda row: row["agreement"])
    text = (f"The trained weights travel as a NetworkSpec file back into Brian2, which builds each network from "
            f"the card's equations, compiles it to C++ and presents the first {r['samples']} test images one after "
            "the other (another subset than stage 2's, hence other accuracies). The Brian2 answers are compared "
            "image by image with the torch answers on the same images: the two engines share one schedule, so "
            "they should agree up to spike times that fall on the other "
            "side of a time-step boundary.\n\n"
            "The right panel counts hidden spikes over the whole Brian2 trial (late spikes after a layer's "
            "window included, which the window-limited count of stage 2 leaves out) in both engines: the same "
            "count in each means the trained network fires the same way in Brian2.")
    return Section("3 · Both networks back in Brian2", text,
                   headline=f"same answer on ≥ {_pct(worst['agreement'])} of {r['samples']} images "
                            f"(lowest: {worst['network']})",
                   tables=[table],
                   figures=[(r["figures"]["agreement"], "Accuracy in each engine, answer agreement and hidden spikes")])


def _excluded(r):
    out = r.get("excluded_conditions") or []
    if not out:
        return ""
    return (f" {len(out)} further condition(s) were left out of the mean: their largest exponent "
            f"({', '.join(f'{x:.0f}' for x in out)} 1/s) comes from a tangent blow-up at a threshold crossing that "
            "grazes the threshold, a known weakness of the exact treatment.")


def lyapunov_section(r, s):
    lam, se = r["exponents_per_s"], r["stderr_per_s"]
    table = pd.DataFrame([{"i": i + 1, "λ_i (1/s)": f"{x:.2f}", "± s.e.": f"{e:.2f}"}
                          for i, (x, e) in enumerate(zip(lam, se))][:6])
    verdict = (f"converged after {r['t_averaged_s']:g} s of averaging (drift and standard error of every exponent "
               f"within {100 * s['rtol']:g} % or {s['atol_per_s']:g} 1/s)" if r["converged"] else
               f"did NOT converge within the cap of {r['t_averaged_s']:g} s: the bars are wider than asked")
    text = (f"Back to the stage-1 network: its Lyapunov spectrum, measured on the same torch engine with "
            f"exact spike-time (saltation) corrections, under a frozen Poisson drive with the input's mean rate "
            f"({r['drive']['rate_hz']:.0f} Hz per neuron). The {len(lam)} largest exponents are averaged over "
            f"{r['n_conditions']} initial conditions, block by block until the estimate stops moving; the "
            f"spectrum {verdict}.{_excluded(r)}\n\n"
            "A negative largest exponent means perturbations die out (a stable network); a positive one means "
            "chaos. These exponents are what Lyapunov Noise Pruning uses to thin a network while keeping it "
            "stable.")
    return Section("4 · The network's Lyapunov spectrum", text,
                   headline=f"λ₁ = {lam[0]:.2f} ± {se[0]:.2f} 1/s "
                            f"({'converged' if r['converged'] else 'not converged'})",
                   tables=[table],
                   figures=[(r["figures"]["spectrum"], "Lyapunov exponents with ± 1 standard error")])


def report_sections(results, settings):
    """Title, introduction and the four sections of the demo report."""
    intro = ("neurocode writes a spiking network once, as Brian2 equations, simulates it in Brian2 (interpreted, "
             "C++ or CUDA), trains it in PyTorch with the same equations, checks the trained network back in "
             "Brian2, and measures its stability with Lyapunov spectra. This page shows that pipeline on one "
             "machine in a few minutes.")
    sections = [network_section(results["network"], settings["network"]),
                training_section(results["training"], settings["training"]),
                brian2_section(results["brian2"]),
                lyapunov_section(results["lyapunov"], settings["lyapunov"])]
    return "neurocode demo: from a card to a trained, validated, analysed network", intro, sections
