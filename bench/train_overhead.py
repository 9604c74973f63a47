"""Training throughput with encryption vs without: same model, data, data path and loop; encryption
in the dataset (main process, num_workers=0, so its cost is not hidden by parallel workers), on the
device after transfer, or on the device-resident path (augmentation and encryption batched there).
The machine drifts by ±20% within a minute, so a plain and an encrypted loop
take turns batch by batch (which one goes first alternates), and the ratio is encrypted img/s ÷
plain img/s of that pair. Target: >= 0.95.

    python bench/train_overhead.py [--cifar ../shared/data/cifar10] [--out docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from leia import ciphers
from leia.data.datamodule import DataConfig, EncryptedDataModule
from leia.models.backbones import create_backbone

sys.path.insert(0, str(Path(__file__).parent))
from ciphers import common_arguments, machine, publish  # noqa: E402

MARKS = ("<!-- bench/train_overhead.py:start -->", "<!-- bench/train_overhead.py:end -->")
CASES = [(scheme, params, placement) for scheme, params in (("tanaka", {}), ("etc", {}), ("skk", {"key_mode": "per_image"}))
         for placement in ("dataset", "device", "resident")]


class Run:
    """One training loop (model, optimiser, loader) that can be stepped one batch at a time."""

    def __init__(self, scheme: str, params: dict, placement: str, args):
        torch.manual_seed(0)
        cipher = ciphers.create(scheme, seed=0, **params)
        cfg = DataConfig(name="cifar10", root=str(args.cifar), format="imagefolder",
                         batch_size=args.batch, placement=placement, train_limit=args.images, seed=0)
        self.dm = EncryptedDataModule(cfg, cipher)
        self.dm.train_data, self.dm.test_data = args.data
        self.model = create_backbone("resnet20", 10, self.dm.input_shape[0], self.dm.input_shape[1:])
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        self.loss = torch.nn.CrossEntropyLoss()
        self.loader = self.dm.train_dataloader()
        self.seconds, self.images = 0.0, 0

    def start_epoch(self, epoch: int):
        self.loader.sampler.set_epoch(epoch)
        self.it = iter(self.loader)
        self.seconds, self.images = 0.0, 0

    def step(self) -> bool:
        """Load (and encrypt) one batch and train on it; the time includes the data path."""
        t = time.perf_counter()
        batch = next(self.it, None)
        if batch is None:
            return False
        batch = self.dm.on_after_batch_transfer(batch, 0)
        self.opt.zero_grad()
        self.loss(self.model(batch["image"]), batch["label"]).backward()
        self.opt.step()
        self.seconds += time.perf_counter() - t
        self.images += len(batch["label"])
        return True


def paired_rates(scheme: str, params: dict, placement: str, args) -> tuple[list[float], list[float]]:
    """Plain and encrypted training stepped alternately, batch by batch, so that the machine's drift
    hits both equally; images/s of each epoch for each."""
    plain, enc = Run("plain", {}, placement, args), Run(scheme, params, placement, args)  # the same data path
    rates = ([], [])
    for epoch in range(args.epochs):
        plain.start_epoch(epoch), enc.start_epoch(epoch)
        order = (plain, enc)
        while order[0].step() and order[1].step():
            order = order[::-1]  # alternate who goes first: no cache-warmth bias
        rates[0].append(plain.images / plain.seconds)
        rates[1].append(enc.images / enc.seconds)
    return rates


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(p)
    p.add_argument("--images", type=int, default=2560)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    from leia.data.sources import load_split

    args.data = (load_split("cifar10", "train", root=str(args.cifar), format="imagefolder").subset(args.images),
                 load_split("cifar10", "test", root=str(args.cifar), format="imagefolder").subset(512))
    rows = []
    for scheme, params, placement in CASES:
        plain, enc = paired_rates(scheme, params, placement, args)
        label = scheme + (" per-image keys" if params.get("key_mode") == "per_image" else "")
        rows.append((label, placement, plain, enc))
        print(label, placement, [round(r) for r in plain], [round(r) for r in enc], flush=True)
    lines = [
        MARKS[0],
        "## Training throughput with encryption",
        "",
        f"Command: `python bench/train_overhead.py --images {args.images} --epochs {args.epochs}`.",
        f"Machine: {machine()}.",
        f"ResNet-20, batch {args.batch}, SGD, {args.images:,} CIFAR-10 (JPEG copy) training images with crop+flip",
        "augmentation, data loading in the main process (num_workers=0). A plain and an encrypted training",
        "loop on the same data path (`data.placement`) take turns batch by batch (this machine drifts by ±20% within a minute, which would swamp a",
        "few-percent cost); images/s of each epoch including the data path; ratio = encrypted ÷ plain",
        "(1.0 = free). Target ≥ 0.95.",
        "",
        "| scheme | encryption runs in | plain img/s (epoch 1, 2) | encrypted img/s (epoch 1, 2) | ratio epoch 1 | ratio epoch 2 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, placement, plain, enc in rows:
        ratios = [e / q for e, q in zip(enc, plain)]
        lines.append(f"| {label} | {placement} | {', '.join(f'{r:,.0f}' for r in plain)} | "
                     f"{', '.join(f'{r:,.0f}' for r in enc)} | " + " | ".join(f"{r:.3f} {'✓' if r >= 0.95 else '✗'}" for r in ratios) + " |")
    mean = statistics.mean(e / q for _, _, plain, enc in rows for e, q in zip(enc, plain))
    lines += ["", f"Mean ratio over all rows and epochs: {mean:.3f}. Per-image keys are derived during epoch 1 and",
              "cached per image id afterwards.", MARKS[1]]
    publish(lines, args.out, MARKS)


if __name__ == "__main__":
    main()
