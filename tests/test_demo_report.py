"""The demo report: self-contained HTML whose every image loads in a headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

from neurocode.errors import ConfigError
from neurocode.figures.report import Section, png_data_uri, write_report

matplotlib.use("Agg")
DEMO = Path(__file__).resolve().parents[1] / "studies" / "demo"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: appended to the page: writes how many images decoded (naturalWidth > 0) into the DOM
PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.insertAdjacentHTML("beforeend",
    `<pre id="probe">images=${imgs.length} loaded=${ok}</pre>`);
});
</script>"""


def _png(path, color):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1], color=color)
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def fake_results(folder):
    """Small stage results shaped like run.py's, with real PNG figures."""
    figs = {name: _png(folder / f"{name}.png", c) for name, c in
            (("raster", "r"), ("rates", "b"), ("tradeoff", "g"), ("agreement", "k"), ("spectrum", "m"))}
    net = {"n_neurons": 10, "n_exc": 8, "n_synapses": 9, "tau_m_ms": {"mean": 20, "cv": 0.5, "min": 5, "max": 40},
           "rate_hz": {"all": 5, "excitatory": 4, "inhibitory": 9}, "mean_cv_isi": 0.8, "corr_rate_tau_m": -0.2,
           "timings_s": {"compile": 1.0, "run": 0.1}, "figures": {k: figs[k] for k in ("raster", "rates")}}
    nets = {"no SSR": {"regulariser": "none", "gamma": 0.0, "accuracy": 0.82, "spikes_per_hidden_neuron": 0.6},
            "M-SSR": {"regulariser": "m_ssr", "gamma": 2e-4, "accuracy": 0.81, "spikes_per_hidden_neuron": 0.3}}
    row = {"accuracy_torch": 0.8, "accuracy_brian2": 0.79, "agreement": 0.97, "hidden_spikes_torch": 0.5,
           "hidden_spikes_brian2": 0.5, "spike_time_within_dt": 0.99, "compile_s": 9.0, "run_s": 1.0}
    return {"network": net,
            "training": {"networks": nets, "spike_ratio": 0.5, "figures": {"tradeoff": figs["tradeoff"]}},
            "brian2": {"samples": 30, "networks": [{"network": n, **row} for n in nets],
                       "figures": {"agreement": figs["agreement"]}},
            "lyapunov": {"exponents_per_s": [-1.0, -5.0], "stderr_per_s": [0.1, 0.2], "converged": True,
                         "t_averaged_s": 2.0, "n_conditions": 4, "drive": {"rate_hz": 400.0},
                         "figures": {"spectrum": figs["spectrum"]}}}


@pytest.fixture
def demo_report(tmp_path):
    sys.path.insert(0, str(DEMO))
    try:
        from narrative import report_sections
    finally:
        sys.path.remove(str(DEMO))
    settings = {"network": {"card": "lif", "duration_s": 1.0}, "lyapunov": {"rtol": 0.05, "atol_per_s": 2.0},
                "training": {"hidden": 100, "train_subset": 100, "test_subset": 50, "epochs": 1}}
    title, intro, sections = report_sections(fake_results(tmp_path), settings)
    return write_report(tmp_path / "report.html", title, sections, intro)


def test_report_is_self_contained(demo_report):
    page = demo_report.read_text()
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert len(sources) == 5
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(?:src|href)="(?!data:)', page)        # no file or network reference
    for headline in ("82.0 % without SSR", "0.50 × the hidden spikes", "λ₁ = -1.00 ± 0.10 1/s (converged)"):
        assert headline in page


def test_report_refuses_a_missing_or_foreign_figure(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        png_data_uri(tmp_path / "absent.png")
    (tmp_path / "fake.png").write_text("not a png")
    with pytest.raises(ConfigError, match="is not a PNG file"):
        write_report(tmp_path / "r.html", "t", [Section("s", figures=[(tmp_path / "fake.png", "x")])])


def _loaded_images(page, folder):
    """``images=N loaded=M`` as headless Chromium reports it for ``page`` (HTML text)."""
    probe = folder / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    profile = folder / "profile"
    profile.mkdir(exist_ok=True)
    dom = subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--virtual-time-budget=5000",
                          f"--user-data-dir={profile}", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    found = re.search(r"images=\d+ loaded=\d+", dom)
    assert found, f"no probe result in the DOM: {dom[-300:]!r}"
    return found.group(0)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make setup installs it)")
def test_every_image_loads_in_headless_chromium(demo_report, tmp_path):
    page = demo_report.read_text()
    assert _loaded_images(page, tmp_path) == "images=5 loaded=5"
    # the probe sees a broken image: one data URI cut short no longer decodes
    broken = re.sub(r'(<img src="data:image/png;base64,)([^"]{60})[^"]*"', r'\1\2"', page, count=1)
    assert _loaded_images(broken, tmp_path) == "images=5 loaded=4"


def test_heterogeneity_raster_puts_excitatory_above_and_sorts_by_tau(tmp_path):
    import numpy as np
    import pandas as pd

    from neurocode.brian import SimResult
    from neurocode.figures.activity import heterogeneity_raster, rates_by_type

    tau = np.array([30, 10, 20, 40, 15, 25]) * 1e-3
    idx = np.array([0, 1, 2, 3, 4, 5, 5, 1])
    times = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.9, 0.5])
    result = SimResult(spikes={"net": (idx, times)}, states={}, t=np.zeros(0), duration=1.0,
                       device="runtime", sizes={"net": 6})
    png = heterogeneity_raster(result, tmp_path / "raster", "net", tau, n_exc=4, max_neurons=5, window_s=0.8)
    assert png.is_file()
    d = pd.read_csv(tmp_path / "raster.csv").drop_duplicates("neuron").set_index("neuron")
    assert sorted(d.index) == [0, 1, 2, 4, 5]                     # 3 of 4 E and 2 of 2 I in 5 rows
    assert d.loc[[0, 1, 2], "row"].min() > d.loc[[4, 5], "row"].max()   # excitatory above inhibitory
    assert list(d.loc[[0, 1, 2], "row"].sort_values(ascending=False).index) == [1, 2, 0]  # by tau_m
    assert list(d.loc[[4, 5], "row"].sort_values(ascending=False).index) == [4, 5]
    assert pd.read_csv(tmp_path / "raster.csv")["time_s"].max() < 0.8
    rates_by_type(result, tmp_path / "rates", "net", tau, n_exc=4)
    rates = pd.read_csv(tmp_path / "rates.csv")
    assert list(rates["rate_hz"]) == [1, 2, 1, 1, 1, 2] and list(rates["type"]).count("inhibitory") == 2


def test_training_tradeoff_error_bars_are_binomial(tmp_path):
    import numpy as np
    import pandas as pd

    from neurocode.figures.ssr import training_tradeoff

    epochs = pd.DataFrame({"method": ["no SSR", "no SSR", "M-SSR", "M-SSR"], "epoch": [1, 2, 1, 2],
                           "accuracy": [0.7, 0.8, 0.7, 0.78], "spikes_per_hidden_neuron": [0.6, 0.6, 0.5, 0.3],
                           "n_test": 400})
    training_tradeoff(epochs, tmp_path / "tradeoff")
    d = pd.read_csv(tmp_path / "tradeoff.csv")
    np.testing.assert_allclose(d["accuracy_se"], np.sqrt(d["accuracy"] * (1 - d["accuracy"]) / 400))


@pytest.mark.slow
def test_quick_demo_writes_the_report_and_reuses_finished_stages(tmp_path):
    """``run.py --quick``: every stage, the report and summary; a second run recomputes nothing."""
    out = tmp_path / "demo"
    command = [sys.executable, str(DEMO / "run.py"), "--quick", "--out", str(out)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-2000:]
    assert [line[:5] for line in first.stdout.splitlines() if line.startswith("[")] == \
        ["[1/4]", "[2/4]", "[3/4]", "[3/4]", "[4/4]"]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= {"network", "training", "brian2", "lyapunov", "wall_s"}
    assert {row["network"] for row in summary["brian2"]["networks"]} == {"no SSR", "M-SSR"}
    page = (out / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 5
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/stage.json")}
    assert len(stamps) == 4
    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stderr.count("reusing the finished stage") == 4
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/stage.json")} == stamps
