"""Attack speed (issue #4): analytic attacks in images/s, the batched skk_greedy decoder against a
per-pixel loop of the same decoder (identical output required), and jigsaw seconds per puzzle for
64 and 196 pieces. Timings of a method and its baseline are interleaved rep by rep (this machine's
speed drifts by ±20%), and the ratio of medians is reported.

    python bench/attacks.py [--images 1000] [--loop-images 10] [--reps 3] [--out docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from ciphers import common_arguments, load_cifar, machine, write_section  # noqa: E402

from leia import attacks, ciphers  # noqa: E402
from leia.attacks.base import Access  # noqa: E402
from leia.attacks.reference import greedy_decode_loop  # noqa: E402
from leia.data.sources import load_split  # noqa: E402

MARKS = ("<!-- bench/attacks.py:start -->", "<!-- bench/attacks.py:end -->")


def access(cipher, shape, cpa=False) -> Access:
    a = Access(cipher.name, cipher.config(), tuple(shape))
    if cpa:
        a.oracle = lambda x: cipher.encrypt(x)
    return a


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def analytic(x: torch.Tensor, reps: int) -> list[tuple[str, float]]:
    """(attack and setting, images/s) for the attacks' reconstruction of len(x) images."""
    rows = []
    cases = [
        ("tanaka_cpa (nibbles), tanaka", ciphers.create("tanaka", seed=0), dict(), True),
        ("tanaka_cpa (bytes), tanaka", ciphers.create("tanaka", seed=0), dict(mode="bytes"), True),
        ("skk_cpa, skk", ciphers.create("skk", seed=0), dict(), True),
        ("fr, skk", ciphers.create("skk", seed=0), dict(), False),
        ("skk_greedy (given, greedy), per-image skk", ciphers.create("skk", key_mode="per_image", per_image_keys="random"),
         dict(first_pixel="given"), False),
        ("skk_greedy (48 tried, greedy), per-image skk", ciphers.create("skk", key_mode="per_image", per_image_keys="random"),
         dict(first_pixel="search"), False),
        ("skk_greedy (given, global), per-image skk", ciphers.create("skk", key_mode="per_image", per_image_keys="random"),
         dict(first_pixel="given", decoder="global"), False),
    ]
    for label, cipher, params, cpa in cases:
        name = label.split(" ")[0].rstrip(",")
        a = attacks.create(name, **params)
        a.prepare(access(cipher, x.shape[-2:], cpa))
        y = cipher.encrypt(x)
        hint = a.hint(x)
        times = [timed(lambda: a.reconstruct(y, hint=hint)) for _ in range(reps)]
        rows.append((label, len(x) / statistics.median(times)))
        print(f"{label}: {rows[-1][1]:,.0f} images/s", flush=True)
    return rows


def greedy_vs_loop(x: torch.Tensor, reps: int) -> dict:
    cipher = ciphers.create("skk", key_mode="per_image", per_image_keys="random")
    y = cipher.encrypt(x)
    a = attacks.create("skk_greedy", first_pixel="given")
    a.prepare(access(cipher, x.shape[-2:]))
    hint = a.hint(x)
    batched_t, loop_t = [], []
    for _ in range(reps):  # interleaved
        batched_t.append(timed(lambda: a.reconstruct(y, hint=hint)))
        loop_t.append(timed(lambda: [greedy_decode_loop(y[i].numpy(), x[i, :, 0, 0].numpy()) for i in range(len(x))]))
    batched = a.reconstruct(y, hint=hint).images.numpy()
    same = all(np.array_equal(batched[i], greedy_decode_loop(y[i].numpy(), x[i, :, 0, 0].numpy())) for i in range(len(x)))
    b, l_ = statistics.median(batched_t), statistics.median(loop_t)
    print(f"skk_greedy batched {len(x) / b:,.0f} images/s, loop {len(x) / l_:,.2f} images/s: {l_ / b:,.0f}x, "
          f"same output: {same}", flush=True)
    return {"images": len(x), "batched": len(x) / b, "loop": len(x) / l_, "speedup": l_ / b, "same": same}


def jigsaw_speed(reps: int) -> list[tuple[str, int, float]]:
    rows = []
    cifar = load_cifar(DEFAULT, 2)
    big = load_split("photos", "test", size=224).images[2:4]
    for label, x, scheme, m in (("etc, CIFAR-10 32×32, M=4", cifar, "etc", 4), ("etc, photo 224×224, M=16", big, "etc", 16),
                                ("vit_block, photo 224×224, M=16", big, "vit_block", 16)):
        cipher = ciphers.create(scheme, seed=0, block_size=m)
        a = attacks.create("jigsaw")
        a.prepare(access(cipher, x.shape[-2:]))
        y = cipher.encrypt(x)
        seconds = statistics.median(timed(lambda: a.reconstruct(y)) for _ in range(reps)) / len(x)
        pieces = (x.shape[-1] // m) ** 2
        rows.append((label, pieces, seconds))
        print(f"jigsaw {label}: {pieces} pieces, {seconds:.2f} s per puzzle", flush=True)
    return rows


def section(args, rows, greedy, puzzles) -> str:
    lines = [
        MARKS[0], "## Attack speed", "",
        f"`python bench/attacks.py --images {args.images} --loop-images {args.loop_images} --reps {args.reps}` on "
        f"{machine()}; median of {args.reps} repetitions, CIFAR-10 test images (32×32).", "",
        "| attack | images/s |", "|---|---:|",
        *[f"| {label} | {rate:,.0f} |" for label, rate in rows], "",
        f"skk_greedy against a per-pixel loop of the same decoder (`leia.attacks.reference`, Chang & Case's "
        f"structure), {greedy['images']} images, interleaved: batched {greedy['batched']:,.0f} images/s, loop "
        f"{greedy['loop']:,.2f} images/s, **{greedy['speedup']:,.0f}× faster** (target ≥ 100×); identical output: "
        f"{'yes' if greedy['same'] else 'NO'}.", "",
        "| jigsaw puzzle | pieces | seconds per puzzle |", "|---|---:|---:|",
        *[f"| {label} | {p} | {s:.2f} |" for label, p, s in puzzles], "",
        "jigsaw on etc compares 8 orientations × 12 colour/NP tones per piece; vit_block's time includes the "
        "pixel-permutation estimate from the puzzle's own blocks.", MARKS[1],
    ]
    return "\n".join(lines)


DEFAULT = Path()


def main() -> None:
    global DEFAULT
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(p)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--loop-images", type=int, default=10)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    DEFAULT = args.cifar
    x = load_cifar(args.cifar, args.images)
    rows = analytic(x, args.reps)
    greedy = greedy_vs_loop(x[: args.loop_images], args.reps)
    puzzles = jigsaw_speed(args.reps)
    text = section(args, rows, greedy, puzzles)
    print(text)
    if args.out:
        write_section(args.out, text, MARKS)


if __name__ == "__main__":
    main()
