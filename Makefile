# Idempotent entry points: each target creates .venv once and reuses it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.leia-installed

.PHONY: install run gallery test bench bench-reproduce clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The main job: train on encrypted images offline (experiment=quickstart, about a minute on 2 CPU
# cores; a finished run is reported, not redone), then render the encryption gallery.
run: $(STAMP)
	$(BIN)/python train.py experiment=quickstart
	$(BIN)/leia gallery --out docs/gallery.png

gallery: $(STAMP)
	$(BIN)/leia gallery --out docs/gallery.png

test: $(STAMP)
	$(BIN)/python -m pytest

# Benchmarks -> docs/BENCHMARKS.md; need ../shared/data/cifar10 or CIFAR=<image folder>.
bench: $(STAMP)
	$(BIN)/python bench/ciphers.py --out docs/BENCHMARKS.md
	$(BIN)/python bench/train_overhead.py --out docs/BENCHMARKS.md

# About an hour on 2 CPU cores.
bench-reproduce: $(STAMP)
	$(BIN)/python bench/reproduce_madono.py --out docs/BENCHMARKS.md

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
