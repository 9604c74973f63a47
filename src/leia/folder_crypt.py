"""The data owner's tool: encrypt a folder of images into a folder of lossless PNGs, with the key
written elsewhere, and decrypt such a folder back.

The folder layout is kept (train/cat/0001.jpg -> train/cat/0001.png), so image-folder datasets stay
image-folder datasets. An image's id for per-image keys is its relative path without extension,
which survives the change of extension. Nothing is ever overwritten, and the key may not be written
inside the folder that is going to be shared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .ciphers import Cipher
from .errors import ImageFormatError, InputError
from .images import IMAGE_SUFFIXES, is_image, open_rgb

MANIFEST = "leia-encryption.json"
BATCH = 256


@dataclass
class Report:
    images: int = 0
    converted_to_rgb: int = 0
    key_file: str | None = None


def list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if is_image(p))


def image_id(root: Path, path: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def read_image(path: Path, channels: int, report: Report | None = None) -> torch.Tensor:
    with Image.open(path) as im:
        if channels == 3:
            im, converted = open_rgb(im, path)
            if converted and report is not None:
                report.converted_to_rgb += 1
        elif im.mode != "L":
            raise ImageFormatError(f"{path}: expected a single-channel (mode L) ciphertext PNG, got mode {im.mode}")
        a = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(a.copy()).permute(2, 0, 1) if a.ndim == 3 else torch.from_numpy(a.copy())[None]


def write_png(path: Path, x: torch.Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = x.cpu().numpy()
    img = Image.fromarray(a[0], mode="L") if a.shape[0] == 1 else Image.fromarray(a.transpose(1, 2, 0), mode="RGB")
    img.save(path, format="PNG")  # lossless: the bytes the cipher produced, exactly


def _check_destination(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise InputError(f"source folder {src} does not exist")
    if dst.resolve() == src.resolve() or dst.resolve().is_relative_to(src.resolve()):
        raise InputError(f"the output folder {dst} must not be inside the source folder {src}")
    if dst.exists() and any(dst.iterdir()):
        raise FileExistsError(f"output folder {dst} is not empty; refusing to overwrite")


def _batches(src: Path, files: list[Path], channels: int, report: Report) -> Iterator[tuple[list[Path], torch.Tensor]]:
    """Consecutive images of one size, stacked, at most BATCH at a time."""
    group: list[Path] = []
    tensors: list[torch.Tensor] = []
    for path in files:
        x = read_image(path, channels, report)
        if tensors and (x.shape != tensors[0].shape or len(tensors) == BATCH):
            yield group, torch.stack(tensors)
            group, tensors = [], []
        group.append(path)
        tensors.append(x)
    if tensors:
        yield group, torch.stack(tensors)


def encrypt_folder(cipher: Cipher, src: Path, dst: Path, key_out: Path | None, progress: bool = True) -> Report:
    src, dst = Path(src), Path(dst)
    _check_destination(src, dst)
    files = list_images(src)
    if not files:
        raise InputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {src}")
    report = Report()
    storable = cipher.keyed and cipher.uses_secret  # plain has no key; throw-away keys are never kept
    if storable and key_out is None:
        raise InputError("give --key-out: the key file the data owner keeps (outside the shared folder)")
    if not storable and key_out is not None:
        raise InputError(f"{cipher!r} has no key to write; leave out --key-out")
    size = None
    if key_out is not None:
        key_out = Path(key_out)
        if key_out.resolve().is_relative_to(dst.resolve()):
            raise InputError(f"the key file {key_out} must not be written inside the shared folder {dst}")
        if key_out.exists():
            raise FileExistsError(f"{key_out} already exists; refusing to overwrite a key file")
        size = read_image(files[0], 3).shape[-2:]
        cipher.save_key(key_out, image_size=tuple(size) if cipher.shape_dependent else None)
        report.key_file = str(key_out)
    dst.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(files), desc=f"encrypt ({cipher.name})", unit="img", disable=not progress) as bar:
        for group, x in _batches(src, files, 3, report):
            if size is not None and cipher.shape_dependent and tuple(x.shape[-2:]) != tuple(size):
                raise ImageFormatError(
                    f"{group[0]} is {x.shape[-2]}x{x.shape[-1]} but the key was made for {size[0]}x{size[1]}: "
                    f"{cipher.name} keys depend on the image size, so one folder must hold one size"
                )
            ids = [image_id(src, p) for p in group] if cipher.needs_ids else None
            y = cipher.encrypt(x, ids=ids)
            for path, yi in zip(group, y):
                write_png(dst / path.relative_to(src).with_suffix(".png"), yi)
            report.images += len(group)
            bar.update(len(group))
    manifest = {**cipher.describe(), "images": report.images, "key_ids": "relative path without extension"}
    (dst / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return report


def decrypt_folder(cipher: Cipher, src: Path, dst: Path, progress: bool = True) -> Report:
    src, dst = Path(src), Path(dst)
    _check_destination(src, dst)
    files = [p for p in list_images(src) if p.suffix.lower() == ".png"]
    if not files:
        raise InputError(f"no encrypted PNGs found under {src}")
    channels = cipher.cipher_shape(cipher.block_size, cipher.block_size)[0]
    report = Report()
    dst.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(files), desc=f"decrypt ({cipher.name})", unit="img", disable=not progress) as bar:
        for group, y in _batches(src, files, channels, report):
            ids = [image_id(src, p) for p in group] if cipher.needs_ids else None
            x = cipher.decrypt(y, ids=ids)
            for path, xi in zip(group, x):
                write_png(dst / path.relative_to(src), xi)
            report.images += len(group)
            bar.update(len(group))
    return report
