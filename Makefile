# Idempotent entry points: each target creates .venv once and reuses it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.leia-installed

.PHONY: install run test bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The main job: the encryption gallery (every scheme on one image, and its decryption).
run: $(STAMP)
	$(BIN)/leia gallery --out docs/gallery.png

test: $(STAMP)
	$(BIN)/python -m pytest

# Cipher throughput table (docs/BENCHMARKS.md); needs ../shared/data/cifar10 or CIFAR=<folder>.
bench: $(STAMP)
	$(BIN)/python bench/ciphers.py --out docs/BENCHMARKS.md

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
