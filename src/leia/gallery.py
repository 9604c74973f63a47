"""The gallery: one image under every scheme, and its decryption — the first picture a reader of a
paper in this field expects. `leia gallery` (and `make run`) writes docs/gallery.png."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import ciphers

# (panel title, scheme, parameters): the settings the papers show, at 224×224.
GALLERY = [
    ("plain", "plain", {}),
    ("LE (tanaka), M=4", "tanaka", {"block_size": 4}),
    ("ELE, M=4", "ele", {"block_size": 4}),
    ("SKK, same key", "skk", {}),
    ("SKK, no colour shuffle", "skk", {"color_shuffle": False}),
    ("SKK, per-image key", "skk", {"key_mode": "per_image"}),
    ("EtC colour, M=16", "etc", {"block_size": 16}),
    ("EtC grayscale, M=8", "etc", {"grayscale": True, "block_size": 8}),
    ("ViT block, M=16", "vit_block", {"block_size": 16}),
    ("ViT block + NP, M=16", "vit_block", {"block_size": 16, "np": True}),
    ("ScrambleMix, view 0", "scramblemix", {}),
]
PER_ROW = 6


def load_sample(image: str, size: int) -> torch.Tensor:
    """A scikit-image sample (shipped inside its wheel, so offline) or an image file, centre-cropped
    to a square and resized to size×size; uint8 [3, size, size]."""
    import skimage.data

    if Path(image).is_file():
        im = Image.open(image).convert("RGB")
    elif hasattr(skimage.data, image):
        a = getattr(skimage.data, image)()
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"scikit-image sample {image!r} is not an RGB image")
        im = Image.fromarray(a)
    else:
        raise ValueError(f"{image!r} is neither an image file nor a scikit-image sample (e.g. astronaut, chelsea)")
    s = min(im.size)
    left, top = (im.width - s) // 2, (im.height - s) // 2
    im = im.crop((left, top, left + s, top + s)).resize((size, size), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)


def _show(ax, x: torch.Tensor, title: str) -> None:
    a = x.numpy()
    if a.shape[0] == 1:
        ax.imshow(a[0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(a.transpose(1, 2, 0))
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def render_gallery(out: Path, image: str = "astronaut", size: int = 224, seed: int = 0) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = load_sample(image, size)
    bands = -(-len(GALLERY) // PER_ROW)
    fig, axes = plt.subplots(2 * bands, PER_ROW, figsize=(2.7 * PER_ROW, 2.9 * 2 * bands))
    for i, (title, name, params) in enumerate(GALLERY):
        cipher = ciphers.create(name, seed=seed, **params)
        ids = ["gallery"] if cipher.needs_ids else None
        y = cipher.encrypt(x[None], ids=ids)[0]
        row, col = 2 * (i // PER_ROW), i % PER_ROW
        bits = cipher.key_space_bits((size, size))
        _show(axes[row, col], y, f"{title}\n2^{bits:,.0f} keys" if bits else title)
        if cipher.invertible:
            back = cipher.decrypt(y[None], ids=ids)[0]
            err = int((back.int() - x.int()).abs().max())
            _show(axes[row + 1, col], back, "decrypted: exact" if err == 0 else f"decrypted: max |Δ| = {err} (YCbCr)")
        else:  # scramblemix: a blend has no inverse; undo the scramble with the larger weight
            (pair,), (weight,) = (a[0] for a in cipher.view_parameters(ids, [0], size, size))
            member = 2 * int(pair) + int(weight >= 32768)
            back = cipher.unscramble(y[None], member)[0]
            err = int((back.int() - x.int()).abs().max())
            _show(axes[row + 1, col], back, f"not invertible; its main key\nundone: max |Δ| = {err}")
    for i in range(len(GALLERY), bands * PER_ROW):  # empty panels of a last, partial band
        axes[2 * (i // PER_ROW), i % PER_ROW].axis("off")
        axes[2 * (i // PER_ROW) + 1, i % PER_ROW].axis("off")
    fig.suptitle(f"leia schemes on a {size}×{size} image (key seed {seed}); rows: encrypted, decrypted", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, metadata={"Software": None})  # same bytes on every run
    plt.close(fig)
    return out
