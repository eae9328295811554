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

.PHONY: demo test test-fast setup bench clean-results

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
