"""The scheme × attack table on CIFAR-10 at a CPU budget (attacks.md; anchors.md §2-3), as named
sweeps plus `leia.report` (bench/tables.py): the same cells `python attack.py experiment=<sweep>`
makes, and the report's "Attacks in detail" table written into docs/BENCHMARKS.md. Re-running
skips every finished cell.

    python bench/reproduce_attacks.py [--runs runs] [--finished] [--out docs/BENCHMARKS.md]

Victims: the first 1,000 class-balanced CIFAR-10 test images of the JPEG copy (jigsaw: 20), victim
keys 0 and 1 (learned attacks: key 0). The sweeps say the rest (conf/experiment/attack/).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ciphers import ROOT, common_arguments, machine, write_section  # noqa: E402
from tables import cells, command_line, run_sweeps, sweep_dir  # noqa: E402

from leia import report  # noqa: E402

MARKS = ("<!-- bench/reproduce_attacks.py:start -->", "<!-- bench/reproduce_attacks.py:end -->")
ANALYTIC, PHOTOS = "attack/sweep_cifar10_analytic", "attack/sweep_photos"
# (named sweep, overrides): the grids, then the other settings of single attacks in the same sweep
SWEEPS = [
    (ANALYTIC, []),  # every scheme × the analytic attacks, shared_key and brute_force, 2 keys
    (ANALYTIC, ["scheme=tanaka", "attack=tanaka_cpa", "attack.mode=bytes,kpa"]),  # Chang & Case's bytes; known pairs
    (ANALYTIC, ["scheme=skk_per_image", "attack=skk_greedy", "attack.first_pixel=given", "attack.decoder=greedy,global"]),
    (ANALYTIC, ["scheme=skk_per_image", "attack=skk_greedy", "attack.decoder=global"]),
    (ANALYTIC, ["scheme=skk", "attack=fr", "scheme.color_shuffle=false"]),
    ("attack/sweep_cifar10_jigsaw", []),
    ("attack/sweep_cifar10_learned", []),  # itn and gan: LE, per-image SKK, EtC, ScrambleMix
    # Larger pieces: the six photos of data=photos with 16×16 blocks (one scheme a command: Hydra reads
    # the run mode from a config with the default scheme, which has no block_size to set)
    *[(PHOTOS, [f"scheme={s}", "attack=jigsaw", f"data.size={n}", "scheme.block_size=16", "key.seed=0"])
      for s, n in (("etc", 128), ("ele", 128), ("etc", 224))],
]


def section(result: dict, args) -> str:
    runs = result["runs"]
    minutes = sum(r.get("duration_s", 0) for r in runs if r["status"] == "complete") / 60
    commands = "\n".join(f"    {command_line(e, o, 'attack.py')}" for e, o in SWEEPS)
    return "\n".join([
        MARKS[0],
        "## Attacks: scheme × attack on CIFAR-10 at a CPU budget",
        "",
        f"`python bench/reproduce_attacks.py` runs these named sweeps (jobs totalling {minutes:.0f} min on {machine()}, "
        "partly sharing the 2 cores with other work, so the times are not benchmarks), then `leia.report` on "
        f"their cells in {', '.join(f'`{d.relative_to(args.runs.parent)}`' for d in result['dirs'])}:",
        "",
        commands,
        "",
        "Victims: the first 1,000 class-balanced CIFAR-10 test images of the JPEG copy (jigsaw: 20), victim keys 0 and 1 "
        "(learned attacks: key 0); n counts the keys. Learned attacks (itn, gan): 10,000 class-balanced train-split "
        "images (disjoint from the victims), 10 epochs, the attacker's own random keys; each row took at most "
        f"{max_learned(runs):.0f} min here ({'within' if max_learned(runs) <= 30 else 'OVER'} the 30 min a row "
        "budgeted for them). SSIM: Gaussian window 11, σ 1.5, data range 255; "
        "gray = BT.601 luma. enc. SSIM is the encrypted image's own (what every attack must beat). \"up to global\" "
        "scores the best of the symmetries no attack can resolve (skk_greedy: one global colour order and NP; jigsaw: "
        "the image's orientation, colour order and NP; shared_key: the scheme's global symmetries, per recovered key "
        "for ScrambleMix). Setting: the parameters in which "
        "runs of one scheme and attack differ. key %: the key recovered exactly; shared_key's \"key up to global\" "
        "counts a key equal to the true one up to those symmetries. Rows of the photos (16×16 blocks) say so in "
        "brackets.",
        "",
        report.attack_details(runs),
        "",
        MARKS[1],
    ])


def max_learned(runs: list[dict]) -> float:
    return max((r.get("duration_s", 0) / 60 for r in runs if r.get("attack") in ("itn", "gan")), default=0.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(p)
    p.add_argument("--runs", type=Path, default=ROOT / "runs", help="paths.runs of the sweeps (default: runs/)")
    p.add_argument("--finished", action="store_true", help="report the cells already run; run nothing")
    args = p.parse_args()
    args.runs = args.runs.resolve()
    if not args.finished:
        run_sweeps("attack.py", SWEEPS, args.runs, args.cifar)
    jobs = [cell for e, o in SWEEPS for cell in cells(e, o, args.runs)]  # the table's cells, nothing else there
    if not jobs:
        raise SystemExit(f"no finished cells of this table under {args.runs / 'sweeps'}: run it without --finished")
    result = report.build(jobs, args.runs / "reports" / "attacks_cifar10")
    result["dirs"] = list(dict.fromkeys(sweep_dir(e, args.runs) for e, _ in SWEEPS))
    text = section(result, args)
    print(text)
    print(f"report: {result['written']['markdown']}")
    if args.out:
        write_section(args.out, text, MARKS)


if __name__ == "__main__":
    main()
