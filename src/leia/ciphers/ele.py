"""ele: Extended LE (Madono, Tanaka, Onishi, Ogawa, AAAI-20 workshop).

LE with a different key (P_b, F_b) for every block position b, then a block permutation Q
(output block i = input block Q[i]). `flip` means what it means for tanaka. The default `derived` is
what Madono et al.'s code does (every block key is an LE BlockScramble key, whose flips are P > d);
`independent` is the key space the ELE paper counts (anchors.md §4: ≈ 38,330 bits at M=4, 32×32).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_choice, check_int
from ..errors import KeyMismatchError
from .base import Cipher, log2_factorial, register
from .tanaka import FLIPS, derived_flip, le_nibble_map
from .validation import check_bits, check_permutation


@register("ele")
class ELE(Cipher):
    description = "LE with a key per block position, then block scrambling (Madono et al. 2020)"

    @dataclass(frozen=True)
    class Params:
        block_size: int = 4
        flip: str = "derived"

        def __post_init__(self):
            check_int("ele", "block_size", self.block_size)
            check_choice("ele", "flip", self.flip, FLIPS)

    @property
    def nibbles(self) -> int:
        return 6 * self.block_size**2

    def derive(self, keys, h, w):
        n = self.n_blocks(h, w)
        comps = {
            "P": np.stack([keys.stream("P", str(b)).permutation(self.nibbles) for b in range(n)]),
            "Q": keys.stream("Q").permutation(n),
        }
        if self.params.flip == "independent":
            comps["F"] = np.stack([keys.stream("F", str(b)).bits(self.nibbles) for b in range(n)])
        return comps

    def check_components(self, comps, h, w):
        n, d2 = self.n_blocks(h, w), self.nibbles
        for name in ("P", "Q"):
            if name not in comps:
                raise KeyMismatchError(f"ele key: component {name} is missing")
        p = np.asarray(comps["P"])
        if p.shape != (n, d2):
            raise KeyMismatchError(f"ele key: P must have shape [{n}, {d2}] for {h}x{w} images with block_size {self.block_size}")
        check_permutation(p, d2, "P rows", "ele")
        check_permutation(np.asarray(comps["Q"]), n, "Q", "ele")
        if self.params.flip == "independent":
            if "F" not in comps:
                raise KeyMismatchError("ele key with flip=independent needs component F")
            check_bits(np.asarray(comps["F"]), (n, d2), "F", "ele")
        elif "F" in comps:
            raise KeyMismatchError("ele key with flip=derived must not carry a flip mask F")

    def compile(self, comps, h, w):
        p = comps["P"]
        f = comps["F"].astype(np.uint8) if self.params.flip == "independent" else derived_flip(p)
        return le_nibble_map(p, f, h, w, self.block_size, block_order=comps["Q"])

    def key_space_bits(self, image_size=(32, 32)):
        n = self.n_blocks(*image_size)
        per_block = log2_factorial(self.nibbles) + (self.nibbles if self.params.flip == "independent" else 0)
        return n * per_block + log2_factorial(n)
