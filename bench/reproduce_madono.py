"""CPU-budget reproduction of Madono et al. 2020, Table 3, CIFAR-10 (anchors.md §1).

Runs `train.py experiment=madono2020_cifar10` for each row below with a small backbone and epoch
budget on the CIFAR-10 JPEG copy, then writes the results beside the published numbers. What a
small budget should reproduce: the ordering plain ≥ LE > EtC > ELE without adaptation, and a
plain − LE gap no larger than the paper's 1.76 points. Re-running skips finished rows (each run
writes metrics.json) and resumes an interrupted one.

    python bench/reproduce_madono.py [--epochs 10] [--train-images 10000] [--out docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ciphers import ROOT, common_arguments, machine, write_section  # noqa: E402

def marks(trainer: str) -> tuple[str, str]:
    return (f"<!-- bench/reproduce_madono.py:{trainer}:start -->", f"<!-- bench/reproduce_madono.py:{trainer}:end -->")
# (scheme config, adapter, published top-1 % on CIFAR-10 with that adaptation; anchors.md §1)
ROWS = [
    ("plain", "none", 96.70),
    ("tanaka", "none", 94.94),
    ("etc", "none", None),  # the paper's EtC column used the channel-duplicating code (etc_legacy)
    ("etc_legacy", "none", 85.94),
    ("ele", "none", 67.10),
    ("tanaka", "tanaka", 94.49),
]


def run_row(scheme: str, adapter: str, args) -> dict:
    overrides = [
        "experiment=madono2020_cifar10", f"scheme={scheme}", f"adapter={adapter}", f"model={args.model}",
        f"trainer={args.trainer}", f"trainer.max_epochs={args.epochs}", "trainer.enable_progress_bar=false", "logger=csv",
        "data.format=imagefolder", f"data.root={args.cifar}", f"data.train_limit={args.train_images}",
        f"data.num_workers={args.workers}", f"paths.runs={args.runs}",
    ]
    start = time.time()
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{scheme}/{adapter} failed:\n{done.stderr[-3000:]}")
    name = f"madono2020-{scheme}-{adapter}-{args.model}-seed0"
    metrics = json.loads((args.runs / name / "metrics.json").read_text())
    print(f"{scheme:>10} / {adapter:<6} best {metrics['best_val_acc1']:.4f} final {metrics['test']['acc1']:.4f} "
          f"({time.time() - start:.0f} s)", flush=True)
    return metrics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(p)
    p.add_argument("--model", default="resnet20")
    p.add_argument("--trainer", default="cpu", choices=("cpu", "gpu"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--train-images", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench_madono_cpu")
    args = p.parse_args()
    args.runs = args.runs.resolve()
    start = time.time()
    results = [(scheme, adapter, published, run_row(scheme, adapter, args)) for scheme, adapter, published in ROWS]
    hours = (time.time() - start) / 3600
    by = {(s, a): m for s, a, _, m in results}
    best = {k: 100 * m["best_val_acc1"] for k, m in by.items()}
    order = [best[("plain", "none")], best[("tanaka", "none")], best[("etc_legacy", "none")], best[("ele", "none")]]
    gap = best[("plain", "none")] - best[("tanaka", "none")]
    lines = [
        marks(args.trainer)[0],
        f"## Reproduction ({args.trainer.upper()} budget): Madono et al. 2020, Table 3, CIFAR-10",
        "",
        f"Command: `python bench/reproduce_madono.py --trainer {args.trainer} --model {args.model} --epochs {args.epochs} "
        f"--train-images {args.train_images}` ({hours:.1f} h on this machine).",
        f"Machine: {machine()}.",
        "Setup: `experiment=madono2020_cifar10` (SGD Nesterov 0.9, wd 5e-4, lr 0.1 ÷10 at 50% and 75% of",
        f"training, crop+flip before encryption, 4×4 blocks) with **{args.model}** for **{args.epochs} epochs** on a",
        f"class-balanced **{args.train_images:,}-image subset** of CIFAR-10 train (JPEG copy); accuracy on all 10,000 test",
        "images. The paper: Shake-PyramidNet-110 (α=270), 300 epochs, 50,000 images. Best = best test top-1 over",
        "epochs (what the paper reports); final = after the last epoch.",
        "",
        "| scheme | adaptation | published top-1 % | this run, best % | this run, final % |",
        "|---|---|---:|---:|---:|",
    ]
    for scheme, adapter, published, m in results:
        pub = f"{published:.2f}" if published is not None else "— (paper used etc_legacy)"
        lines.append(f"| {scheme} | {adapter} | {pub} | {100 * m['best_val_acc1']:.2f} | {100 * m['test']['acc1']:.2f} |")
    ordered = all(a >= b for a, b in zip(order, order[1:]))
    lines += [
        "",
        f"- Ordering without adaptation, plain ≥ LE ≥ EtC (legacy) ≥ ELE: "
        f"{' ≥ '.join(f'{v:.2f}' for v in order)} — {'reproduced' if ordered else 'NOT reproduced'}.",
        f"- plain − LE gap: {gap:.2f} points (paper: 1.76) — "
        f"{'same size or smaller' if gap <= 1.76 else 'larger than the paper at this budget'}.",
        marks(args.trainer)[1],
    ]
    section = "\n".join(lines)
    print(section)
    if args.out:
        write_section(args.out, section, marks(args.trainer))


if __name__ == "__main__":
    main()
