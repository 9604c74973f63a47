"""Dataset sources: where images come from, decoded once into uint8 tensors kept in memory.

Every source returns, per split, `Images(images uint8 [N, 3, H, W], labels int64 [N], classes)`.
Registered sources:
- `digits`: scikit-learn's handwritten digits (shipped inside its wheel: the offline default),
  8×8 grey levels 0..16 scaled to 0..255, resized to 32×32 and replicated to RGB. Fixed split:
  every 5th image (by index) is a test image.
- `cifar10`, `cifar100`: torchvision's binary release (downloaded when `download: true`), or an
  image-folder copy of it (`format: imagefolder`, e.g. ../shared/data/cifar10, the JPEG copy).
- `imagefolder`: any folder with train/<class>/ and test/<class>/ (or val/<class>/) subfolders.
Image folders are decoded once and cached as .npy under $LEIA_CACHE (`decoded_cache`).
A missing dataset raises an error that says where it looked and how to get the data.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..images import IMAGE_SUFFIXES, is_image, read_rgb
from ..registry import Registry



@dataclass
class Images:
    images: torch.Tensor  # uint8 [N, 3, H, W]
    labels: torch.Tensor  # int64 [N]
    classes: list[str]
    split: str

    def __len__(self) -> int:
        return len(self.labels)

    def per_class(self, limit: int, what: str = "limit") -> list[int]:
        """How many images of each class a class-balanced subset of `limit` takes: limit // classes
        each, and one more for the first limit % classes classes (so exactly `limit` in all)."""
        k = len(self.classes)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < k:
            raise InputError(f"{what}={limit!r} is below the {k} classes of this {self.split} split: subsets are "
                             f"class-balanced, so give at least {k} images (or null for all)")
        return [limit // k + (c < limit % k) for c in range(k)]

    def subset(self, limit: int | None, what: str = "limit") -> "Images":
        """The first images of every class, in index order, `limit` in all (a class-balanced subset)."""
        if limit is not None and limit < len(self.classes):
            self.per_class(limit, what)  # refuses it, naming the setting
        if limit is None or limit >= len(self):
            return self
        keep = []
        for c, n in enumerate(self.per_class(limit, what)):
            keep.extend(torch.nonzero(self.labels == c).flatten()[:n].tolist())
        keep = torch.tensor(sorted(keep))
        return Images(self.images[keep], self.labels[keep], self.classes, self.split)


class DatasetNotFound(InputError, FileNotFoundError):
    """A dataset is not where the config says it is."""


SOURCES: Registry = Registry("data source")


def load_split(name: str, split: str, **options) -> Images:
    """Load `split` ("train" or "test") of source `name` with its config options."""
    return SOURCES.get(name)(split=split, **options)


# ---------------------------------------------------------------- digits (offline default)
@SOURCES.register("digits")
def digits(split: str, size: int = 32, **_) -> Images:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    gray = torch.from_numpy((bunch.images * (255.0 / 16.0)).round().astype(np.uint8))  # [N, 8, 8]
    gray = torch.nn.functional.interpolate(gray[:, None].float(), size=(size, size), mode="bilinear", align_corners=False)
    gray = gray.round().clamp(0, 255).to(torch.uint8)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    test = torch.arange(len(labels)) % 5 == 0
    keep = test if split == "test" else ~test
    return Images(gray[keep].expand(-1, 3, -1, -1).contiguous(), labels[keep], [str(c) for c in range(10)], split)


# ---------------------------------------------------------------- image folders
def _split_dir(root: Path, split: str) -> Path:
    candidates = [root / split] + ([root / "val"] if split == "test" else [])
    for c in candidates:
        if c.is_dir():
            return c
    raise DatasetNotFound(
        f"no {split} split under {root}: looked for {', '.join(str(c) for c in candidates)}. "
        f"An image folder needs {root}/train/<class>/*.png|jpg and {root}/test/<class>/ (or val/)."
    )


def read_image_folder(root: str | Path, split: str, how_to_get: str = "") -> Images:
    """A split of an image folder, decoded once: the decoded array is cached (`decoded_cache`),
    keyed by the folder's contents, so later runs load it instead of decoding every file again
    (about 40 s for CIFAR-10's training split on 2 cores)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetNotFound(f"dataset folder {root} does not exist. {how_to_get}".strip())
    base = _split_dir(root, split)
    classes = sorted(d.name for d in base.iterdir() if d.is_dir())
    files, labels = [], []
    for c, name in enumerate(classes):
        found = sorted(p for p in (base / name).iterdir() if is_image(p))
        files += found
        labels += [c] * len(found)
    if not files:
        raise DatasetNotFound(f"no images under {base}/<class>/ (looked for {', '.join(IMAGE_SUFFIXES)})")
    cache = decoded_cache(base, files)
    if cache is not None and cache.is_file():
        try:
            cached = np.load(cache)
        except (OSError, ValueError):  # a damaged cache file: decode again and replace it
            cached = None
        if cached is not None and cached.dtype == np.uint8 and cached.ndim == 4 and len(cached) == len(files):
            return Images(torch.from_numpy(cached), torch.tensor(labels, dtype=torch.int64), classes, split)
    with ThreadPoolExecutor(8) as pool:  # PIL releases the GIL while decoding
        arrays = list(pool.map(read_rgb, files))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise InputError(f"images under {base} have different sizes {sorted(shapes)[:3]}...; resize them to one size first")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    if cache is not None:
        _save_atomically(cache, images.numpy())
    return Images(images, torch.tensor(labels, dtype=torch.int64), classes, split)


def decoded_cache(base: Path, files: list[Path]) -> Path | None:
    """Where the decoded array of these files is cached: $LEIA_CACHE (default ~/.cache/leia)/decoded/,
    named by a hash of every file's relative path, size and modification time, so a changed,
    added or removed image makes another name. LEIA_CACHE=off disables the cache."""
    where = os.environ.get("LEIA_CACHE", "~/.cache/leia")
    if where == "off":
        return None
    h = hashlib.sha256(str(base.resolve()).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(base).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return Path(where).expanduser() / "decoded" / f"{base.parent.name}-{base.name}-{h.hexdigest()[:20]}.npy"


def _save_atomically(path: Path, array: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except OSError:  # a read-only or full cache only costs the next run its decoding time
        pass


@SOURCES.register("imagefolder")
def imagefolder(split: str, root: str | None = None, **_) -> Images:
    if not root:
        raise DatasetNotFound("data=imagefolder needs data.root=<folder with train/ and test/ subfolders>")
    return read_image_folder(root, split)


# ---------------------------------------------------------------- CIFAR
def _cifar(name: str, split: str, root: str, format: str = "torchvision", download: bool = False, **_) -> Images:
    how = (
        f"Get it with data.download=true (needs internet), or point data.root at an image-folder copy "
        f"with data.format=imagefolder (e.g. data.root=../shared/data/{name})."
    )
    if format == "imagefolder":
        return read_image_folder(root, split, how)
    if format != "torchvision":
        raise InputError(f"data.format must be torchvision or imagefolder, got {format!r}")
    from torchvision import datasets

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    try:
        ds = cls(root=str(Path(root).expanduser()), train=split == "train", download=download)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted"
        raise DatasetNotFound(f"{name} not found under {Path(root).expanduser()} ({e}). {how}") from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return Images(images, torch.tensor(ds.targets, dtype=torch.int64), list(ds.classes), split)


@SOURCES.register("cifar10")
def cifar10(split: str, root: str = "~/.cache/leia/cifar10", **options) -> Images:
    return _cifar("cifar10", split, root, **options)


@SOURCES.register("cifar100")
def cifar100(split: str, root: str = "~/.cache/leia/cifar100", **options) -> Images:
    return _cifar("cifar100", split, root, **options)


# ---------------------------------------------------------------- photos (offline attack figures)
# Real photographs shipped inside scikit-image's wheel. The test split (victims) holds colour photos;
# the train split (an attacker's own images) holds the others, so the two never share an image.
PHOTOS_TEST = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg")
PHOTOS_TRAIN = ("camera.png", "brick.png", "grass.png", "gravel.png", "moon.png", "retina.jpg", "ihc.png",
                "motorcycle_right.png", "coins.png", "page.png", "text.png", "cell.png")


def _square(path: Path, size: int) -> np.ndarray:
    """A centre square crop, resized to size×size with Lanczos filtering, as RGB."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        side = min(im.size)
        left, top = (im.size[0] - side) // 2, (im.size[1] - side) // 2
        return np.asarray(im.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS))


@SOURCES.register("photos")
def photos(split: str, size: int = 128, **_) -> Images:
    import skimage

    root = Path(skimage.__file__).parent / "data"
    names = PHOTOS_TEST if split == "test" else PHOTOS_TRAIN
    images = torch.from_numpy(np.stack([_square(root / n, size) for n in names])).permute(0, 3, 1, 2).contiguous()
    return Images(images, torch.zeros(len(names), dtype=torch.int64), ["photo"], split)
