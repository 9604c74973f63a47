"""Scheme × attack table on CIFAR-10 test images at a CPU budget (attacks.md; anchors.md §2–3).

Runs `attack.py` for every row below on the first `--victims` class-balanced CIFAR-10 test images
of the JPEG copy (the victims, under key seed 0); learned attacks train on `--attacker-images`
images of the train split (disjoint) for `--epochs` epochs with their own random keys. Writes the
table into docs/BENCHMARKS.md. Re-running skips finished rows (each run writes metrics.json).

    python bench/reproduce_attacks.py [--victims 1000] [--attacker-images 2000] [--epochs 4] [--out docs/BENCHMARKS.md]
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

MARKS = ("<!-- bench/reproduce_attacks.py:start -->", "<!-- bench/reproduce_attacks.py:end -->")
LEARNED = ("itn", "gan")
# (scheme option, attack option, extra overrides, label)
ROWS = [
    ("tanaka", "tanaka_cpa", [], "nibble-level CPA, 1 chosen image"),
    ("tanaka", "tanaka_cpa", ["attack.mode=bytes"], "Chang & Case byte-level CPA, 16 helpers"),
    ("tanaka", "tanaka_cpa", ["attack.mode=kpa"], "KPA, 4 known images"),
    ("skk", "skk_cpa", [], "CPA, 1 helper image"),
    ("skk_per_image", "skk_cpa", [], "CPA, 1 helper image"),
    ("skk_per_image", "skk_greedy", ["attack.first_pixel=given"], "greedy, first pixel given"),
    ("skk_per_image", "skk_greedy", ["attack.first_pixel=search"], "greedy, 48 first pixels tried"),
    ("skk_per_image", "skk_greedy", ["attack.first_pixel=given", "attack.decoder=global"], "global decoder, first pixel given"),
    ("skk_per_image", "skk_greedy", ["attack.first_pixel=search", "attack.decoder=global"], "global decoder, 48 tried"),
    *[(s, "fr", [], "fold") for s in ("tanaka", "ele", "etc", "etc_gray", "skk", "skk_per_image", "vit_block_cifar")],
    ("skk", "fr", ["scheme.color_shuffle=false"], "fold, no colour shuffle"),
    *[(s, "jigsaw", [], "puzzle solver") for s in ("etc", "ele", "vit_block_cifar")],
    # LE, pixel-wise and block scrambling: the contrast the SIA-GAN paper reports
    *[(s, a, [], a) for a in LEARNED for s in ("tanaka", "skk_per_image", "etc")],
    *[(s, "brute_force", [], "calculation") for s in ("tanaka", "ele", "etc", "etc_gray", "skk_per_image", "vit_block_cifar")],
    # ScrambleMix (issue #14): its view 0 under the attacks that apply (shared_key has no strategy for it yet)
    ("scramblemix", "fr", [], "fold"), ("scramblemix", "itn", [], "itn"), ("scramblemix", "gan", [], "gan"),
    ("scramblemix", "brute_force", [], "calculation"),
]
# Larger pieces: the six victim photos of `data=photos` (scikit-image), 16×16 blocks.
PHOTOS = ["data=photos", "data.size=128", "scheme.block_size=16"]
SUPPLEMENT = [
    ("etc", "jigsaw", PHOTOS, "puzzle solver, 6 photos 128×128, M=16 (64 pieces)"),
    ("ele", "jigsaw", PHOTOS, "puzzle solver, 6 photos 128×128, M=16 (64 pieces)"),
    ("etc", "jigsaw", ["data=photos", "data.size=224", "scheme.block_size=16"],
     "puzzle solver, 6 photos 224×224, M=16 (196 pieces)"),
]


def row_name(scheme: str, attack: str, extra: list[str]) -> str:
    tag = "-".join(e.split("=")[-1] for e in extra)
    return f"table-{scheme}-{attack}{'-' + tag if tag else ''}"


def run_row(scheme: str, attack: str, extra: list[str], args) -> dict:
    name = row_name(scheme, attack, extra)
    data = [] if any(e.startswith("data=") for e in extra) else [
        "data=cifar10", "data.format=imagefolder", f"data.root={args.cifar}", f"victims.limit={args.victims}"]
    overrides = [f"scheme={scheme}", f"attack={attack}", *extra, *data, "logger=csv",
                 "trainer.enable_progress_bar=false", f"paths.runs={args.runs}", f"name={name}"]
    if attack in LEARNED:
        overrides += [f"attacker.limit={args.attacker_images}", f"attack.epochs={args.epochs}"]
    path = args.runs / "attacks" / name / "metrics.json"
    if path.is_file() and json.loads(path.read_text()).get("complete"):
        return json.loads(path.read_text())  # finished earlier (attack.py would say so, after its imports)
    start = time.time()
    done = subprocess.run([sys.executable, str(ROOT / "attack.py"), *overrides], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    metrics = json.loads(path.read_text())
    print(f"{name}: SSIM {metrics['metrics']['ssim']:.4f} ({time.time() - start:.0f} s)", flush=True)
    return metrics


def cell(v, pct=False, digits=3) -> str:
    if v is None:
        return "–"
    return f"{100 * v:.1f}" if pct else f"{v:.{digits}f}"


def table(results: list[tuple[tuple, dict]], args, seconds: float) -> str:
    lines = [
        MARKS[0],
        "## Attacks: scheme × attack on CIFAR-10 at a CPU budget",
        "",
        f"`python bench/reproduce_attacks.py --victims {args.victims} --attacker-images {args.attacker_images} "
        f"--epochs {args.epochs}` (runs totalling {seconds / 60:.0f} min on {machine()}, partly sharing its 2 cores "
        f"with other work, so the times are not benchmarks). Victims: the first {args.victims} "
        "class-balanced CIFAR-10 test images of the JPEG copy, key seed 0. Learned attacks: "
        f"{args.attacker_images} train-split images (disjoint), {args.epochs} epochs, the attacker's own random keys. "
        "SSIM: Gaussian window 11, σ 1.5, data range 255; gray = BT.601 luma. \"enc.\" is the SSIM of the "
        "encrypted image itself (the row every attack must beat). \"up to global\" scores the best of the "
        "symmetries no attack can resolve (skk_greedy: one global colour order and NP; jigsaw: the image's "
        "orientation, colour order and NP).",
        "",
        "Rows marked *photos* run on the six victim photos of `data=photos` instead, with 16×16 blocks.",
        "",
        "| scheme | attack | setting | threat | SSIM | SSIM gray | PSNR dB | exact bytes % | key % | enc. SSIM | more |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (scheme, attack, _extra, label), m in results:
        x, key = m["metrics"], m.get("key", {})
        more = []
        for k in ("direct_comparison", "neighbour_comparison", "ssim_up_to_global", "fold_identity", "ssim_fold"):
            if k in x:
                more.append(f"{k.replace('_', ' ')} {cell(x[k], pct='comparison' in k or k == 'fold_identity')}")
        for k in ("pixel_permutation_up_to_symmetry",):
            if k in key:
                more.append(f"pixel permutation (up to symmetry) {cell(key[k], pct=True)}%")
        if attack == "brute_force":
            s = m["summary"]
            more.append(f"log2 keys {s['key_space_log2']:,.0f}; {s['trials_per_second']:.0f} trials/s; "
                        f"10^{s['expected_log10_years']:,.0f} years (calculation); toy search {s['toy_keys']:,} keys "
                        f"in {s['toy_search_seconds']:.2f} s vs {s['toy_predicted_seconds']:.2f} s predicted")
        kf = key.get("key_recovered_fraction", x.get("key_recovered_fraction"))
        label = f"*photos*: {label}" if m["data"] == "photos" else label
        lines.append(f"| {scheme} | {attack} | {label} | {m['threat']} | {cell(x['ssim'])} | {cell(x['ssim_gray'])} | "
                     f"{x['psnr']:.2f} | {cell(x['exact_bytes'], pct=True)} | {cell(kf, pct=True)} | "
                     f"{cell(m['baseline_encrypted']['ssim'])} | {'; '.join(more)} |")
    lines += ["", MARKS[1]]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(p)
    p.add_argument("--victims", type=int, default=1000)
    p.add_argument("--attacker-images", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-attacks")
    p.add_argument("--only", help="comma-separated attacks to run (default: all rows)")
    p.add_argument("--finished", action="store_true", help="write the table of the rows already run; run nothing")
    args = p.parse_args()
    rows = [r for r in ROWS + SUPPLEMENT if not args.only or r[1] in args.only.split(",")]
    if args.finished:
        rows = [r for r in rows if (args.runs / "attacks" / row_name(r[0], r[1], r[2]) / "metrics.json").is_file()]
    results = [(row, run_row(*row[:3], args)) for row in rows]
    section = table(results, args, sum(m["duration_s"] for _, m in results))
    print(section)
    if args.out:
        write_section(args.out, section, MARKS)


if __name__ == "__main__":
    main()
