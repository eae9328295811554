"""Write the figures used in ``docs/simulate.md`` into ``docs/figures/``.

    .venv/bin/python studies/demo/make_docs_figures.py

A 300-neuron heterogeneous LIF network (the ``lif`` card, gamma-distributed tau_m),
0.5 s on the runtime device: raster and CV-of-ISI figures, each PNG + CSV.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from neurocode.figures.activity import isi_distribution, raster  # noqa: E402
from neurocode.presets import default_network  # noqa: E402
from neurocode.brian import simulate  # noqa: E402


def main():
    logging.getLogger("brian2").setLevel(logging.WARNING)
    out = ROOT / "docs" / "figures"
    spec = default_network("lif", size=300, duration=0.5, seed=0)
    result = simulate(spec, 0.5, progress=False)
    for path in (raster(result, out / "simulate_raster", populations=["net"]),
                 isi_distribution(result, out / "simulate_isi_cv", "net")):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
