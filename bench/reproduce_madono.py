"""Madono et al. 2020, Table 3, CIFAR-10 (anchors.md §1) at a chosen budget, as a named sweep plus
`leia.report --paper madono2020` (bench/tables.py): plain, LE, EtC (their channel-duplicating code,
etc_legacy), ELE, each without and with the adaptation network, written beside the published
numbers with the gap to plain on both sides.

    python bench/reproduce_madono.py [--sweep sweep/madono2020_cifar10] [--trainer cpu] [--model resnet20]
                                     [--epochs 10] [--train-images 10000] [--out docs/BENCHMARKS.md]

`--sweep sweep/madono2020_fast` runs the fast recipe's grid instead (its own model; --model is
ignored, 3 seeds unless --seeds says otherwise). What a small budget should reproduce: the
ordering plain ≥ LE > EtC > ELE without adaptation; the paper's plain − LE gap is 1.76 points.
Re-running skips finished cells and resumes an interrupted one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ciphers import ROOT, common_arguments, machine, write_section  # noqa: E402
from tables import cells, command_line, run_sweeps, sweep_dir  # noqa: E402

from leia import published, report  # noqa: E402

PAPER = "madono2020"
ORDER = ("plain", "tanaka", "etc_legacy", "ele")  # the ordering without adaptation the paper shows


def marks(args) -> tuple[str, str]:
    tag = args.trainer if args.sweep == "sweep/madono2020_cifar10" else f"{args.sweep.split('/')[-1]}:{args.trainer}"
    return f"<!-- bench/reproduce_madono.py:{tag}:start -->", f"<!-- bench/reproduce_madono.py:{tag}:end -->"


def overrides(args) -> list[str]:
    """The budget, as overrides of the named sweep (each names the cells, so another budget is other cells)."""
    out = [f"trainer={args.trainer}", f"trainer.max_epochs={args.epochs}"]
    if args.sweep == "sweep/madono2020_cifar10":
        out += [f"model={args.model}", f"data.num_workers={args.workers}"]
    if args.train_images:
        out.append(f"data.train_limit={args.train_images}")
    if args.test_images:
        out.append(f"data.test_limit={args.test_images}")
    if args.seeds:
        out.append(f"seed={args.seeds}")
    return out


def ordering(training: dict, model: str) -> tuple[list[float], bool, float | None]:
    """Mean top-1 (%) of the ordering's schemes without adaptation, whether it holds, and plain − LE."""
    means = [100 * c.mean for s in ORDER if (c := training.get(("cifar10", s), {}).get(model)) and c.values]
    if len(means) < len(ORDER):
        return means, False, None
    held = means[0] >= means[1] > means[2] > means[3]  # as the paper: plain ≥ LE > EtC > ELE (chance ties fail)
    return means, held, means[0] - means[1]


def section(result: dict, args, command: str) -> str:
    training = result["training"]
    models = sorted({c for (d, _), row in training.items() if d == "cifar10" for c in row if "+" not in c})
    minutes = sum(r.get("duration_s", 0) for r in result["runs"] if r["status"] == "complete") / 60
    lines = [
        marks(args)[0],
        f"## Reproduction ({args.trainer.upper()} budget, `{args.sweep}`): Madono et al. 2020, Table 3, CIFAR-10",
        "",
        f"`{command}` runs `{command_line(args.sweep, overrides(args), 'train.py')}` (jobs totalling {minutes:.0f} min on "
        f"{machine()}), then `leia.report --paper {PAPER}` on the cells of this budget in "
        f"`{sweep_dir(args.sweep, args.runs).relative_to(args.runs.parent)}`. CIFAR-10 JPEG copy"
        + (f", a class-balanced {args.train_images:,}-image subset of train" if args.train_images else ", all 50,000 "
           "training images") + f", {args.epochs} epoch{'s' if args.epochs > 1 else ''}; accuracy after the last epoch on "
        + (f"{args.test_images:,} class-balanced test images" if args.test_images else "all 10,000 test images") + " "
        "(the paper reports its best epoch). The paper: Shake-PyramidNet-110 (α=270), 300 epochs.",
        "",
        report.beside_paper(training, published.paper(PAPER)),
        "",
    ]
    for model in models:
        means, held, gap = ordering(training, model)
        if gap is None:
            lines.append(f"- {model}: the ordering needs plain, tanaka, etc_legacy and ele without adaptation; "
                         "some did not finish.")
            continue
        lines += [f"- {model}, ordering without adaptation, plain ≥ LE > EtC (legacy) > ELE: "
                  f"{means[0]:.2f} ≥ {means[1]:.2f} > {means[2]:.2f} > {means[3]:.2f}: {'reproduced' if held else 'NOT reproduced'}.",
                  f"- {model}, plain − LE gap: {gap:.2f} points (paper: 1.76): "
                  f"{'the same size or smaller' if gap <= 1.76 else 'larger than the paper at this budget'}."]
    lines.append(marks(args)[1])
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(p)
    p.add_argument("--sweep", default="sweep/madono2020_cifar10", choices=("sweep/madono2020_cifar10", "sweep/madono2020_fast"))
    p.add_argument("--model", default="resnet20", help="madono2020_cifar10's backbone (the fast sweep has its own)")
    p.add_argument("--trainer", default="cpu", choices=("cpu", "gpu"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--train-images", type=int, default=10_000, help="0: all 50,000")
    p.add_argument("--test-images", type=int, default=0, help="a class-balanced test subset (0: all 10,000)")
    p.add_argument("--seeds", help="comma-separated seeds (default: the sweep's)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--runs", type=Path, default=ROOT / "runs", help="paths.runs of the sweep (default: runs/)")
    p.add_argument("--finished", action="store_true", help="report the cells already run; run nothing")
    args = p.parse_args()
    args.runs = args.runs.resolve()
    given = [a for a in sys.argv[1:] if a != "--finished"]  # the command that makes this table
    command = "python bench/reproduce_madono.py " + " ".join(given).replace(str(ROOT) + "/", "")
    if not args.finished:
        run_sweeps("train.py", [(args.sweep, overrides(args))], args.runs, args.cifar)
    jobs = cells(args.sweep, overrides(args), args.runs)  # this budget's cells only
    if not jobs:
        raise SystemExit(f"no cells of this budget under {sweep_dir(args.sweep, args.runs)}: run it without --finished")
    result = report.build(jobs, args.runs / "reports" / args.sweep.split("/")[-1], paper=PAPER)
    text = section(result, args, command.strip())
    print(text)
    print(f"report: {result['written']['markdown']}")
    if args.out:
        write_section(args.out, text, marks(args))


if __name__ == "__main__":
    main()
