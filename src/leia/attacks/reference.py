"""Per-pixel loop implementation of Chang & Case's greedy SKK decoder, written the way their MATLAB
code works (one pixel at a time). It is the oracle the batched decoder is tested against, and the
baseline of its speed benchmark; never used by the attacks themselves."""

from __future__ import annotations

import numpy as np

from ..ciphers.layout import COLOR_PERMS_INV


def pixel_candidates(pixel: np.ndarray, color_shuffle: bool = True) -> list[np.ndarray]:
    """The plain candidates of one encrypted pixel (3 values), in the order 8·order + pattern."""
    out = []
    for order in (COLOR_PERMS_INV if color_shuffle else [np.arange(3)]):
        for pattern in range(8):
            flips = np.array([(pattern >> c) & 1 for c in range(3)]) * 255
            out.append(pixel[order].astype(np.int64) ^ flips)
    return out


def greedy_decode_loop(y: np.ndarray, first: np.ndarray, color_shuffle: bool = True) -> np.ndarray:
    """y: one encrypted image [3, H, W] uint8; first: the plain first pixel [3]. Returns [3, H, W]."""
    _, h, w = y.shape
    out = np.zeros((3, h, w), dtype=np.int64)

    def nearest(r, c, ref):
        best, best_cost = None, None
        for cand in pixel_candidates(y[:, r, c], color_shuffle):
            cost = int(np.abs(cand - ref).sum())
            if best_cost is None or cost < best_cost:  # strict: the first candidate wins ties
                best, best_cost = cand, cost
        return best

    out[:, 0, 0] = nearest(0, 0, first.astype(np.int64))
    for r in range(h):
        for c in range(w):
            if r == 0 and c == 0:
                continue
            ref = out[:, 0, c - 1] if r == 0 else out[:, r - 1, c]
            out[:, r, c] = nearest(r, c, ref)
    return out.astype(np.uint8)
