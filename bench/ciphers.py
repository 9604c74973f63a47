"""Cipher throughput on 10,000 CIFAR-sized images, against two baselines measured in the same run:
the gather floor (a bare torch.gather over the same [B, 3·H·W] bytes, the least any permutation
cipher must do) and a straightforward per-image numpy implementation of the same scheme
(leia.ciphers.reference, written the way public code is).

    python bench/ciphers.py [--cifar ../shared/data/cifar10] [--out docs/BENCHMARKS.md]

Writes its table between markers in the output file, so other benchmarks can share it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from leia import ciphers
from leia.ciphers.reference import encrypt_image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
MARK_START, MARK_END = "<!-- bench/ciphers.py:start -->", "<!-- bench/ciphers.py:end -->"

# (row label, scheme, params, kernel family and its target ratio to the gather floor)
CASES = [
    ("plain", "plain", {}, "byte", 3),
    ("tanaka M=4", "tanaka", {"block_size": 4}, "nibble", 5),
    ("ele M=4", "ele", {"block_size": 4}, "nibble", 5),
    ("skk same key", "skk", {}, "byte", 3),
    ("skk same key, no shuffle", "skk", {"color_shuffle": False}, "byte", 3),
    ("etc M=4", "etc", {"block_size": 4}, "byte", 3),
    ("etc grayscale M=4", "etc", {"grayscale": True, "block_size": 4}, "byte", 3),
    ("vit_block M=4", "vit_block", {"block_size": 4}, "byte", 3),
    ("vit_block M=4 +NP", "vit_block", {"block_size": 4, "np": True}, "byte", 3),
    ("skk per-image, derived keys (cold)", "skk", {"key_mode": "per_image"}, "per-image", 5),
    ("skk per-image, derived keys (cached)", "skk", {"key_mode": "per_image"}, "per-image", 5),
    ("skk per-image, throw-away keys", "skk", {"key_mode": "per_image", "per_image_keys": "random"}, "per-image", 5),
]


def load_cifar(root: Path, n: int) -> torch.Tensor:
    files = sorted((root / "test").rglob("*.jpg"))[:n]
    if len(files) < n:
        sys.exit(f"need {n} images under {root}/test, found {len(files)} (pass --cifar <image folder>)")
    return torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])).permute(0, 3, 1, 2).contiguous()


def timed(fn, reps: int, sync=lambda: None) -> float:
    """Median seconds of `reps` calls after one warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def paired(fn, floor_fn, reps: int) -> tuple[float, float, float]:
    """Time fn and the floor alternately (this machine's speed drifts by 2x within a minute), and
    return (median fn seconds, median floor seconds, median of the per-pair ratios)."""
    fn()
    floor_fn()
    times, floors, ratios = [], [], []
    for _ in range(reps):
        t = time.perf_counter()
        floor_fn()
        f = time.perf_counter() - t
        t = time.perf_counter()
        fn()
        s = time.perf_counter() - t
        times.append(s)
        floors.append(f)
        ratios.append(s / f)
    return statistics.median(times), statistics.median(floors), statistics.median(ratios)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads){gpu}"


def run(x: torch.Tensor, reps: int, numpy_images: int, device: str | None) -> tuple[str, list[dict]]:
    b = x.shape[0]
    ids = [f"test/{i}" for i in range(b)]
    flat = x.reshape(b, -1)
    index = torch.randperm(flat.shape[1])

    def floor_fn():
        return torch.gather(flat, 1, index.expand_as(flat))

    floors = []
    gpu_floor = None
    if device:
        xg = flat.to(device)
        ig = index.to(device)
        sync = torch.cuda.synchronize
        gpu_floor = timed(lambda: torch.gather(xg, 1, ig.expand_as(xg)), reps, sync)
    rows = []
    for label, name, params, family, target in CASES:
        t0 = time.perf_counter()
        cipher = ciphers.create(name, seed=0, **params)
        if params.get("key_mode") != "per_image":
            cipher.maps(32, 32)  # derive the key and compile it: once per key
        setup = time.perf_counter() - t0
        use_ids = ids if cipher.needs_ids else None

        def current():
            # the cold row pays for every per-image key derivation inside the timed call
            return ciphers.create(name, seed=0, **params) if "cold" in label else cipher

        y = cipher.encrypt(x, ids=use_ids)
        t_enc, floor, ratio = paired(lambda: current().encrypt(x, ids=use_ids), floor_fn, reps)
        floors.append(floor)
        t_dec = timed(lambda: current().decrypt(y, ids=use_ids), reps) if cipher.invertible else None
        # per-image numpy baseline, on a subset (it is slow), keys derived fresh as public code draws them
        ref_cipher = ciphers.create(name, seed=1, **params)
        if ref_cipher.uses_secret:
            imgs = x[:numpy_images].permute(0, 2, 3, 1).numpy()
            t = time.perf_counter()
            for i, img in enumerate(imgs):
                encrypt_image(ref_cipher, img, image_id=ids[i])
            numpy_rate = numpy_images / (time.perf_counter() - t)
        else:
            numpy_rate = None
        gpu_rate = None
        if device:
            xg = x.to(device)
            gpu_rate = b / timed(lambda: current().encrypt(xg, ids=use_ids), reps, torch.cuda.synchronize)
        rows.append(dict(label=label, family=family, target=target, setup=setup, enc=b / t_enc,
                         dec=None if t_dec is None else b / t_dec, ratio=ratio, numpy=numpy_rate, gpu=gpu_rate))
    header = dict(floor=b / statistics.median(floors), gpu_floor=None if gpu_floor is None else b / gpu_floor)
    return header, rows


def table(header: dict, rows: list[dict], args, n: int) -> str:
    gpu = header["gpu_floor"] is not None
    lines = [
        MARK_START,
        "## Cipher throughput",
        "",
        f"Command: `python bench/ciphers.py --images {n} --reps {args.reps}` (also `make bench`).",
        f"Machine: {machine()}.",
        f"Data: the first {n:,} images of CIFAR-10 test (JPEG copy), one batch of uint8 [{n}, 3, 32, 32].",
        "Rates are images/s, medians of the timed repetitions after a warm-up. Each encryption is timed",
        "right after a floor gather, and *time / gather floor* is the median of those per-pair ratios",
        "(this machine's speed drifts by up to 2× within a minute). Key derivation and compilation",
        "happen once per key (*key setup*) and are excluded, except in the *cold* row, which builds a",
        "new cipher, deriving every per-image key from scratch, inside each timed call.",
        "",
        f"Gather floor (bare `torch.gather` over the same [B, 3072] bytes; median): **{header['floor']:,.0f} images/s** on CPU"
        + (f", {header['gpu_floor']:,.0f} images/s on GPU." if gpu else "."),
        "",
        "| scheme | kernel | key setup ms | encrypt img/s | decrypt img/s | time / gather floor | target | per-image numpy img/s | speed-up vs numpy |"
        + (" GPU encrypt img/s |" if gpu else ""),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if gpu else ""),
    ]
    for r in rows:
        ok = "✓" if r["ratio"] <= r["target"] else "✗"
        numpy_col = f"{r['numpy']:,.0f}" if r["numpy"] else "—"
        speed = f"{r['enc'] / r['numpy']:,.0f}×" if r["numpy"] else "—"
        dec = f"{r['dec']:,.0f}" if r["dec"] else "not invertible"
        line = (f"| {r['label']} | {r['family']} | {r['setup'] * 1e3:,.0f} | {r['enc']:,.0f} | {dec} | {r['ratio']:.2f}× | ≤ {r['target']}× {ok} "
                f"| {numpy_col} | {speed} |")
        if gpu:
            line += f" {r['gpu']:,.0f} |"
        lines.append(line)
    lines += [
        "",
        "Notes on the rows that miss their target (profiled while tuning these kernels):",
        "- *etc grayscale*: the gather itself runs at the floor; the RGB→YCbCr conversion (libjpeg's",
        "  16-bit fixed point in int32, chosen so CPU and GPU agree byte for byte) costs about 3× the",
        "  floor on its own in eager PyTorch, even in cache-sized chunks.",
        "- *skk per-image*: every pixel has its own colour order, so each batch needs a per-image",
        "  channel index; building it and the NP mask costs about 5× the floor in eager PyTorch (a",
        "  table lookup, an arithmetic and a bit-packing variant all measured the same).",
        "- *cold* derivation is bound by the key-derivation contract: 26 HMAC-SHA256 blocks per 32×32",
        "  image (NP bits and colour codes), each one Python call of 1.2–1.9 µs here. Derived keys are",
        "  cached per image id, so after the first epoch a training run pays the *cached* row.",
        "- *throw-away* keys come from the OS CSPRNG (os.urandom) and are drawn for every call.",
        "- The per-image numpy baseline for throw-away keys is not run (it has no reproducible key).",
        MARK_END,
    ]
    return "\n".join(lines)


def common_arguments(p: argparse.ArgumentParser) -> None:
    """--cifar and --out, shared by the benchmarks."""
    p.add_argument("--cifar", type=Path, default=Path(os.environ.get("CIFAR", DEFAULT_CIFAR)),
                   help="CIFAR-10 image folder (train/, test/)")
    p.add_argument("--out", type=Path, help="Markdown file to write this benchmark's section into")


def publish(lines: list[str], out: Path | None, marks: tuple[str, str]) -> None:
    """Print a benchmark's section (its lines, markers included) and, with `out`, write it there."""
    section = "\n".join(lines)
    print(section)
    if out:
        write_section(out, section, marks)


def write_section(out: Path, section: str, marks: tuple[str, str] = (MARK_START, MARK_END)) -> None:
    """Replace this benchmark's section of `out` (between its markers), or append it."""
    text = out.read_text() if out.exists() else "# Benchmarks\n\nEvery number here was measured by the command written beside it.\n\n"
    if marks[0] in text:
        before, rest = text.split(marks[0], 1)
        after = rest.split(marks[1], 1)[1]
        text = before + section + after
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    out.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(p)
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--numpy-images", type=int, default=200)
    args = p.parse_args()
    x = load_cifar(args.cifar, args.images)
    device = "cuda" if torch.cuda.is_available() else None
    header, rows = run(x, args.reps, args.numpy_images, device)
    section = table(header, rows, args, args.images)
    print(section)
    if args.out:
        write_section(args.out, section)


if __name__ == "__main__":
    main()
