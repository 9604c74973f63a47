"""Batched block views of image tensors, in schemes.md's flattening order ((row, column, channel),
channel fastest), for attacks that read or write whole blocks: the torch twins of
`ciphers.layout` (same names, same conventions), plus nibble packing."""

from __future__ import annotations

import torch


def to_blocks(x: torch.Tensor, m: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, N, M, M, C] blocks in raster order."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // m, m, w // m, m).permute(0, 2, 4, 3, 5, 1).reshape(b, -1, m, m, c)


def from_blocks(blocks: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[B, N, M, M, C] -> [B, C, H, W]."""
    b, n, m, _, c = blocks.shape
    return blocks.reshape(b, h // m, w // m, m, m, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)


def flatten_blocks(x: torch.Tensor, m: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, N, C·M²] flattened blocks."""
    blocks = to_blocks(x, m)
    return blocks.reshape(*blocks.shape[:2], -1)


def unflatten_blocks(v: torch.Tensor, c: int, h: int, w: int, m: int) -> torch.Tensor:
    return from_blocks(v.reshape(v.shape[0], v.shape[1], m, m, c), h, w)


def to_nibbles(v: torch.Tensor) -> torch.Tensor:
    """[..., d] bytes -> [..., 2d] nibbles, low nibbles first (LE's order)."""
    return torch.cat([v & 15, v >> 4], dim=-1)


def from_nibbles(n: torch.Tensor) -> torch.Tensor:
    d = n.shape[-1] // 2
    return n[..., :d] | (n[..., d:] << 4)


def dihedral(b: torch.Tensor, code: int) -> torch.Tensor:
    """`ciphers.layout.dihedral` for torch blocks [..., M, M, C]: code % 4 counter-clockwise quarter
    turns, then a left-right mirror when code >= 4."""
    out = torch.rot90(b, k=code % 4, dims=(-3, -2))
    return out.flip(-2) if code >= 4 else out
