# Idempotent entry points: each target creates .venv once and reuses it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.leia-installed

.PHONY: install run attack gallery test bench bench-reproduce clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The main job: train on encrypted images offline (experiment=quickstart, about a minute on 2 CPU
# cores; a finished run is reported, not redone), render the encryption gallery, then attack
# (Chang & Case's greedy decoder on per-image-key SKK, real photos, seconds).
run: $(STAMP)
	$(BIN)/python train.py experiment=quickstart
	$(BIN)/leia gallery --out docs/gallery.png
	$(MAKE) attack

attack: $(STAMP)
	$(BIN)/python attack.py experiment=attack/quickstart
	cp runs/attacks/quickstart-skk_per_image-skk_greedy-key0/grid.png docs/attack_quickstart.png

gallery: $(STAMP)
	$(BIN)/leia gallery --out docs/gallery.png

test: $(STAMP)
	$(BIN)/python -m pytest

# Benchmarks -> docs/BENCHMARKS.md; need ../shared/data/cifar10 or CIFAR=<image folder>.
bench: $(STAMP)
	$(BIN)/python bench/ciphers.py --out docs/BENCHMARKS.md
	$(BIN)/python bench/train_overhead.py --out docs/BENCHMARKS.md
	$(BIN)/python bench/attacks.py --out docs/BENCHMARKS.md

# Reproductions (hours on 2 CPU cores): the fast recipe, Madono et al.'s accuracy table, the scheme x attack table.
bench-reproduce: $(STAMP)
	$(BIN)/python bench/fast_cifar10.py --rows plain tanaka --out docs/BENCHMARKS.md
	$(BIN)/python bench/reproduce_madono.py --out docs/BENCHMARKS.md
	$(BIN)/python bench/reproduce_attacks.py --out docs/BENCHMARKS.md

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
