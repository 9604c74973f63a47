"""Block layout helpers used to compile keys into gather indices.

Schemes are compiled by applying their block operations to an *index image* (each element holds
its own flat position in the channel-first [C, H, W] tensor) instead of to pixels: the result tells,
for every output position, which input position it reads. "Flatten a block" is (row, column,
channel) order, channel fastest, as schemes.md fixes it, even though tensors are channel-first.
"""

from __future__ import annotations

import numpy as np

# Colour orders of schemes.md: output channel k takes input channel COLOR_PERMS[s][k].
COLOR_PERMS = np.array([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]], dtype=np.int64)
COLOR_PERMS_INV = np.argsort(COLOR_PERMS, axis=1)


def _inplace_sources(perm) -> list[int]:
    src: list[int] = []
    for k, p in enumerate(perm):
        src.append(src[p] if p < k else int(p))  # channel p < k was already overwritten
    return src


# What published code that assigned channels in place on numpy views computes
# (x[..., 0], x[..., 1], x[..., 2] = x[..., p0], x[..., p1], x[..., p2]): output channel k takes
# LEGACY_SOURCES[s][k]; 5 of the 6 codes duplicate a channel (code 4 greys the pixel).
LEGACY_SOURCES = np.array([_inplace_sources(p) for p in COLOR_PERMS], dtype=np.int64)


def positions(c: int, h: int, w: int) -> np.ndarray:
    return np.arange(c * h * w, dtype=np.int64).reshape(c, h, w)


def to_blocks(t: np.ndarray, m: int) -> np.ndarray:
    """[C, H, W] -> [N, M, M, C] blocks in raster order (block rows, then block columns)."""
    c, h, w = t.shape
    return t.reshape(c, h // m, m, w // m, m).transpose(1, 3, 2, 4, 0).reshape(-1, m, m, c)


def from_blocks(b: np.ndarray, h: int, w: int) -> np.ndarray:
    """Inverse of `to_blocks`: [N, M, M, C] -> [C, H, W]."""
    n, m, _, c = b.shape
    return b.reshape(h // m, w // m, m, m, c).transpose(4, 0, 2, 1, 3).reshape(c, h, w)


def flatten_blocks(t: np.ndarray, m: int) -> np.ndarray:
    """[C, H, W] -> [N, 3M²] with each block flattened in (row, column, channel) order."""
    b = to_blocks(t, m)
    return b.reshape(b.shape[0], -1)


def unflatten_blocks(v: np.ndarray, c: int, h: int, w: int, m: int) -> np.ndarray:
    return from_blocks(v.reshape(-1, m, m, c), h, w)


def dihedral(b: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 symmetries of a square block [..., M, M, C]: rotate `code % 4` quarter turns
    counter-clockwise (np.rot90), then mirror left-right when code >= 4."""
    out = np.rot90(b, k=code % 4, axes=(-3, -2))
    return np.flip(out, axis=-2) if code >= 4 else out


def dihedral_per_block(blocks: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Apply dihedral(codes[i]) to blocks[i] for [N, M, M, C] blocks."""
    variants = np.stack([dihedral(blocks, d) for d in range(8)])  # [8, N, M, M, C]
    return variants[codes, np.arange(blocks.shape[0])]


def color_per_block(blocks: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Colour shuffle per block: output channel k of block i is input channel COLOR_PERMS[codes[i]][k]."""
    src = COLOR_PERMS[codes]  # [N, 3]
    return np.take_along_axis(blocks, src[:, None, None, :], axis=-1)
