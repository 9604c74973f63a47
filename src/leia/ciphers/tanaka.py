"""tanaka: Learnable Image Encryption (LE), M. Tanaka, ICCE-TW 2018.

Each M×M block is flattened to d = 3M² bytes, split into 2d nibbles (low nibbles first), and every
block goes through v ← v⊕15F; v ← v[P]; v ← v⊕15F with ONE key (P, F) for all blocks. The reference
implementation does not draw F: F[i] = 1 exactly when P[i] > d (`flip: derived`, the default, which
reproduces shared/data/vectors/tanaka_reference.npz); `flip: independent` draws F as the paper's
key-space count assumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_choice, check_int
from ..errors import KeyMaterialError, KeyMismatchError
from .base import Cipher, log2_factorial, register
from .keyfile import Key
from .kernels import NibbleMap
from .layout import flatten_blocks, positions, unflatten_blocks
from .validation import check_bits, check_permutation

FLIPS = ("derived", "independent")


def derived_flip(p: np.ndarray) -> np.ndarray:
    """The reference implementation's flip mask: 1 where P[i] > d = len(P)/2 (strictly)."""
    return (p > p.shape[-1] // 2).astype(np.uint8)


def le_nibble_map(p: np.ndarray, f: np.ndarray, h: int, w: int, m: int, block_order: np.ndarray | None = None):
    """Compile per-block LE keys p, f ([N, 2d] or [2d]) into a NibbleMap over the 2·3hw nibbles of an
    image; `block_order` Q then moves blocks (output block i = input block Q[i], as ELE does)."""
    n_bytes = 3 * h * w
    blocks = flatten_blocks(positions(3, h, w), m)  # [N, d] byte positions
    nibbles = np.concatenate([blocks, blocks + n_bytes], axis=1)  # low nibbles then high nibbles
    p = np.broadcast_to(p, nibbles.shape)
    f = np.broadcast_to(f, nibbles.shape).astype(np.uint8)
    src = np.take_along_axis(nibbles, p, axis=1)  # out[i] = in[P[i]]
    mask = 15 * (f ^ np.take_along_axis(f, p, axis=1))  # net flip F[i] ⊕ F[P[i]]
    if block_order is not None:
        src, mask = src[block_order], mask[block_order]
    d = blocks.shape[1]

    def to_bytes(v):
        return np.concatenate([unflatten_blocks(v[:, :d], 3, h, w, m).reshape(-1), unflatten_blocks(v[:, d:], 3, h, w, m).reshape(-1)])

    return NibbleMap.build(to_bytes(src), to_bytes(mask).astype(np.uint8))


@register("tanaka")
class Tanaka(Cipher):
    shape_dependent = False
    description = "block-wise nibble scramble + flip, one key for all blocks (Tanaka 2018)"

    @dataclass(frozen=True)
    class Params:
        block_size: int = 4
        flip: str = "derived"

        def __post_init__(self):
            check_int("tanaka", "block_size", self.block_size)
            check_choice("tanaka", "flip", self.flip, FLIPS)

    def __init__(self, *, permutation=None, flip_mask=None, **kwargs):
        """`permutation=` takes the reference key format: P as a sequence of 6M² ints (M inferred)."""
        if flip_mask is not None and permutation is None:
            raise KeyMaterialError("tanaka: flip_mask= is only used together with permutation=")
        if permutation is not None:
            p = np.asarray(permutation, dtype=np.int64).reshape(-1)
            m = int(round((p.size / 6) ** 0.5))
            params = {"block_size": kwargs.pop("block_size", m), "flip": kwargs.pop("flip", "independent" if flip_mask is not None else "derived")}
            comps = {"P": p}
            if flip_mask is not None:
                comps["F"] = np.asarray(flip_mask, dtype=np.uint8).reshape(-1)
            kwargs["key"] = Key(scheme="tanaka", params=params, components=comps)
        super().__init__(**kwargs)
        if self._key is not None:
            self.check_components(self._key.components, 0, 0)

    @property
    def nibbles(self) -> int:
        return 6 * self.block_size**2

    def derive(self, keys, h, w):
        comps = {"P": keys.stream("P").permutation(self.nibbles)}
        if self.params.flip == "independent":
            comps["F"] = keys.stream("F").bits(self.nibbles)
        return comps

    def check_components(self, comps, h, w):
        n = self.nibbles
        if "P" not in comps:
            raise KeyMismatchError("tanaka key: component P (the nibble permutation) is missing")
        check_permutation(np.asarray(comps["P"]), n, f"P ({n} entries for block_size {self.block_size}, i.e. 6·M²)", "tanaka")
        if self.params.flip == "independent":
            if "F" not in comps:
                raise KeyMismatchError("tanaka key with flip=independent needs component F (the flip mask)")
            check_bits(np.asarray(comps["F"]), (n,), "F", "tanaka")
        elif "F" in comps:
            raise KeyMismatchError("tanaka key with flip=derived must not carry a flip mask F")

    def flip_mask(self, comps) -> np.ndarray:
        return comps["F"].astype(np.uint8) if self.params.flip == "independent" else derived_flip(comps["P"])

    def compile(self, comps, h, w):
        return le_nibble_map(comps["P"], self.flip_mask(comps), h, w, self.block_size)

    def key_space_bits(self, image_size=(32, 32)):
        bits = log2_factorial(self.nibbles)
        return bits + (self.nibbles if self.params.flip == "independent" else 0)
