"""Reading image files the same way everywhere (data sources, the data owner's folder tool)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .errors import ImageFormatError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
# Modes that expand to RGB without losing information; anything else is refused, not converted.
LOSSLESS_TO_RGB = ("L", "P", "1")


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def open_rgb(im: Image.Image, path: Path) -> tuple[Image.Image, bool]:
    """`im` as RGB, and whether it had to be (losslessly) expanded; lossy modes raise."""
    if im.mode == "RGB":
        return im, False
    if im.mode not in LOSSLESS_TO_RGB:
        raise ImageFormatError(f"{path}: image mode {im.mode} would lose information as RGB; convert it first")
    return im.convert("RGB"), True


def read_rgb(path: Path) -> np.ndarray:
    """An image file as a uint8 HWC RGB array."""
    with Image.open(path) as im:
        return np.asarray(open_rgb(im, path)[0])
