# Two commands on a fresh machine: `make demo` and `make test`.
# Each sets up what is missing (venv, Python packages, Debian packages) and nothing twice.

PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
PIP      := $(PY) -m pip
DEPS     := $(VENV)/.deps-installed
DEBIAN   := $(VENV)/.debian-installed
DEB_PKGS := dataset-fashion-mnist espeak-ng chromium
DEMO_OUT ?= results/demo
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-fast setup bench bench-peers gpu-check clean-results

# The main job, in four stages (about 5 minutes on 2 cores): a heterogeneous network from a
# card in Brian2 C++ standalone -> a TTFS network trained in torch on Fashion-MNIST with and without
# M-SSR -> both back in Brian2 -> a Lyapunov spectrum; one report, $(DEMO_OUT)/report.html.
# Finished stages are reused when the command runs again.
demo: setup
	$(PY) studies/demo/run.py --out $(DEMO_OUT)

test: setup
	$(PY) -m pytest tests neurocode $(PYTEST_ARGS)

# The daily lane: everything but the tests marked slow (standalone compilation, training,
# long parity runs), stopping at the first failure.
test-fast: setup
	$(PY) -m pytest tests neurocode -m "not slow" -x -q $(PYTEST_ARGS)

setup: $(DEPS) $(DEBIAN)

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned to the CPU build on this machine's disk before anything can ask for a CUDA build.
$(DEPS): setup.cfg pyproject.toml | $(PY)
	$(PIP) install --upgrade pip
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[cuda,dev,docs,nir]'
	touch $@

$(DEBIAN): | $(PY)
	@if dpkg -s $(DEB_PKGS) >/dev/null 2>&1; then echo "Debian packages present: $(DEB_PKGS)"; \
	else $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $(DEB_PKGS); fi
	touch $@

bench: setup
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean-results:
	rm -rf results

# Peers of bench/peers.py, for the benchmark only (not needed by make test). Norse and
# SpikingJelly declare torchvision/torchaudio, which they never import and which would pull a
# CUDA torch: they are installed without dependencies, plus what they do import.
PEER_PKGS := snntorch==1.0.0 norse==1.1.0 spikingjelly==2.0.0 nir nirtorch h5py loguru
BENCH_OUT ?= results/bench

bench-peers: setup
	$(PIP) install --no-deps $(PEER_PKGS)
	mkdir -p $(BENCH_OUT)
	$(PY) bench/peers.py --out $(BENCH_OUT)/peers.json

# On a machine with a CUDA GPU: the CUDA standalone test run for real, and the CUDA rows of
# every benchmark, each written as JSON to $(BENCH_OUT)/gpu/. Elsewhere it says so and stops.
GPU_OUT := $(BENCH_OUT)/gpu

gpu-check: setup
	@if ! nvidia-smi -L 2>/dev/null | grep -q GPU; then \
		echo "gpu-check: no CUDA GPU here (nvidia-smi -L lists none); skipped"; exit 0; fi; \
	if ! $(PY) -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then \
		echo "gpu-check: torch $$($(PY) -c 'import torch; print(torch.__version__)') has no CUDA; skipped"; exit 0; fi; \
	set -e; mkdir -p $(GPU_OUT); \
	$(PY) -m pytest tests/test_sim_cuda.py -m "slow or gpu" -rA --junitxml=$(GPU_OUT)/test_sim_cuda.xml; \
	$(PY) bench/peers.py --device cuda --out $(GPU_OUT)/peers.json; \
	$(PY) bench/dynamics.py --skip-runtime --out $(GPU_OUT)/dynamics.json; \
	$(PY) bench/simulate.py --out $(GPU_OUT)/simulate.json; \
	$(PY) bench/ttfs.py --out $(GPU_OUT)/ttfs.json; \
	$(PY) bench/lyapunov.py --out $(GPU_OUT)/lyapunov.json
