"""The fast recipe on this machine (issue #12): `train.py experiment=fast_cifar10` on all 50,000
CIFAR-10 training images and all 10,000 test images, per row (scheme, adaptation, epochs), with the
accuracy after the last epoch (EMA weights), the best epoch, the wall time of the run and its
per-epoch validation curve. Finished rows are read back, not redone (train.py reports a complete
run); an interrupted one resumes.

    python bench/fast_cifar10.py [--rows plain tanaka plain:none:1 tanaka:none:1] [--runs runs/bench_fast]
                                 [--out docs/BENCHMARKS.md]

A row is scheme[:adapter[:epochs]]; epochs default to the recipe's 30. Each run's name is the
experiment's (`fast_cifar10-<scheme>-<adapter>-seed0`), with `-e<epochs>` for other budgets.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ciphers import ROOT, common_arguments, machine, publish  # noqa: E402

MARKS = ("<!-- bench/fast_cifar10.py:start -->", "<!-- bench/fast_cifar10.py:end -->")
RECIPE_EPOCHS = 30  # experiment=fast_cifar10's trainer.max_epochs


def parse_row(text: str) -> tuple[str, str, int]:
    parts = text.split(":")
    scheme, adapter, epochs = parts[0], parts[1] if len(parts) > 1 else "none", parts[2] if len(parts) > 2 else RECIPE_EPOCHS
    return scheme, adapter, int(epochs)


def run_row(scheme: str, adapter: str, epochs: int, args) -> tuple[dict, list[float]]:
    name = f"fast_cifar10-{scheme}-{adapter}-seed0" + ("" if epochs == RECIPE_EPOCHS else f"-e{epochs}")
    overrides = ["experiment=fast_cifar10", f"scheme={scheme}", f"adapter={adapter}", f"paths.runs={args.runs}",
                 "trainer.enable_progress_bar=false"]
    if args.cifar != (ROOT / ".." / "shared" / "data" / "cifar10").resolve():  # the experiment's default
        overrides.append(f"data.root={args.cifar}")
    if epochs != RECIPE_EPOCHS:
        overrides += [f"trainer.max_epochs={epochs}", f"name={name}"]
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")})
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    run_dir = args.runs / name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    curve = {}
    for path in sorted(run_dir.glob("csv/version_*/metrics.csv")):
        with open(path) as f:
            for r in csv.DictReader(f):
                if r.get("val/acc1"):
                    curve[int(r["epoch"])] = float(r["val/acc1"])
    print(f"{name}: test {metrics['test']['acc1']:.4f}, best {metrics['best_val_acc1']:.4f}, "
          f"{metrics['duration_s'] / 60:.1f} min", flush=True)
    return metrics, [curve[e] for e in sorted(curve)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(p)
    p.add_argument("--rows", nargs="+", default=["plain", "tanaka", "plain:none:1", "tanaka:none:1"])
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench_fast")
    args = p.parse_args()
    args.cifar, args.runs = args.cifar.resolve(), args.runs.resolve()
    results = [(row, *run_row(*parse_row(row), args)) for row in args.rows]
    lines = [
        MARKS[0],
        "## The fast recipe on this CPU: experiment=fast_cifar10",
        "",
        f"Command: `python bench/fast_cifar10.py --rows {' '.join(args.rows)}`, i.e. per row",
        "`python train.py experiment=fast_cifar10 scheme=<scheme> adapter=<adapter> [trainer.max_epochs=<epochs>]`.",
        f"Machine: {machine()}.",
        "All 50,000 CIFAR-10 training images and all 10,000 test images (JPEG copy), fastnet with the stem",
        "`auto` picks (block-aligned whitening for the block-wise schemes, 2×2 whitening for plain), the",
        "device-resident data path, bf16 autocast, no test-time augmentation. Final = test top-1 after the last epoch, with",
        "the EMA weights; best = the best epoch's (validation also uses the EMA once it has started).",
        "Wall = the run's `duration_s` (data loading, whitening fit, training, validation every epoch, test).",
        "",
        "| scheme | adaptation | epochs | final top-1 % | best epoch % | wall min | validation top-1 % per epoch |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row, m, curve in results:
        scheme, adapter, epochs = parse_row(row)
        lines.append(f"| {scheme} | {adapter} | {epochs} | {100 * m['test']['acc1']:.2f} | {100 * m['best_val_acc1']:.2f} | "
                     f"{m['duration_s'] / 60:.1f} | {', '.join(f'{100 * v:.1f}' for v in curve)} |")
    lines.append(MARKS[1])
    publish(lines, args.out, MARKS)


if __name__ == "__main__":
    main()
