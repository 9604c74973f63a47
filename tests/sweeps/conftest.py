"""Real sweeps, run once per session through the command line (python attack.py -m / train.py -m)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

# 2 schemes × 2 attacks × 2 victim keys: skk_cpa does not apply to tanaka (2 jobs "not applicable").
ATTACK_GRID = ["scheme=skk,tanaka", "attack=fr,skk_cpa", "key.seed=0,1", "victims.limit=2", "data.size=64",
               "grid.images=2", "trainer.enable_progress_bar=false"]
TRAIN_GRID = ["scheme=skk,tanaka", "seed=0,1", "trainer.max_epochs=1", "data.train_limit=128", "data.test_limit=64",
              "trainer.enable_progress_bar=false"]


def cli(script: str, args: list[str], runs: Path, timeout: int = 900, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **env}
    environment.pop("WANDB_API_KEY", None)
    return subprocess.run([sys.executable, str(ROOT / script), *args, f"paths.runs={runs}"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def attack_sweep(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, list[str]]:
    runs = tmp_path_factory.mktemp("attack_sweep")
    args = ["-m", "sweep=grid", *ATTACK_GRID]
    done = cli("attack.py", args, runs)
    assert done.returncode == 0, done.stderr[-3000:]
    return runs / "sweeps" / "grid", done, args


@pytest.fixture(scope="session")
def train_sweep(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("train_sweep")
    done = cli("train.py", ["-m", "sweep=train_grid", *TRAIN_GRID], runs)
    assert done.returncode == 0, done.stderr[-3000:]
    return runs / "sweeps" / "train_grid"
