"""The one way bench/ makes a results table: run named sweeps, then `leia.report` over their
directories. A table script is a list of (script, named sweep, overrides) and the words around the
report's table; the numbers come from the jobs' metrics.json, as for any user's sweep.

A named sweep skips its finished cells, so a table script re-run runs only what is missing, and
its cells are the same directories as `python attack.py experiment=<sweep> ...` would use (the
data path goes through the CIFAR environment variable, so it does not rename the cells).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).parent))
from ciphers import ROOT  # noqa: E402

QUIET = ["logger=csv", "trainer.enable_progress_bar=false"]  # neither names a cell (conf/hydra/default.yaml)


def sweep_dir(experiment: str, runs: Path) -> Path:
    """Where a named sweep's cells go: runs/sweeps/<its `sweep` name>."""
    return runs / "sweeps" / str(OmegaConf.load(ROOT / "conf" / "experiment" / f"{experiment}.yaml").sweep)


def run_sweep(script: str, experiment: str, overrides: list[str], runs: Path, cifar: Path) -> tuple[Path, bool]:
    """Run one named sweep (its finished cells are skipped); its directory, and whether every job succeeded.
    A failed job does not stop the table: the report lists it with its error."""
    command = [sys.executable, str(ROOT / script), f"experiment={experiment}", *overrides, *QUIET, f"paths.runs={runs}"]
    where = sweep_dir(experiment, runs)
    where.mkdir(parents=True, exist_ok=True)
    print(f"$ CIFAR={cifar} {' '.join(command[1:])}", flush=True)
    start = time.time()
    with open(where / "bench.log", "a") as log:
        done = subprocess.run(command, cwd=ROOT, env={**os.environ, "CIFAR": str(cifar)}, stdout=log,
                              stderr=subprocess.STDOUT)
    print(f"  {'done' if done.returncode == 0 else 'SOME JOBS FAILED (see the report)'} in {time.time() - start:.0f} s; "
          f"log: {where / 'bench.log'}", flush=True)
    return where, done.returncode == 0


def run_sweeps(script: str, sweeps: list[tuple[str, list[str]]], runs: Path, cifar: Path) -> list[Path]:
    """Run each (named sweep, overrides) in turn; the distinct sweep directories, in order."""
    dirs: list[Path] = []
    for experiment, overrides in sweeps:
        where, _ = run_sweep(script, experiment, overrides, runs, cifar)
        if where not in dirs:
            dirs.append(where)
    return dirs


def cells(experiment: str, overrides: list[str], runs: Path) -> list[Path]:
    """The cells of a named sweep made with exactly these overrides (a cell is named by its overrides,
    conf/hydra/default.yaml): every key in a cell's name is one of the overrides, with one of its
    values, or one of the sweep's own swept keys. A table of one budget or setting never takes in
    the cells of another that share the sweep's directory."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.load(ROOT / "conf" / "experiment" / f"{experiment}.yaml").hydra.sweeper.params
    given = {}
    for o in OverridesParser.create().parse_overrides(overrides):  # values as Hydra writes them (false -> False)
        given[o.get_key_element()] = set(o.sweep_string_iterator() if o.is_sweep_override() else
                                         [o.get_value_element_as_str()])
    where, out = sweep_dir(experiment, runs), []
    for cell in sorted(where.iterdir()) if where.is_dir() else []:
        named = dict(item.split("=", 1) for item in cell.name.split(",") if "=" in item)
        if cell.is_dir() and all(k in named and named[k] in v for k, v in given.items()) \
                and all(k in given or k in params for k in named):
            out.append(cell)
    return out


def command_line(experiment: str, overrides: list[str], script: str) -> str:
    return " ".join([f"python {script}", f"experiment={experiment}", *overrides])
