"""Real images for attack tests: scikit-image's photos (inside its wheel), never noise."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from leia import ciphers
from leia.attacks.base import Access
from leia.data.sources import load_split


@lru_cache(maxsize=None)
def photos(split: str = "test", size: int = 64) -> torch.Tensor:
    return load_split("photos", split, size=size).images


def access_for(cipher, shape, threat: str = "COA", known=None) -> Access:
    """What the attack task grants, built the same way (oracle under the victim key)."""
    access = Access(scheme=cipher.name, params=cipher.config(), image_size=tuple(shape))
    if threat == "CPA":
        access.oracle = lambda x: cipher.encrypt(x, ids=[f"chosen/{i}" for i in range(len(x))] if cipher.needs_ids else None)
    access.known = known
    return access


def victim(name: str, seed: int = 0, **params):
    return ciphers.create(name, seed=seed, **params)


def ids(cipher, n: int):
    return [f"victim/{i}" for i in range(n)] if cipher.needs_ids else None


CIFAR_FIXTURE = Path(__file__).resolve().parents[1] / "data" / "cifar10_test_250.npz"


@lru_cache(maxsize=None)
def cifar() -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """250 real CIFAR-10 test images (25 per class, class by class), committed in tests/data."""
    data = np.load(CIFAR_FIXTURE)
    return torch.from_numpy(data["images"]), torch.from_numpy(data["labels"]), [str(c) for c in data["classes"]]


def cifar_folder(root: Path, test_only: bool = False) -> Path:
    """The fixture as an image folder: every 4th image in test/ (63 victims), the others in train/
    (187 attacker images), so the two never share an image."""
    images, labels, classes = cifar()
    for i, (x, y) in enumerate(zip(images, labels)):
        split = "test" if i % 4 == 0 else "train"
        if test_only and split == "train":
            continue
        folder = root / split / classes[int(y)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    return root
